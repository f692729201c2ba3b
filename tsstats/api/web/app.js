// The tsstats page: the stats from the live stream, history charts (uPlot), comparisons and energy.
"use strict";
(function () {
  const TOKEN_KEY = "tsstats-token";
  const GROUPS = {systemMetrics: "System", liveStats: "Live", sustainability: "Sustainability",
    comparisonStats: "Comparisons"};
  const LABELS = {cpuUsage: "CPU", gpuUsage: "GPU", memoryUsage: "Memory", networkLatency: "Network latency",
    activeConnections: "TCP connections", activeComparisons: "Running", queueLength: "Queued",
    systemLoad: "System load", carbonFootprint: "Carbon (report window)", energyConsumption: "Energy (report window)",
    uptime: "Uptime", responseTime: "Model response time", errorRate: "Error rate",
    totalCarbonSaved: "Carbon saved", greenScore: "Green score", energyEfficiency: "Energy efficiency",
    renewableEnergyUsage: "Renewable share", carbonOffset: "Carbon offset", totalComparisons: "Completed",
    modelsCompared: "Models compared", averageAccuracy: "Average accuracy", averageSpeed: "Average speed"};
  const ESTIMATE_METHOD = {energyConsumption: "cpuPower", carbonFootprint: "cpuPower", energyEfficiency: "cpuPower",
    greenScore: "cpuPower", totalCarbonSaved: "cpuPower"};
  const CHARTS = [
    {title: "CPU %", metrics: ["cpuUsage", "cpuBusiestCore"]},
    {title: "Memory %", metrics: ["memoryUsage"]},
    {title: "GPU %", metrics: ["gpuUsage"], perGpu: "Usage"},
    {title: "Power W", metrics: ["power", "cpuPower", "gpuPower", "memoryPower"], perGpu: "Power"},
    {title: "Network B/s", metrics: ["networkReceive", "networkTransmit"]},
    {title: "CPU time by kind %", metrics: ["cpuUser", "cpuSystem", "cpuIowait", "cpuSteal"]},
    {title: "Temperatures °C", metrics: ["cpuTemperature", "cpuCoreTemperature"], perGpu: "Temperature"},
    {title: "CPU clock MHz", metrics: ["cpuFrequency", "cpuFrequencyMin"]},
    {title: "Disk B/s", metrics: ["diskRead", "diskWrite"]},
    {title: "Swap B/s", metrics: ["swapIn", "swapOut"]},
    {title: "Pressure stalls %", metrics: ["pressureCpu", "pressureMemory", "pressureIo"]},
  ];
  const state = {token: sessionStorage.getItem(TOKEN_KEY) || "", range: "-15m", charts: [], reasons: {},
    gpus: [], lastCounts: "", reportS: 86400};
  const $ = (id) => document.getElementById(id);

  class Unauthorized extends Error {}

  async function api(path, tries = 3) {
    const headers = state.token ? {Authorization: "Bearer " + state.token} : {};
    const answer = await fetch(path, {headers, cache: "no-store"});
    if (answer.status === 401) throw new Unauthorized();
    const retryAfter = Number(answer.headers.get("Retry-After"));
    if (answer.status === 503 && tries > 1 && retryAfter > 0) {  // busy for a moment: as it says, try again
      await new Promise((resolve) => setTimeout(resolve, 1000 * Math.min(retryAfter, 10)));
      return api(path, tries - 1);
    }
    if (!answer.ok) {
      let message = answer.statusText;
      try { message = (await answer.json()).error.message; } catch (e) { /* not JSON */ }
      throw new Error(message);
    }
    return answer.json();
  }

  function askToken(refused) {
    $("main").hidden = true;
    $("token-form").hidden = false;
    $("token-message").textContent = refused && state.token
      ? "The token was refused: enter the token tsstats was started with."
      : "This tsstats needs its token (the one given with --token or TSSTATS_TOKEN).";
    setStatus("token needed", "down");
    $("token-input").focus();
  }

  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    state.token = $("token-input").value.trim();
    sessionStorage.setItem(TOKEN_KEY, state.token);
    $("token-form").hidden = true;
    $("main").hidden = false;
    start();
  });

  function setStatus(text, kind) {
    const status = $("status");
    status.textContent = text;
    status.className = "status " + (kind || "");
  }

  function format(value) {
    if (Math.abs(value) >= 1000 || value === 0 || Number.isInteger(value)) return value.toLocaleString("en");
    if (Math.abs(value) >= 1) return value.toFixed(2);
    return value.toPrecision(3);
  }

  // -- figures -------------------------------------------------------------------------------------------
  function renderFigures(stats) {
    const meta = stats.meta;
    const unavailable = new Set(meta.unavailable);
    const estimated = new Set(meta.estimated);
    const container = $("figures");
    container.textContent = "";
    for (const [group, title] of Object.entries(GROUPS)) {
      const card = document.createElement("div");
      card.className = "group";
      card.innerHTML = `<h3>${title}</h3>`;
      for (const [field, value] of Object.entries(stats[group])) {
        const row = document.createElement("div");
        row.className = "figure";
        row.dataset.field = field;
        const label = document.createElement("span");
        label.textContent = LABELS[field] || field;
        const shown = document.createElement("span");
        if (unavailable.has(field)) {
          shown.className = "na";
          shown.textContent = "not measured: " + (state.reasons[field] || "no reading on this machine");
        } else {
          shown.className = "value";
          shown.textContent = format(value);
          const unit = document.createElement("span");
          unit.className = "unit";
          unit.textContent = meta.units[group][field] === "count" ? "" : meta.units[group][field];
          shown.appendChild(unit);
          if (estimated.has(field)) {
            const badge = document.createElement("span");
            badge.className = "est";
            badge.textContent = "estimated (" + meta.sources[ESTIMATE_METHOD[field]] + ")";
            shown.appendChild(badge);
          }
        }
        row.append(label, shown);
        card.appendChild(row);
      }
      container.appendChild(card);
    }
    $("generated").textContent = "as of " + new Date(meta.generatedAt).toLocaleTimeString();
    state.reportS = meta.windows.reportS;
    const gpus = meta.gpus.map((gpu) => gpu.index);
    if (gpus.join() !== state.gpus.join()) {
      state.gpus = gpus;
      buildCharts();
    }
    const counts = [stats.liveStats.activeComparisons, stats.liveStats.queueLength,
      stats.comparisonStats.totalComparisons].join();
    if (counts !== state.lastCounts) {
      state.lastCounts = counts;
      loadComparisons();
      loadModels();
    }
  }

  // -- the live stream: fetch, so that the token can travel in a header; reconnects by itself ----------------
  async function stream() {
    let delay = 1000;
    for (;;) {
      try {
        const headers = state.token ? {Authorization: "Bearer " + state.token} : {};
        const answer = await fetch("/api/dashboard/stream", {headers, cache: "no-store"});
        if (answer.status === 401) { askToken(true); return; }
        if (!answer.ok || !answer.body) throw new Error("stream answered " + answer.status);
        setStatus("live", "live");
        delay = 1000;
        const reader = answer.body.getReader();
        const decoder = new TextDecoder();
        let buffer = "";
        for (;;) {
          const {value, done} = await reader.read();
          if (done) break;
          buffer += decoder.decode(value, {stream: true});
          let end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            const message = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const data = message.split("\n").filter((line) => line.startsWith("data: "))
              .map((line) => line.slice(6)).join("\n");
            if (data) renderFigures(JSON.parse(data));
          }
        }
        throw new Error("the stream ended");
      } catch (error) {
        setStatus("reconnecting…", "down");
        await new Promise((resolve) => setTimeout(resolve, delay));
        delay = Math.min(delay * 2, 5000);
      }
    }
  }

  // -- history ---------------------------------------------------------------------------------------------
  function colors() {
    const style = getComputedStyle(document.documentElement);
    return ["--c1", "--c2", "--c3", "--c4", "--c5"].map((name) => style.getPropertyValue(name).trim());
  }

  function chartMetrics(spec) {
    const perGpu = spec.perGpu ? state.gpus.map((index) => "gpu" + index + spec.perGpu) : [];
    return spec.metrics.concat(perGpu);
  }

  function buildCharts() {
    const container = $("charts");
    container.textContent = "";
    state.charts = CHARTS.map((spec) => {
      const box = document.createElement("div");
      box.className = "chart";
      box.innerHTML = `<h3>${spec.title}</h3><div class="plot"></div><div class="empty" hidden>no data in this range</div>`;
      container.appendChild(box);
      return {spec, box, plot: null};
    });
    loadHistory();
  }

  let historyRound = 0;

  async function loadHistory() {
    const palette = colors();
    const round = ++historyRound;
    const range = state.range;
    await Promise.all(state.charts.map(async (chart) => {
      const metrics = chartMetrics(chart.spec);
      const query = new URLSearchParams({metrics: metrics.join(","), from: range, points: "300"});
      let answer;
      try {
        answer = await api("/api/history?" + query);
      } catch (error) {
        if (error instanceof Unauthorized) { askToken(true); }
        return;
      }
      if (round !== historyRound) return;  // a newer request (another range) is on its way
      const xs = answer.timestamps.map((ms) => ms / 1000);
      const data = [xs].concat(metrics.map((name) => answer.series[name].avg));
      const hasData = data.slice(1).some((values) => values.some((value) => value !== null));
      chart.box.querySelector(".empty").hidden = hasData;
      chart.box.dataset.points = String(data.slice(1).reduce(
        (sum, values) => sum + values.filter((value) => value !== null).length, 0));
      chart.box.dataset.range = range;
      const width = Math.max(chart.box.clientWidth - 10, 300);
      if (chart.plot) chart.plot.destroy();
      chart.plot = new uPlot({
        width, height: 180,
        series: [{}].concat(metrics.map((name, i) => ({label: name, stroke: palette[i % palette.length],
          width: 1.5, spanGaps: false, points: {show: (u, si, i0, i1) => i1 - i0 < 60 || undefined}}))),
        axes: [{stroke: palette.length ? getComputedStyle(document.body).color : undefined},
          {stroke: getComputedStyle(document.body).color, size: 64}],
      }, data, chart.box.querySelector(".plot"));
    }));
  }

  $("ranges").addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (!button) return;
    state.range = button.dataset.range;
    for (const other of $("ranges").querySelectorAll("button")) other.classList.toggle("active", other === button);
    loadHistory();
  });

  // -- comparisons and energy ------------------------------------------------------------------------------
  async function loadComparisons() {
    let page;
    try { page = await api("/api/comparisons?limit=20"); } catch (error) { return; }
    const body = $("comparisons").querySelector("tbody");
    body.textContent = "";
    $("no-comparisons").hidden = page.items.length > 0;
    for (const item of page.items) {
      const row = document.createElement("tr");
      row.dataset.id = String(item.id);
      const cells = [item.id, item.name, item.status, item.accuracy, item.speed, item.latencyMs, item.energyKwh,
        item.carbonKg === null ? null : item.carbonKg * 1000];
      for (const cell of cells) {
        const td = document.createElement("td");
        td.textContent = cell === null || cell === undefined ? "–" : (typeof cell === "number" ? format(cell) : cell);
        row.appendChild(td);
      }
      const fair = document.createElement("td");  // judged once it has ended (docs/conditions.md)
      fair.className = "fair";
      fair.textContent = item.fair === null || item.fair === undefined ? "–" : (item.fair ? "yes" : "no");
      if (item.fair === false) fair.title = item.unfairReasons.join("; ");
      row.appendChild(fair);
      body.appendChild(row);
    }
  }

  const modelSort = {key: "model", descending: false};

  function modelValue(item, key) {
    return key === "runs" ? item.runs.total : item[key];
  }

  async function loadModels() {
    let table;
    try { table = await api("/api/models?from=-30d"); } catch (error) { return; }
    state.models = table.items;
    renderModels();
  }

  function renderModels() {
    const items = (state.models || []).slice();
    const {key, descending} = modelSort;
    items.sort((a, b) => {
      const x = modelValue(a, key), y = modelValue(b, key);
      if (x === y) return 0;
      if (x === null || x === undefined) return 1;  // no figure: last, whatever the order
      if (y === null || y === undefined) return -1;
      const order = typeof x === "string" ? x.localeCompare(y) : x - y;
      return descending ? -order : order;
    });
    const body = $("models").querySelector("tbody");
    body.textContent = "";
    $("no-models").hidden = items.length > 0;
    for (const item of items) {
      const row = document.createElement("tr");
      row.dataset.model = item.model;
      for (const column of ["model", "runs", "accuracy", "speed", "latencyMs", "energyPerRunJ", "energyPerItemJ",
        "carbonPerItemG", "sciPerItemG"]) {
        const cell = modelValue(item, column);
        const td = document.createElement("td");
        td.textContent = cell === null || cell === undefined ? "–" : (typeof cell === "number" ? format(cell) : cell);
        row.appendChild(td);
      }
      body.appendChild(row);
    }
    for (const th of $("models").querySelectorAll("th")) {
      th.setAttribute("aria-sort", th.dataset.key === key ? (descending ? "descending" : "ascending") : "none");
    }
  }

  $("models").querySelector("thead").addEventListener("click", (event) => {
    const th = event.target.closest("th");
    if (!th) return;
    modelSort.descending = modelSort.key === th.dataset.key ? !modelSort.descending : th.dataset.key !== "model";
    modelSort.key = th.dataset.key;
    renderModels();
  });

  async function loadEnergy() {
    let energy;
    try { energy = await api("/api/energy?from=-" + state.reportS + "s"); } catch (error) { return; }
    const hours = state.reportS / 3600;
    $("energy-window").textContent = "(report window: last " + (hours >= 1 ? hours + " h" : state.reportS + " s") + ")";
    const body = $("energy").querySelector("tbody");
    body.textContent = "";
    const rows = [["CPU", energy.energyKwh.cpu, energy.methods.cpu], ["GPU", energy.energyKwh.gpu, energy.methods.gpu],
      ["Memory", energy.energyKwh.memory, energy.methods.memory], ["Total", energy.energyKwh.total, ""],
      ["Carbon", energy.carbonKg * 1000, "g CO2e at " + energy.gPerKwh + " g/kWh"]];
    for (const [name, value, note] of rows) {
      const row = document.createElement("tr");
      row.innerHTML = "<td></td><td class='value'></td><td class='muted'></td>";
      row.children[0].textContent = name;
      row.children[1].textContent = format(value) + (name === "Carbon" ? " g" : " kWh");
      row.children[2].textContent = note;
      body.appendChild(row);
    }
  }

  // -- start -----------------------------------------------------------------------------------------------
  let started = false;

  async function start() {
    try {
      const check = await api("/api/check");
      state.reasons = check.reasons || {};
      renderFigures(await api("/api/dashboard/stats"));
    } catch (error) {
      if (error instanceof Unauthorized) { askToken(Boolean(state.token)); return; }
      setStatus("unreachable: " + error.message, "down");
    }
    if (started) return;
    started = true;
    if (!state.charts.length) buildCharts();
    loadEnergy();
    stream();
    setInterval(() => { if (!$("main").hidden) loadHistory(); }, 15000);
    setInterval(() => { if (!$("main").hidden) loadEnergy(); }, 30000);
  }

  start();
})();
