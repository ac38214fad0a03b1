/* What every console page shares (DESIGN.md §7): the JSON API client, signing in and out, notices, money and time
   formats, figures and an inline-SVG bar chart. A page is a client of the API like any other: every piece of text
   from the API is set with textContent (never parsed as HTML), the bearer token lives in sessionStorage only (never
   in a URL), and a page keeps no rules of its own: it shows what the API answers, refusals included. */
"use strict";

window.MallConsole = (function () {
  const API = "/api/v1";
  const TOKEN_KEY = "mall.console.token";
  const USER_KEY = "mall.console.user";
  const REFRESH_KEY = "mall.console.refresh";
  const SVG = "http://www.w3.org/2000/svg";

  const $ = (id) => document.getElementById(id);
  const page = { sections: [], onSignedIn: null, onSignedOut: null };

  // ---- the API --------------------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, problem) {
      super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
      this.status = status;
      this.code = problem && problem.code;
    }
  }

  function post(path, body, token) {
    const headers = { Accept: "application/json" };
    if (token) headers.Authorization = "Bearer " + token;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    return fetch(API + path, { method: "POST", headers, cache: "no-store", credentials: "omit",
                               body: body === undefined ? undefined : JSON.stringify(body) });
  }

  /* Access tokens live 15 minutes (ADR 0032): a call that meets an expired one trades the refresh token for a new
     pair and is made again, once. One refresh at a time: a refresh token is single use, and a second use of it
     would revoke the whole sign-in, so the page's parallel calls wait for the same refresh. */
  let refreshing = null;
  function refreshed() {
    if (!refreshing) {
      refreshing = (async () => {
        const token = sessionStorage.getItem(REFRESH_KEY);
        if (!token) return false;
        const resp = await post("/auth/refresh", { refresh_token: token });
        if (!resp.ok) return false;
        const data = await resp.json();
        sessionStorage.setItem(TOKEN_KEY, data.token);
        sessionStorage.setItem(REFRESH_KEY, data.refresh_token);
        return true;
      })().catch(() => false).finally(() => { refreshing = null; });
    }
    return refreshing;
  }

  async function call(method, path, body, extraHeaders, retried) {
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
    if (resp.status === 401 && token && !retried && data && data.code === "auth.token_expired" && await refreshed()) {
      return call(method, path, body, extraHeaders, true);
    }
    if (resp.status === 401 && token) {
      signOut("Your session has ended: sign in again.");
    }
    if (!resp.ok) throw new ApiError(resp.status, data);
    return { status: resp.status, headers: resp.headers, body: data };
  }

  // ---- small helpers -----------------------------------------------------------------------------------------

  function show(section) {
    for (const id of page.sections) $(id).hidden = id !== section;
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

  function fill(list, nodes) {
    list.replaceChildren(...nodes);
  }

  function el(name, className, text) {
    const node = document.createElement(name);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  /* A <dl> of figures: `spec` is [[key, label, kind]] with kind count, money or percent. */
  function figures(dl, spec, source, currency) {
    fill(dl, spec.map(([key, label, kind]) => {
      const wrap = el("div");
      wrap.dataset.figure = key;
      const value = source ? source[key] : null;
      wrap.append(el("dt", "", label), el("dd", "", value === null || value === undefined ? "–"
        : kind === "money" ? money(value, currency)
        : kind === "percent" ? (value * 100).toFixed(1) + "%"
        : String(value)));
      return wrap;
    }));
  }

  function svg(name, attrs, text) {
    const node = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  /* Bars from the API's figures, in order; a negative value goes below the zero line. `bars`: [{id, label, name,
     value, current}] (label under the bar, name in its title and the legend). Returns the <svg> and a legend (an
     <ol> of names and figures: a phone has no hover for the bars' titles) for the caller to place. */
  function barChart(bars, currency, options) {
    const { barW = 36, gap = 12, minBar = 28, aria = "Chart" } = options || {};
    const top = 18, height = 140, bottom = 22;
    const width = Math.max(bars.length * (barW + gap) + gap, 200);
    const values = bars.map((b) => Number(b.value) || 0);
    const max = Math.max(0, ...values), min = Math.min(0, ...values);
    const span = (max - min) || 1;
    const zeroY = top + (max / span) * height;
    const root = svg("svg", {
      viewBox: `0 0 ${width} ${top + height + bottom}`, width: "100%", role: "img",
      "aria-label": aria, preserveAspectRatio: "xMinYMin meet",
    });
    root.style.minWidth = `${bars.length * minBar}px`;  // many bars scroll inside the chart, each stays readable
    root.append(svg("line", { x1: 0, x2: width, y1: zeroY, y2: zeroY, class: "axis" }));
    bars.forEach((b, i) => {
      const v = values[i];
      const h = Math.max((Math.abs(v) / span) * height, v ? 1 : 0);
      const x = gap + i * (barW + gap);
      const y = v >= 0 ? zeroY - h : zeroY;
      const bar = svg("rect", { x, y, width: barW, height: h, class: b.current ? "bar current" : "bar",
                                "data-id": b.id, "data-value": v });
      bar.append(svg("title", {}, `${b.name || ""}: ${money(v, currency)}`));
      root.append(bar);
      if (b.label) root.append(svg("text", { x: x + barW / 2, y: top + height + bottom - 6, class: "label" }, b.label));
    });
    const legend = el("ol", "legend");
    bars.forEach((b, i) => {
      const li = el("li");
      li.value = i + 1;
      li.dataset.id = b.id;
      li.classList.toggle("current", !!b.current);
      li.append(el("span", "", b.name || ""), el("span", "legend-figure", money(values[i], currency)));
      legend.append(li);
    });
    return { svg: root, legend };
  }

  // ---- signing in ----------------------------------------------------------------------------------------------

  function signedIn(token, user, refreshToken) {
    sessionStorage.setItem(TOKEN_KEY, token);
    if (refreshToken) sessionStorage.setItem(REFRESH_KEY, refreshToken);
    else sessionStorage.removeItem(REFRESH_KEY);
    sessionStorage.setItem(USER_KEY, JSON.stringify(user || {}));
    renderWho();
  }

  function signOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(REFRESH_KEY);
    sessionStorage.removeItem(USER_KEY);
    if (page.onSignedOut) page.onSignedOut();
    renderWho();
    history.replaceState(null, "", location.pathname);
    show("signin");
    notice(message || "", message ? "error" : "info");
  }

  function user() {
    try { return JSON.parse(sessionStorage.getItem(USER_KEY) || "null"); } catch (e) { return null; }
  }

  function renderWho() {
    const on = !!sessionStorage.getItem(TOKEN_KEY);
    const who = user();
    $("who").textContent = on && who ? `${who.display_name || ""} (${who.role || ""})` : "";
    $("sign-out").hidden = !on;
  }

  async function passwordSignIn(event) {
    event.preventDefault();
    const button = $("signin-button");
    button.disabled = true;
    try {
      const { body } = await call("POST", "/auth/password", { email: $("email").value, password: $("password").value });
      $("password").value = "";
      signedIn(body.token, body.user, body.refresh_token);
      notice("");
      await page.onSignedIn();
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
      await page.onSignedIn();
    } catch (e) {
      sessionStorage.removeItem(TOKEN_KEY);
      notice(e.message, "error");
    }
  }

  /* Wire the page: its sections (the first is "signin"), what to do once signed in and on signing out. Returns
     whether a token is already held (the page then opens its own view). */
  function start(options) {
    Object.assign(page, options);
    $("signin-form").addEventListener("submit", passwordSignIn);
    $("token-form").addEventListener("submit", tokenSignIn);
    $("sign-out").addEventListener("click", () => {
      const token = sessionStorage.getItem(TOKEN_KEY);  // revoke it and its refresh tokens; best effort
      if (token) post("/auth/logout", undefined, token).catch(() => {});
      signOut("");
    });
    $("notice").addEventListener("click", () => { $("notice").hidden = true; });
    renderWho();
    if (!sessionStorage.getItem(TOKEN_KEY)) { show("signin"); return false; }
    return true;
  }

  return { $, call, show, notice, money, when, fill, el, figures, svg, barChart, signOut, user, start };
})();
