/* The host console (/console/live): a client of the JSON API like any other. Every piece of text from the
   API is set with textContent (never parsed as HTML), the bearer token lives in sessionStorage only (never in a
   URL), and the page keeps no rules of its own: it shows what the API answers, refusals included. */
"use strict";

(function () {
  const API = "/api/v1";
  const TOKEN_KEY = "mall.console.token";
  const USER_KEY = "mall.console.user";
  const ROOM_POLL_MS = 3000;
  const NUMBERS_POLL_MS = 5000;
  const SVG = "http://www.w3.org/2000/svg";

  const $ = (id) => document.getElementById(id);
  const state = { roomId: null, view: null, etag: null, numbers: null, timers: [], endArmed: null, busy: false };

  // ---- the API --------------------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, problem) {
      super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
      this.status = status;
      this.code = problem && problem.code;
    }
  }

  async function call(method, path, body, extraHeaders) {
    const headers = Object.assign({ Accept: "application/json" }, extraHeaders || {});
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) headers.Authorization = "Bearer " + token;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const resp = await fetch(API + path, {
      method, headers, cache: "no-store", credentials: "omit",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (resp.status === 304 || resp.status === 204) return { status: resp.status, headers: resp.headers, body: null };
    let data = null;
    try { data = await resp.json(); } catch (e) { data = null; }
    if (resp.status === 401 && token) {
      signOut("Your session has ended: sign in again.");
    }
    if (!resp.ok) throw new ApiError(resp.status, data);
    return { status: resp.status, headers: resp.headers, body: data };
  }

  // ---- small helpers -----------------------------------------------------------------------------------------

  function show(section) {
    for (const id of ["signin", "rooms", "room"]) $(id).hidden = id !== section;
  }

  let noticeTimer = null;
  function notice(text, kind) {
    const el = $("notice");
    el.textContent = text;
    el.className = "notice " + (kind || "info");
    el.hidden = !text;
    clearTimeout(noticeTimer);
    if (text) noticeTimer = setTimeout(() => { el.hidden = true; }, kind === "error" ? 8000 : 4000);
  }

  function money(minor, currency) {
    if (minor === null || minor === undefined) return "";
    try {
      const fmt = new Intl.NumberFormat(undefined, { style: "currency", currency: currency || "CNY",
                                                      currencyDisplay: "narrowSymbol" });
      const digits = fmt.resolvedOptions().maximumFractionDigits;
      return fmt.format(minor / Math.pow(10, digits));
    } catch (e) {
      return (minor / 100).toFixed(2) + " " + (currency || "");
    }
  }

  function when(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    return isNaN(d) ? String(iso) : d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
  }

  function clearTimers() {
    state.timers.forEach(clearInterval);
    state.timers = [];
  }

  function fill(list, nodes) {
    list.replaceChildren(...nodes);
  }

  // ---- signing in ----------------------------------------------------------------------------------------------

  function signedIn(token, user) {
    sessionStorage.setItem(TOKEN_KEY, token);
    sessionStorage.setItem(USER_KEY, JSON.stringify(user || {}));
    renderWho();
  }

  function signOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(USER_KEY);
    clearTimers();
    Object.assign(state, { roomId: null, view: null, etag: null, numbers: null });
    fill($("room-list"), []);
    fill($("lineup"), []);
    renderWho();
    history.replaceState(null, "", location.pathname);
    show("signin");
    notice(message || "", message ? "error" : "info");
  }

  function renderWho() {
    let user = null;
    try { user = JSON.parse(sessionStorage.getItem(USER_KEY) || "null"); } catch (e) { user = null; }
    const on = !!sessionStorage.getItem(TOKEN_KEY);
    $("who").textContent = on && user ? `${user.display_name || ""} (${user.role || ""})` : "";
    $("sign-out").hidden = !on;
  }

  async function passwordSignIn(event) {
    event.preventDefault();
    const button = $("signin-button");
    button.disabled = true;
    try {
      const { body } = await call("POST", "/auth/password", { email: $("email").value, password: $("password").value });
      $("password").value = "";
      signedIn(body.token, body.user);
      notice("");
      await openRooms();
    } catch (e) {
      notice(e.message, "error");
    } finally {
      button.disabled = false;
    }
  }

  async function tokenSignIn(event) {
    event.preventDefault();
    const token = $("token").value.trim();
    $("token").value = "";
    sessionStorage.setItem(TOKEN_KEY, token);
    try {
      const { body } = await call("GET", "/me");
      signedIn(token, body);
      notice("");
      await openRooms();
    } catch (e) {
      sessionStorage.removeItem(TOKEN_KEY);
      notice(e.message, "error");
    }
  }

  // ---- the host's rooms ------------------------------------------------------------------------------------

  async function openRooms() {
    clearTimers();
    state.roomId = null;
    if (location.hash) history.replaceState(null, "", location.pathname);
    show("rooms");
    fill($("room-list"), []);  // never another account's rooms while this one's load (or are refused)
    $("rooms-empty").hidden = true;
    let rooms;
    try {
      rooms = (await call("GET", "/admin/live/rooms")).body;
    } catch (e) {
      if (e.status !== 401) notice(e.message, "error");
      return;
    }
    const template = $("room-row");
    fill($("room-list"), rooms.map((room) => {
      const row = template.content.firstElementChild.cloneNode(true);
      row.querySelector(".room-name").textContent = room.title;
      const badge = row.querySelector(".badge");
      badge.textContent = room.status;
      badge.dataset.status = room.status;
      row.querySelector(".room-when").textContent = when(room.started_at || room.scheduled_start);
      row.querySelector("button").dataset.roomId = room.id;
      row.querySelector("button").addEventListener("click", () => openRoom(room.id));
      return row;
    }));
    $("rooms-empty").hidden = rooms.length > 0;
  }

  // ---- one room --------------------------------------------------------------------------------------------

  async function openRoom(roomId) {
    clearTimers();
    Object.assign(state, { roomId, view: null, etag: null, numbers: null });
    history.replaceState(null, "", "#room/" + roomId);
    $("room-title").textContent = "";
    fill($("lineup"), []);
    renderNumbers(null);
    show("room");
    await Promise.all([refreshRoom(), refreshNumbers()]);
    state.timers.push(setInterval(refreshRoom, ROOM_POLL_MS), setInterval(refreshNumbers, NUMBERS_POLL_MS));
  }

  async function refreshRoom() {
    const roomId = state.roomId;
    if (roomId === null || document.hidden) return;  // a phone's background tab polls nothing
    try {
      const resp = await call("GET", `/live/rooms/${roomId}`, undefined,
                              state.etag ? { "If-None-Match": state.etag } : undefined);
      if (roomId !== state.roomId || resp.status === 304) return;
      state.etag = resp.headers.get("ETag");
      state.view = resp.body;
      renderRoom();
    } catch (e) {
      if (e.status !== 401) notice(e.message, "error");
    }
  }

  async function refreshNumbers() {
    const roomId = state.roomId;
    if (roomId === null || document.hidden) return;
    try {
      const { body } = await call("GET", `/live/rooms/${roomId}/numbers`);
      if (roomId === state.roomId) { state.numbers = body; renderNumbers(body); }
    } catch (e) {
      if (roomId !== state.roomId || e.status === 401) return;
      // Said in the panel, not as a notice: it would come back every few seconds.
      state.numbers = null;
      renderNumbers(null, e.status === 404 ? "No numbers yet." : `Numbers unavailable: ${e.message}`);
    }
  }

  function renderRoom() {
    const view = state.view;
    $("room-title").textContent = view.title;
    const badge = $("room-status");
    badge.textContent = view.status;
    badge.dataset.status = view.status;
    $("start").hidden = view.status !== "scheduled";
    $("end").hidden = view.status !== "live";
    const live = view.status === "live";
    const pinned = view.pinned && view.pinned.item;
    $("unpin").disabled = !live || !view.pinned;
    $("next").disabled = !live;

    $("pinned").dataset.pinned = pinned ? "yes" : "no";
    $("pinned-title").textContent = pinned ? pinned.title : "Nothing pinned";
    $("pinned-price").textContent = pinned ? priceText(pinned, live) : "";

    const template = $("lineup-row");
    fill($("lineup"), view.lineup.map((item) => {
      const row = template.content.firstElementChild.cloneNode(true);
      const isPinned = !!(pinned && pinned.id === item.id);
      row.dataset.itemId = item.id;
      row.dataset.productId = item.product_id;
      row.classList.toggle("is-pinned", isPinned);
      row.querySelector(".item-title").textContent = item.title;
      const hasLive = item.live_price !== null && item.live_price !== undefined;
      row.querySelector(".item-price").textContent = money(hasLive ? item.live_price : item.price, item.currency);
      row.querySelector(".item-normal").textContent = hasLive ? money(item.price, item.currency) : "";
      const left = row.querySelector(".item-left");
      left.textContent = item.on_sale ? `${item.remaining} left` : "off sale";
      left.classList.toggle("warn", !item.on_sale || item.remaining <= 0);
      const button = row.querySelector("button.pin");
      button.textContent = isPinned ? "Pinned" : "Pin";
      button.disabled = !live || isPinned;
      button.setAttribute("aria-label", (isPinned ? "Pinned: " : "Pin ") + item.title);
      button.addEventListener("click", () => act("pin", { item_id: item.id }));
      return row;
    }));
    if (state.numbers) renderNumbers(state.numbers);
  }

  function priceText(item, live) {
    const hasLive = live && item.live_price !== null && item.live_price !== undefined;
    const price = money(hasLive ? item.live_price : item.price, item.currency);
    return `${price} · ${item.remaining} left`;
  }

  async function act(verb, body) {
    if (state.busy || state.roomId === null) return;
    state.busy = true;
    document.body.classList.add("busy");
    try {
      await call("POST", `/live/rooms/${state.roomId}/${verb}`, body);
      state.etag = null;  // the next read is the new state
      await refreshRoom();
      refreshNumbers();  // a new segment is on screen: its numbers now, not at the next poll
    } catch (e) {
      if (e.status !== 401) notice(e.message, "error");
    } finally {
      state.busy = false;
      document.body.classList.remove("busy");
    }
  }

  function armEnd() {
    // Two taps end the show: a stray tap during the stream must not close it.
    const button = $("end");
    if (state.endArmed) {
      clearTimeout(state.endArmed);
      state.endArmed = null;
      button.textContent = "End the show";
      act("end");
      return;
    }
    button.textContent = "Tap again to end";
    state.endArmed = setTimeout(() => { state.endArmed = null; button.textContent = "End the show"; }, 4000);
  }

  // ---- numbers --------------------------------------------------------------------------------------------------

  const FIGURES = [
    ["viewers", "Viewers", "count"], ["cart_adds", "Cart adds", "count"], ["orders", "Orders", "count"],
    ["paid_gmv", "Paid GMV", "money"], ["refunds", "Refunds", "money"], ["net_gmv", "Net GMV", "money"],
    ["conversion", "Conversion", "percent"], ["direct_gmv", "Direct GMV", "money"],
    ["indirect_gmv", "Indirect GMV", "money"],
  ];

  function figures(dl, source, currency) {
    const nodes = [];
    for (const [key, label, kind] of FIGURES) {
      const wrap = document.createElement("div");
      wrap.dataset.figure = key;
      const dt = document.createElement("dt");
      dt.textContent = label;
      const dd = document.createElement("dd");
      const value = source ? source[key] : null;
      dd.textContent = value === null || value === undefined ? "–"
        : kind === "money" ? money(value, currency)
        : kind === "percent" ? (value * 100).toFixed(1) + "%"
        : String(value);
      wrap.append(dt, dd);
      nodes.push(wrap);
    }
    fill(dl, nodes);
  }

  function currentSegment(numbers) {
    const segments = numbers.segments || [];
    const pinned = state.view && state.view.pinned;
    if (pinned) {
      const found = segments.find((s) => s.segment_id === pinned.segment_id);
      if (found) return { segment: found, now: true };
    }
    return segments.length ? { segment: segments[segments.length - 1], now: false } : { segment: null, now: false };
  }

  function renderNumbers(numbers, why) {
    $("numbers-empty").textContent = why || "No numbers yet.";
    $("numbers-empty").hidden = !!numbers;
    $("numbers-body").hidden = !numbers;
    if (!numbers) return;
    const { segment, now } = currentSegment(numbers);
    $("segment-heading").textContent = segment
      ? `${now ? "On screen now" : "Last segment"}: ${segment.title || ""}` : "No segment yet";
    figures($("segment-numbers"), segment, numbers.currency);
    figures($("total-numbers"), numbers.totals, numbers.currency);
    chart($("chart"), numbers.segments || [], numbers.currency, segment && segment.segment_id);
  }

  function svg(name, attrs, text) {
    const el = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
    if (text !== undefined) el.textContent = text;
    return el;
  }

  function chart(box, segments, currency, currentId) {
    // One bar per pin segment, in order; a refund-heavy segment can go below the zero line.
    const values = segments.map((s) => Number(s.net_gmv) || 0);
    if (!values.some((v) => v !== 0)) {  // no bars of height zero: say it
      const empty = document.createElement("p");
      empty.className = "muted chart-empty";
      empty.textContent = segments.length ? "No sales yet." : "No sales yet: pin a product to start a segment.";
      box.replaceChildren(empty);
      return;
    }
    const barW = 36, gap = 12, top = 18, height = 140, bottom = 22;
    const width = Math.max(segments.length * (barW + gap) + gap, 200);
    const max = Math.max(0, ...values), min = Math.min(0, ...values);
    const span = (max - min) || 1;
    const zeroY = top + (max / span) * height;
    const root = svg("svg", {
      viewBox: `0 0 ${width} ${top + height + bottom}`, width: "100%", role: "img",
      "aria-label": "Net GMV per pin segment", preserveAspectRatio: "xMinYMin meet",
    });
    root.style.minWidth = `${segments.length * 28}px`;  // a long show scrolls inside the chart, bars stay readable
    root.append(svg("line", { x1: 0, x2: width, y1: zeroY, y2: zeroY, class: "axis" }));
    segments.forEach((s, i) => {
      const v = values[i];
      const h = Math.max((Math.abs(v) / span) * height, v ? 1 : 0);
      const x = gap + i * (barW + gap);
      const y = v >= 0 ? zeroY - h : zeroY;
      const bar = svg("rect", { x, y, width: barW, height: h, class: s.segment_id === currentId ? "bar current" : "bar",
                                "data-segment-id": s.segment_id });
      bar.append(svg("title", {}, `${s.title || ""}: ${money(v, currency)}`));
      root.append(bar);
      root.append(svg("text", { x: x + barW / 2, y: top + height + bottom - 6, class: "label" }, String(i + 1)));
    });
    // The bars' names and figures as text too: a phone has no hover for the bars' titles.
    const legend = document.createElement("ol");
    legend.className = "legend";
    segments.forEach((s, i) => {
      const li = document.createElement("li");
      li.value = i + 1;
      li.classList.toggle("current", s.segment_id === currentId);
      const name = document.createElement("span");
      name.textContent = s.title || "";
      const figure = document.createElement("span");
      figure.className = "legend-figure";
      figure.textContent = money(values[i], currency);
      li.append(name, figure);
      legend.append(li);
    });
    box.replaceChildren(root, legend);
  }

  // ---- start -----------------------------------------------------------------------------------------------------

  function boot() {
    $("signin-form").addEventListener("submit", passwordSignIn);
    $("token-form").addEventListener("submit", tokenSignIn);
    $("sign-out").addEventListener("click", () => signOut(""));
    $("notice").addEventListener("click", () => { $("notice").hidden = true; });
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden && state.roomId !== null) { refreshRoom(); refreshNumbers(); }
    });
    $("back").addEventListener("click", openRooms);
    $("start").addEventListener("click", () => act("start"));
    $("end").addEventListener("click", armEnd);
    $("unpin").addEventListener("click", () => act("unpin"));
    $("next").addEventListener("click", () => act("pin/next"));
    renderWho();
    if (!sessionStorage.getItem(TOKEN_KEY)) { show("signin"); return; }
    const match = /^#room\/(\d+)$/.exec(location.hash);
    if (match) openRoom(Number(match[1])); else openRooms();
  }

  document.addEventListener("DOMContentLoaded", boot);
})();
