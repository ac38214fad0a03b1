/* The host console (/console/live): sign in, pick a room, start/end it, pin/unpin/next, watch the numbers. The
   API client, sign-in, notices and the chart are shared with the other consoles (console.js). */
"use strict";

(function () {
  const { $, call, show, notice, money, when, fill, figures, barChart } = window.MallConsole;
  const ROOM_POLL_MS = 3000;
  const NUMBERS_POLL_MS = 5000;

  const state = { roomId: null, view: null, etag: null, numbers: null, timers: [], endArmed: null, busy: false };

  function clearTimers() {
    state.timers.forEach(clearInterval);
    state.timers = [];
  }

  function signedOut() {
    clearTimers();
    Object.assign(state, { roomId: null, view: null, etag: null, numbers: null });
    fill($("room-list"), []);
    fill($("lineup"), []);
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
    figures($("segment-numbers"), FIGURES, segment, numbers.currency);
    figures($("total-numbers"), FIGURES, numbers.totals, numbers.currency);
    chart($("chart"), numbers.segments || [], numbers.currency, segment && segment.segment_id);
  }

  function chart(box, segments, currency, currentId) {
    // One bar per pin segment, in order; a refund-heavy segment can go below the zero line.
    if (!segments.length) { box.replaceChildren(); return; }
    const bars = segments.map((s, i) => ({ id: s.segment_id, label: String(i + 1), name: s.title || "",
                                           value: s.net_gmv, current: s.segment_id === currentId }));
    const drawn = barChart(bars, currency, { aria: "Net GMV per pin segment" });
    box.replaceChildren(drawn.svg, drawn.legend);
  }

  // ---- start -----------------------------------------------------------------------------------------------------

  function boot() {
    const held = window.MallConsole.start({ sections: ["signin", "rooms", "room"], onSignedIn: openRooms,
                                            onSignedOut: signedOut });
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden && state.roomId !== null) { refreshRoom(); refreshNumbers(); }
    });
    $("back").addEventListener("click", openRooms);
    $("start").addEventListener("click", () => act("start"));
    $("end").addEventListener("click", armEnd);
    $("unpin").addEventListener("click", () => act("unpin"));
    $("next").addEventListener("click", () => act("pin/next"));
    if (!held) return;
    const match = /^#room\/(\d+)$/.exec(location.hash);
    if (match) openRoom(Number(match[1])); else openRooms();
  }

  document.addEventListener("DOMContentLoaded", boot);
})();
