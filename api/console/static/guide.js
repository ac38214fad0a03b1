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
  const VERDICTS = {
    credited: "Credited: available to withdraw.", pending_settlement: "Credited: pending until the return window closes.",
    held_for_review: "On hold for review by your brand.", refunded: "Refunded: the commission was reversed.",
    no_rate_card: "Not credited: no rate card covers this product.", zero: "Not credited: the line paid nothing.",
    campaign_line_excluded: "Not credited: a campaign price (flash, group-buy, live) that the card excludes.",
    not_paid: "Not credited yet: the order is not paid.", not_bound_at_placement: "Not credited: the customer was not bound to a guide when ordering.",
    bound_to_another_guide: "Not credited to you: the customer was bound to another guide when ordering.",
  };

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
      const why = el("button", "link why-button", "Why?");
      why.type = "button";
      why.setAttribute("aria-label", `Why was order ${o.number} (not) credited?`);
      why.addEventListener("click", () => askWhy(o.number));
      li.append(why);
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

  function entryList(entries, render) {
    const list = el("ol");
    for (const entry of entries) list.append(render(entry));
    return list;
  }

  function eventItem(event) {
    const li = el("li");
    li.append(el("span", "kind", event.kind), el("span", "muted", ` ${when(event.created_at)}`),
              el("p", "reason", reasonText(event.reason)));
    return li;
  }

  /* The binding history of a customer with me (GET /guide/customers/<id>/why). */
  function customerAnswer(events) {
    return events.length ? [entryList(events, eventItem)] : [el("p", "muted", "Nothing about you and this customer.")];
  }

  /* The ledger's answer for one of my lines (GET /guide/commission/why): its verdict, entries and binding. */
  function lineAnswer(why) {
    const box = el("div", "line");
    box.dataset.lineId = why.order_line_id;
    box.dataset.verdict = why.verdict;
    box.append(el("p", "verdict", VERDICTS[why.verdict] || why.verdict));
    box.append(entryList(why.entries || [], (entry) => {
      const li = el("li");
      li.append(el("span", "kind", `${entry.kind} · ${entry.state}`), el("span", "figure", ` ${money(entry.amount,
                entry.currency)}`), el("p", "reason", reasonText(entry.reason)));
      return li;
    }));
    if (why.binding) box.append(el("p", "reason", `Binding: ${reasonText(why.binding.reason)}`));
    return box;
  }

  async function orderAnswer(number) {
    const found = (await call("GET", `/guide/orders?number=${encodeURIComponent(number)}`)).body.items;
    if (!found.length) {
      return [el("p", "warn", "No line of this order was yours when it was placed. Look the customer up by their id " +
                               "to see why.")];  // the API tells no more of another guide's order
    }
    const order = found[0];
    const answers = await Promise.all(order.line_ids.map((id) => call("GET", `/guide/commission/why?order_line_id=${id}`)));
    return [el("p", "", `Order ${order.number} · ${money(order.amount, order.currency)}`),
            ...answers.map((answer) => lineAnswer(answer.body))];
  }

  async function lookUp(event) {
    if (event) event.preventDefault();
    const kind = $("why-kind").value, ref = $("why-ref").value.trim();
    if (kind === "customer" && !/^\d+$/.test(ref)) { notice("A customer is named by their id (digits).", "error"); return; }
    $("why-button").disabled = true;
    try {
      fill($("why-answer"), kind === "order" ? await orderAnswer(ref)
        : customerAnswer((await call("GET", `/guide/customers/${ref}/why`)).body));
    } catch (e) {
      fill($("why-answer"), e.status === 401 ? [] : [el("p", "warn", e.message)]);
    } finally {
      $("why-button").disabled = false;
    }
  }

  function askWhy(number) {
    $("why-kind").value = "order";
    $("why-ref").value = number;
    lookUp();
    $("why-form").scrollIntoView({ block: "start" });
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
