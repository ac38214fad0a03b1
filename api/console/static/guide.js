/* The guide workbench (/console/guide): today's link visits and paid orders, earnings by state and per day (an
   inline-SVG chart), the storefront QR code to show a customer in store, and "why (not) credited" lookups. It shows
   what the guide API answers (ADR 0025); the API client, sign-in and the chart are shared (console.js). */
"use strict";

(function () {
  const { $, call, show, notice, money, when, fill, el, figures, barChart, signOut } = window.MallConsole;
  const POLL_MS = 15000;
  const TODAY = [["visits", "Link visits today", "count"], ["orders", "Orders paid today", "count"]];
  const EARNINGS = [["pending", "Pending", "money"], ["available", "Available", "money"],
                    ["on_hold", "On hold", "money"]];
  const WHY = { customer: (ref) => `/guide/customers/${ref}/why`,
                order: (ref) => `/guide/commission/why?order_number=${encodeURIComponent(ref)}` };

  const state = { timer: null, loading: false };

  function signedOut() {
    clearInterval(state.timer);
    state.timer = null;
    for (const id of ["today", "earnings", "chart", "per-day-list", "orders", "visits", "why-answer"]) fill($(id), []);
    $("qr").hidden = true;
    $("qr-image").removeAttribute("src");
  }

  async function openWorkbench() {
    signedOut();
    show("workbench");
    if (await refresh()) {
      loadQr();
      state.timer = setInterval(() => { if (!document.hidden) refresh(); }, POLL_MS);
    }
  }

  /* The summary and the recent lists; false when the API refuses this account (not a guide). */
  async function refresh() {
    if (state.loading) return true;
    state.loading = true;
    try {
      const [summary, orders, visits] = await Promise.all([
        call("GET", "/guide/summary?days=30"), call("GET", "/guide/orders?limit=5"), call("GET", "/guide/visits?limit=5"),
      ]);
      renderSummary(summary.body);
      renderOrders(orders.body.items);
      renderVisits(visits.body.items);
      return true;
    } catch (e) {
      if (e.status === 403) signOut(e.message);
      else if (e.status !== 401) notice(e.message, "error");
      return false;
    } finally {
      state.loading = false;
    }
  }

  // ---- today, earnings, the chart ----------------------------------------------------------------------------

  function renderSummary(summary) {
    $("today-date").textContent = summary.today.date;
    figures($("today"), TODAY, summary.today);
    const earnings = summary.earnings;
    $("earnings-empty").hidden = !!earnings;
    $("earnings-empty").textContent = earnings ? "" : "No commission yet.";
    $("earnings").dataset.kind = "earnings";
    figures($("earnings"), EARNINGS, earnings, summary.currency);
    renderChart(summary.days || [], summary.currency);
  }

  function renderChart(days, currency) {
    $("chart-heading").textContent = `Last ${days.length || 30} days`;
    if (!days.length) { fill($("chart"), []); fill($("per-day-list"), []); return; }
    const last = days.length - 1;
    const bars = days.map((d, i) => ({ id: d.date, name: d.date, value: d.earned, current: i === last,
                                       label: (last - i) % 5 === 0 ? String(Number(d.date.slice(8, 10))) : "" }));
    const drawn = barChart(bars, currency, { barW: 14, gap: 4, minBar: 0, aria: "Earnings per day" });
    fill($("chart"), [drawn.svg]);
    // The figures as text, newest first and only the days with any: a phone has no hover for the bars' titles.
    const items = [...drawn.legend.children].filter((li, i) => Number(days[i].earned)).reverse();
    drawn.legend.replaceChildren(...items);
    fill($("per-day-list"), items.length ? [drawn.legend] : [el("p", "muted", "No earnings in these days.")]);
  }

  // ---- recent orders and visits ------------------------------------------------------------------------------

  function row(main, figure, sub) {
    const li = el("li");
    li.append(el("span", "main", main), el("span", "figure", figure), el("span", "sub", sub));
    return li;
  }

  function renderOrders(items) {
    $("orders-empty").hidden = items.length > 0;
    fill($("orders"), items.map((o) => {
      const li = row(o.number || `#${o.order_id}`, money(o.amount, o.currency),
                     `${o.buyer} · ${o.status} · ${when(o.paid_at || o.placed_at)}` +
                     (o.refunded ? ` · refunded ${money(o.refunded, o.currency)}` : ""));
      li.dataset.orderId = o.order_id;
      return li;
    }));
  }

  function renderVisits(items) {
    $("visits-empty").hidden = items.length > 0;
    fill($("visits"), items.map((v) => {
      const li = row(`${v.shopper} (${v.shopper_id})`, v.target, `${when(v.visited_at)} · link ${v.link_id}`);
      li.dataset.visitId = v.id;
      return li;
    }));
  }

  // ---- the QR code -------------------------------------------------------------------------------------------

  async function loadQr() {
    try {
      const links = (await call("GET", "/guide/links")).body;
      showQr(links.find((link) => link.target === "storefront"));
    } catch (e) {
      if (e.status !== 401) notice(e.message, "error");
    }
  }

  function showQr(link) {
    $("make-qr").hidden = !!link;
    $("qr").hidden = !link;
    if (!link) return;
    $("qr-image").src = link.qr_url;  // the link's public code (what the customer scans), never the bearer token
    $("qr-path").textContent = link.path;
  }

  async function makeQr() {
    $("make-qr").disabled = true;
    try {
      showQr((await call("POST", "/guide/links", { target: "storefront" })).body);
    } catch (e) {
      if (e.status !== 401) notice(e.message, "error");
    } finally {
      $("make-qr").disabled = false;
    }
  }

  // ---- why (not) credited --------------------------------------------------------------------------------------

  /* A reason object as text: "rule: protected · days: 15 · …" (nested objects flattened, never parsed as HTML). */
  function reasonText(value) {
    if (value === null || value === undefined) return "";
    if (typeof value !== "object") return String(value);
    if (Array.isArray(value)) return value.map(reasonText).join(", ");
    return Object.entries(value).map(([k, v]) => `${k}: ${typeof v === "object" && v !== null ? `{${reasonText(v)}}` : v}`)
      .join(" · ");
  }

  function renderWhy(answer) {
    const entries = Array.isArray(answer) ? answer : answer.items || answer.entries || answer.lines || [answer];
    if (!entries.length) return [el("p", "muted", "Nothing about you here.")];
    const list = el("ol");
    for (const entry of entries) {
      const { kind, state: st, created_at: at, reason, why, ...rest } = entry;
      const li = el("li");
      li.append(el("span", "kind", [kind, st].filter(Boolean).join(" · ") || "answer"), el("span", "muted",
                at ? ` ${when(at)}` : ""), el("p", "reason", reasonText(why || reason || rest)));
      list.append(li);
    }
    const head = !Array.isArray(answer) && answer.summary ? [el("p", "", reasonText(answer.summary))] : [];
    return [...head, list];
  }

  async function lookUp(event) {
    event.preventDefault();
    const kind = $("why-kind").value, ref = $("why-ref").value.trim();
    if (kind === "customer" && !/^\d+$/.test(ref)) { notice("A customer is named by their id (digits).", "error"); return; }
    $("why-button").disabled = true;
    try {
      fill($("why-answer"), renderWhy((await call("GET", WHY[kind](ref))).body));
    } catch (e) {
      fill($("why-answer"), e.status === 401 ? [] : [el("p", "warn", e.message)]);
    } finally {
      $("why-button").disabled = false;
    }
  }

  // ---- start -----------------------------------------------------------------------------------------------------

  function boot() {
    const held = window.MallConsole.start({ sections: ["signin", "workbench"], onSignedIn: openWorkbench,
                                            onSignedOut: signedOut });
    $("refresh").addEventListener("click", refresh);
    $("make-qr").addEventListener("click", makeQr);
    $("why-form").addEventListener("submit", lookUp);
    document.addEventListener("visibilitychange", () => { if (!document.hidden && state.timer) refresh(); });
    if (held) openWorkbench();
  }

  document.addEventListener("DOMContentLoaded", boot);
})();
