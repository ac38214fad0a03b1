/* The operators' members console (/console/members): the RFM heat map (R by FM, a named group per cell), who moved
   between groups since the last run and why, the points liability and a saved segment's size, for the platform or
   a brand. It shows what the members and points APIs answer (ADR 0028, 0027, 0031); which brands an operator may
   pick is the API's answer too (GET /admin/members/scopes). Sign-in and the API client are shared (console.js). */
"use strict";

(function () {
  const { $, call, show, notice, money, when, fill, el, figures, signOut } = window.MallConsole;
  const SCORES = { r: "R", f: "F", m: "M" };
  const LIABILITY = [["points", "Points outstanding", "count"], ["value", "Value", "money"],
                     ["net_value", "Net of breakage", "money"]];

  const state = { scopes: [], seq: 0 };

  function groupName(code) {
    if (!code) return "—";
    const text = code.replace(/_/g, " ");
    return text.charAt(0).toUpperCase() + text.slice(1);
  }

  function scopeQuery() {
    const brand = $("scope").value;
    return brand ? `?brand_id=${encodeURIComponent(brand)}` : "";
  }

  function scopeName(brandId) {
    const found = state.scopes.find((s) => s.brand_id === brandId);
    return found ? found.name : `Brand ${brandId}`;
  }

  function signedOut() {
    state.scopes = [];
    for (const id of ["scope", "heatmap-body", "groups", "moves", "liability", "funders", "segment"]) fill($(id), []);
    for (const id of ["run", "moves-about", "liability-about", "method-text", "segment-count"]) $(id).textContent = "";
  }

  async function openConsole() {
    signedOut();
    try {
      state.scopes = (await call("GET", "/admin/members/scopes")).body;
    } catch (e) {
      if (e.status === 403) signOut(e.message);
      else if (e.status !== 401) notice(e.message, "error");
      return;
    }
    fill($("scope"), state.scopes.map((s) => {
      const option = el("option", "", s.name);
      option.value = s.brand_id === null ? "" : String(s.brand_id);
      return option;
    }));
    $("scope").disabled = state.scopes.length < 2;  // a brand admin reads their brand only
    show("members");
    await refresh();
  }

  /* Everything on the page for the chosen scope, each panel from its own API call. A later pick of scope wins: an
     answer for a scope no longer chosen is dropped. */
  async function refresh() {
    const seq = ++state.seq;
    const q = scopeQuery();
    document.body.classList.add("busy");
    try {
      const [heat, moves, liability, segments] = await Promise.all([
        call("GET", `/admin/members/rfm/heatmap${q}`), call("GET", `/admin/members/rfm/movements${q}`),
        call("GET", `/admin/points/liability${q}`), call("GET", `/admin/members/segments${q}`),
      ]);
      if (seq !== state.seq) return;
      $("members").dataset.scope = q ? $("scope").value : "0";
      renderHeatmap(heat.body);
      renderMoves(moves.body);
      renderLiability(liability.body);
      renderSegments(segments.body);
    } catch (e) {
      if (e.status !== 401) notice(e.message, "error");
    } finally {
      if (seq === state.seq) document.body.classList.remove("busy");
    }
  }

  // ---- the heat map ------------------------------------------------------------------------------------------

  function renderHeatmap(heat) {
    $("run").textContent = heat.run_id ? `Latest run ${when(heat.as_of)} · ${heat.members} members scored` : "No run yet.";
    $("heatmap-empty").hidden = heat.members > 0;
    const most = Math.max(0, ...heat.cells.map((c) => c.members));
    const rows = [];
    for (let r = 5; r >= 1; r--) {
      const tr = el("tr");
      tr.append(el("th", "", String(r)));
      tr.firstChild.scope = "row";
      for (const cell of heat.cells.filter((c) => c.r === r).sort((a, b) => a.fm - b.fm)) {
        const td = el("td", "cell");
        td.dataset.r = cell.r;
        td.dataset.fm = cell.fm;
        td.dataset.group = cell.group;
        td.dataset.members = cell.members;
        // Five shades by share of the fullest cell (0: empty): the colour is the stylesheet's, not the script's.
        td.dataset.level = cell.members ? String(Math.max(1, Math.ceil((cell.members / most) * 5))) : "0";
        td.title = `R ${cell.r} · FM ${cell.fm}: ${groupName(cell.group)}, ${cell.members} members`;
        td.append(el("span", "cell-count", cell.members), el("span", "cell-group", groupName(cell.group)));
        tr.append(td);
      }
      rows.push(tr);
    }
    fill($("heatmap-body"), rows);
    fill($("groups"), heat.groups.filter((g) => g.members).sort((a, b) => b.members - a.members).map((g) => {
      const li = el("li");
      li.dataset.group = g.group;
      li.append(el("span", "", groupName(g.group)), el("span", "legend-figure", g.members));
      return li;
    }));
  }

  // ---- movements -------------------------------------------------------------------------------------------------

  function because(move) {
    if (move.because.new_member) return "first scored in this run";
    const parts = Object.entries(move.because).map(([score, n]) => `${SCORES[score] || score} changed (${n})`);
    return parts.length ? parts.join(", ") : "";
  }

  function renderMoves(moved) {
    $("moves-about").textContent = moved.previous_run_id
      ? `Run of ${when(moved.as_of)} compared with the run before it.` : "";
    // After the first run everyone is "first scored": no movement to show until there is a run to compare with.
    const items = moved.previous_run_id ? [...moved.moves].sort((a, b) => b.members - a.members) : [];
    $("moves-empty").hidden = items.length > 0;
    $("moves-empty").textContent = !moved.run_id ? "No run yet."
      : moved.previous_run_id ? "No one changed group since the last run." : "One run so far: nothing to compare.";
    fill($("moves"), items.map((m) => {
      const li = el("li", "move");
      li.dataset.from = m.from || "";
      li.dataset.to = m.to;
      li.append(el("span", "main", `${m.from ? groupName(m.from) : "Not scored before"} → ${groupName(m.to)}`),
                el("span", "figure", `${m.members}`), el("span", "sub", because(m)));
      return li;
    }));
  }

  // ---- liability ---------------------------------------------------------------------------------------------

  function renderLiability(report) {
    $("liability-about").textContent = `As of ${when(report.as_of)} · ${report.points_per_unit} points = 1 ${report.currency}`;
    figures($("liability"), LIABILITY, report.total, report.currency);
    const several = report.funders.length > 1;
    fill($("funders"), several ? report.funders.map((f) => {
      const li = el("li");
      li.dataset.brandId = f.brand_id === null ? "" : f.brand_id;
      li.append(el("span", "main", f.brand_id === null ? "Platform-funded" : scopeName(f.brand_id)),
                el("span", "figure", money(f.net_value, report.currency)),
                el("span", "sub", `${f.points} points · value ${money(f.value, report.currency)} · breakage ` +
                                  `${(f.breakage_bp / 100).toFixed(1)}%`));
      return li;
    }) : []);
    $("method-text").textContent = report.method;
  }

  // ---- segment size ----------------------------------------------------------------------------------------------

  function renderSegments(segments) {
    $("segments-empty").hidden = segments.length > 0;
    $("segment-form").hidden = !segments.length;
    $("segment-count").textContent = "";
    fill($("segment"), segments.map((s) => {
      const option = el("option", "", s.name);
      option.value = String(s.id);
      return option;
    }));
  }

  async function countSegment(event) {
    event.preventDefault();
    const id = $("segment").value;
    if (!id) return;
    $("count-button").disabled = true;
    try {
      const { body } = await call("GET", `/admin/members/segments/${encodeURIComponent(id)}/count`);
      const name = $("segment").selectedOptions[0].textContent;
      $("segment-count").textContent = `${name}: ${body.count} member${body.count === 1 ? "" : "s"} now`;
      $("segment-count").dataset.count = body.count;
    } catch (e) {
      if (e.status !== 401) notice(e.message, "error");
    } finally {
      $("count-button").disabled = false;
    }
  }

  // ---- start -----------------------------------------------------------------------------------------------------

  function boot() {
    const held = window.MallConsole.start({ sections: ["signin", "members"], onSignedIn: openConsole,
                                            onSignedOut: signedOut });
    $("refresh").addEventListener("click", refresh);
    $("scope").addEventListener("change", refresh);
    $("segment-form").addEventListener("submit", countSegment);
    if (held) openConsole();
  }

  document.addEventListener("DOMContentLoaded", boot);
})();
