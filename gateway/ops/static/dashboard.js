// The gateway's operator dashboard: polls /monitoring/state and /stats, listens to /ws for provider_health and
// call_completed events. Every value is written with textContent (never as HTML): names come from config and
// upstreams.
"use strict";

(function () {
  const STATE_EVERY_MS = 2000;
  const STATS_EVERY_MS = 15000;
  const LAST_CALLS = 30;
  const MIN_CHART_POINTS = 12; // a chart spans at least this many buckets back from now
  const HEALTH_EVENTS = 100;

  const $ = (id) => document.getElementById(id);
  const dash = { state: null, stats: null, charts: {}, events: 0, calls: 0 };
  window.gatewayDashboard = dash; // read by the browser test and handy in the console

  const fmt = {
    num: (v, d = 0) => (v === null || v === undefined ? "-" : Number(v).toFixed(d)),
    pct: (v) => (v === null || v === undefined ? "-" : (v * 100).toFixed(1) + " %"),
    usd: (v) => {
      if (v === null || v === undefined) return "-";
      const n = Number(v);
      return "$" + (n === 0 ? "0" : n < 0.01 ? n.toPrecision(3) : n.toFixed(4));
    },
    pair: (a, b) => (a === null || a === undefined ? "-" : fmt.num(a) + " / " + fmt.num(b)),
    time: (unix) => new Date(unix * 1000).toLocaleTimeString(),
  };

  function cell(tr, text, cls) {
    const td = document.createElement("td");
    td.textContent = text === undefined || text === null ? "-" : String(text);
    if (cls) td.className = cls;
    tr.appendChild(td);
    return td;
  }

  function fillRows(tableId, rows, build) {
    const body = $(tableId).querySelector("tbody");
    const fresh = document.createDocumentFragment();
    for (const row of rows) {
      const tr = document.createElement("tr");
      build(tr, row);
      fresh.appendChild(tr);
    }
    body.replaceChildren(fresh);
  }

  function healthClass(health) {
    if (health === "healthy" || health === "closed") return "state-ok";
    if (health === "unhealthy" || health === "open") return "state-bad";
    return "state-warn";
  }

  function engineLoad(load) {
    if (!load) return "-";
    const s = load.scraped;
    const parts = [];
    if (s) parts.push(`run ${fmt.num(s.running)}`, `wait ${fmt.num(s.waiting)}`, `kv ${fmt.pct(s.kv_usage)}`);
    else parts.push(load.scrape_error || "not scraped");
    if (load.full) parts.push(`FULL (${load.full_reason})`);
    return parts.join(" · ");
  }

  // --- charts (uPlot) ---
  function makeChart(el, series, yLabel) {
    const opts = {
      width: Math.max(320, el.clientWidth || 480),
      height: 220,
      scales: { x: { time: true } },
      axes: [{ stroke: "#8a96a3" }, { stroke: "#8a96a3", label: yLabel }],
      series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.color, width: 1.5, spanGaps: true }))],
    };
    const empty = [[], ...series.map(() => [])];
    return new uPlot(opts, empty, el);
  }

  function initCharts() {
    dash.charts.rate = makeChart($("chart-rate"), [
      { label: "requests/s", color: "#58a6ff" },
      { label: "errors/s", color: "#f85149" },
    ], "per second");
    dash.charts.latency = makeChart($("chart-latency"), [
      { label: "latency p50", color: "#3fb950" },
      { label: "latency p95", color: "#d29922" },
      { label: "TTFT p50", color: "#a371f7" },
      { label: "TTFT p95", color: "#db61a2" },
    ], "ms");
    window.addEventListener("resize", () => {
      for (const id of ["rate", "latency"]) {
        const el = $("chart-" + id);
        dash.charts[id].setSize({ width: Math.max(320, el.clientWidth), height: 220 });
      }
    });
  }

  function drawCharts(series) {
    // from a little before the first call in the window, so a young gateway's traffic is not a sliver at the edge
    const first = series.rate.findIndex((v) => v > 0);
    const from = first < 0 ? series.t.length - MIN_CHART_POINTS : Math.min(first - 1, series.t.length - MIN_CHART_POINTS);
    const cut = (values) => values.slice(Math.max(0, from));
    dash.charts.rate.setData([cut(series.t), cut(series.rate), cut(series.error_rate)]);
    dash.charts.latency.setData([
      cut(series.t), cut(series.latency_p50_ms), cut(series.latency_p95_ms),
      cut(series.ttft_p50_ms), cut(series.ttft_p95_ms),
    ]);
  }

  // --- the snapshot ---
  function render(state) {
    dash.state = state;
    const recent = state.recent;
    const total = recent.total;
    $("t-rate").textContent = fmt.num(total.rate_per_s, 2);
    $("t-success").textContent = fmt.pct(total.success_rate);
    $("t-errors").textContent = fmt.pct(total.error_rate);
    $("t-latency").textContent = fmt.pair(total.latency_p50_ms, total.latency_p95_ms);
    $("t-ttft").textContent = fmt.pair(total.ttft_p50_ms, total.ttft_p95_ms);
    $("t-calls").textContent = String(total.calls);
    $("t-tokens").textContent = String(total.tokens);
    $("t-cost-hour").textContent = fmt.usd(total.cost_per_hour_usd);
    const lf = state.local_first;
    $("t-spill").textContent =
      lf.spill_budget_usd_per_hour === null
        ? "no cap"
        : `${fmt.usd(lf.spill_spent_usd_last_hour)} of ${fmt.usd(lf.spill_budget_usd_per_hour)}`;
    $("meta").textContent = `v${state.version} · up ${fmt.num(state.uptime_s / 60, 1)} min · window ${
      recent.window_s / 60} min`;

    fillRows("deployments", state.deployments, (tr, d) => {
      const figures = recent.deployments[`${d.model}/${d.deployment}`] || {};
      const down = !d.enabled || !d.available || d.health === "unhealthy" || d.circuit === "open";
      tr.dataset.deployment = d.deployment;
      tr.dataset.model = d.model;
      tr.dataset.health = d.enabled ? d.health || "unknown" : "disabled";
      tr.dataset.circuit = d.circuit || "";
      if (down) tr.className = "down";
      cell(tr, d.model);
      cell(tr, d.deployment).title = d.reason || "";
      cell(tr, d.region || "-");
      cell(tr, `${d.provider} (${d.kind})`);
      cell(tr, d.side);
      cell(tr, fmt.num(d.weight, 3));
      cell(tr, d.enabled ? d.health || "unknown" : "disabled", healthClass(d.health)).title = d.last_health_error || "";
      cell(tr, d.circuit || "-", healthClass(d.circuit));
      cell(tr, d.in_flight ?? "-");
      cell(tr, engineLoad(d.load));
      cell(tr, figures.calls ?? 0);
      cell(tr, fmt.pct(figures.success_rate));
      cell(tr, fmt.pair(figures.latency_p50_ms, figures.latency_p95_ms));
      cell(tr, fmt.pair(figures.ttft_p50_ms, figures.ttft_p95_ms));
      cell(tr, fmt.usd(figures.cost_per_call_usd));
    });

    fillRows("models", Object.entries(state.models), (tr, [id, m]) => {
      const f = recent.models[id] || {};
      tr.dataset.model = id;
      cell(tr, id);
      cell(tr, m.strategy);
      cell(tr, m.spilling ? `since ${fmt.time(m.spilling_since)}` : "no", m.spilling ? "state-warn" : "");
      cell(tr, fmt.num(f.rate_per_s, 2));
      cell(tr, fmt.pct(f.success_rate));
      cell(tr, fmt.pct(f.error_rate));
      cell(tr, fmt.pair(f.latency_p50_ms, f.latency_p95_ms));
      cell(tr, fmt.pair(f.ttft_p50_ms, f.ttft_p95_ms));
      cell(tr, f.tokens ?? 0);
      cell(tr, fmt.usd(f.cost_usd));
    });

    renderProviders();

    const errors = Object.entries(recent.errors_by_kind);
    fillRows("errors", errors, (tr, [kind, n]) => {
      cell(tr, kind, "state-bad");
      cell(tr, n);
    });
    $("no-errors").hidden = errors.length > 0;

    const spill = $("spill");
    const items = [
      ["budget / hour", lf.spill_budget_usd_per_hour === null ? "no cap" : fmt.usd(lf.spill_budget_usd_per_hour)],
      ["spent, last hour", fmt.usd(lf.spill_spent_usd_last_hour)],
      ["budget used", fmt.pct(lf.spill_budget_used)],
      ["local fraction", fmt.num(state.local_fraction, 2)],
    ];
    for (const [id, m] of Object.entries(state.models)) {
      if (m.kind === "local_first") items.push([id, m.spilling ? `spilling since ${fmt.time(m.spilling_since)}` : "local"]);
    }
    spill.replaceChildren(...items.flatMap(([k, v]) => {
      const dt = document.createElement("dt");
      const dd = document.createElement("dd");
      dt.textContent = k;
      dd.textContent = v;
      return [dt, dd];
    }));

    if (!dash.calls) for (const call of recent.last_calls.slice().reverse()) addCall(call);
    drawCharts(recent.series);
  }

  function renderProviders() {
    const state = dash.state;
    if (!state) return;
    const daily = {};
    for (const row of (dash.stats && dash.stats.stats) || []) {
      daily[row.provider] = (daily[row.provider] || 0) + (row.cost_usd || 0);
    }
    const names = new Set([...Object.keys(state.recent.providers), ...Object.keys(daily)]);
    fillRows("providers", [...names].sort(), (tr, name) => {
      const f = state.recent.providers[name] || {};
      tr.dataset.provider = name;
      cell(tr, name);
      cell(tr, f.calls ?? 0);
      cell(tr, fmt.usd(f.cost_per_call_usd));
      cell(tr, fmt.usd(f.cost_per_hour_usd));
      cell(tr, f.tokens ?? 0);
      cell(tr, name in daily ? fmt.usd(daily[name]) : "-");
    });
  }

  function renderBudgets(stats) {
    const budgets = stats && Array.isArray(stats.budgets) ? stats.budgets : null;
    $("budgets-panel").hidden = !budgets;
    if (!budgets) return;
    fillRows("budgets", budgets, (tr, b) => {
      const spentAll = b.limit_usd > 0 && b.spent_usd >= b.limit_usd;
      cell(tr, b.key);
      cell(tr, b.period);
      cell(tr, fmt.usd(b.spent_usd), spentAll ? "state-bad" : "");
      cell(tr, fmt.usd(b.limit_usd));
      cell(tr, fmt.usd(b.remaining_usd));
      cell(tr, b.resets_at ? new Date(b.resets_at).toLocaleString() : "-");
    });
  }

  // --- live calls and health events ---
  function addCall(call) {
    dash.calls += 1;
    const body = $("last-calls").querySelector("tbody");
    const tr = document.createElement("tr");
    const status = call.status;
    tr.dataset.status = String(status);
    tr.dataset.requestId = call.request_id;
    cell(tr, fmt.time(call.timestamp ?? call.at));
    cell(tr, call.model);
    cell(tr, call.provider === undefined ? call.deployment : call.provider);
    cell(tr, status === 200 ? "200" : `${status} ${call.error_kind || ""}`.trim(), status === 200 ? "state-ok" : "state-bad");
    cell(tr, fmt.num(call.latency_ms, 1));
    cell(tr, fmt.num(call.ttft_ms, 1));
    cell(tr, call.tokens ?? 0);
    cell(tr, fmt.usd(call.cost_usd));
    body.prepend(tr);
    while (body.children.length > LAST_CALLS) body.lastChild.remove();
  }

  function addHealthEvent(event) {
    const list = $("health-events");
    const li = document.createElement("li");
    li.className = event.healthy ? "state-ok" : "state-bad";
    li.dataset.deployment = event.provider;
    li.textContent = `${fmt.time(event.timestamp)} ${event.model}/${event.provider}: ${event.change} ${event.state}` +
      (event.detail ? ` (${event.detail})` : "");
    list.prepend(li);
    while (list.children.length > HEALTH_EVENTS) list.lastChild.remove();
  }

  // --- fetching ---
  async function getJSON(path) {
    const response = await fetch(path, { credentials: "same-origin", cache: "no-store" });
    if (response.status === 401 || response.status === 403) {
      location.reload(); // the session ended: the page answers with its sign-in form
      throw new Error("signed out");
    }
    if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
    return response.json();
  }

  async function refreshState() {
    try {
      render(await getJSON("/monitoring/state"));
    } catch (err) {
      $("meta").textContent = String(err.message || err);
    }
  }

  async function refreshStats() {
    try {
      dash.stats = await getJSON("/stats?hours=24");
    } catch (err) {
      dash.stats = null; // no call log (503) or signed out: the panels that need it stay empty
    }
    renderBudgets(dash.stats);
    renderProviders();
  }

  let refreshSoon = null;
  function connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${scheme}//${location.host}/ws`);
    const live = $("live");
    ws.onopen = () => ws.send(JSON.stringify({ type: "subscribe" }));
    ws.onmessage = (message) => {
      const event = JSON.parse(message.data);
      dash.events += 1;
      if (event.type === "subscribed") {
        live.textContent = "live";
        live.className = "chip on";
      } else if (event.type === "call_completed") {
        addCall(event);
      } else if (event.type === "provider_health") {
        addHealthEvent(event);
        clearTimeout(refreshSoon);
        refreshSoon = setTimeout(refreshState, 100);
      }
    };
    ws.onclose = () => {
      live.textContent = "offline";
      live.className = "chip off";
      setTimeout(connect, 2000);
    };
  }

  function signInForm() {
    $("sign-in-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const message = $("sign-in-message");
      message.textContent = "";
      const response = await fetch("/monitoring/session", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ key: $("admin-key").value }),
      });
      $("admin-key").value = "";
      if (response.ok) {
        location.reload();
        return;
      }
      let text = `HTTP ${response.status}`;
      try {
        text = (await response.json()).error.message;
      } catch (err) {
        /* not JSON: keep the status */
      }
      message.textContent = text;
    });
  }

  function start() {
    $("sign-out").addEventListener("click", async () => {
      await fetch("/monitoring/session", { method: "DELETE", credentials: "same-origin" });
      location.reload();
    });
    if (document.body.dataset.state !== "signed-in") {
      signInForm();
      return;
    }
    initCharts();
    refreshState();
    refreshStats();
    setInterval(refreshState, STATE_EVERY_MS);
    setInterval(refreshStats, STATS_EVERY_MS);
    connect();
  }

  start();
})();
