// The tsstats page: the stats from the live stream, history charts (uPlot), models with their spread and
// Pareto front, studies with error bars and ratios, comparisons and energy. In its tables each quantity has one
// unit: energy in joules, carbon in grams of CO2e, with SI prefixes where the figure needs them.
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
  // the energy figures come from the CPU's and memory's power; a badge names each part a model estimates
  const ESTIMATED_PARTS = [["CPU", "cpuPower"], ["memory", "memoryPower"]];
  const MODEL_WORDS = {tdp_model: "TDP model", dimm_model: "DIMM model"};
  // each chart: its unit, its series (words for the legend), per-GPU series (gpu<i><suffix>) and whether it
  // is drawn only on a machine with a GPU
  const CHARTS = [
    {title: "CPU", unit: "%", metrics: {cpuUsage: "CPU", cpuBusiestCore: "busiest core"}},
    {title: "Memory", unit: "%", metrics: {memoryUsage: "memory"}},
    {title: "GPU", unit: "%", metrics: {gpuUsage: "all GPUs"}, perGpu: "Usage", gpuOnly: true},
    {title: "Power", unit: "W", metrics: {power: "total", cpuPower: "CPU", memoryPower: "memory"},
      gpuMetrics: {gpuPower: "GPUs"}, perGpu: "Power"},
    {title: "Energy and carbon", unit: "Wh", energy: true},
    {title: "Network", unit: "B/s", metrics: {networkReceive: "received", networkTransmit: "sent"}},
    {title: "CPU time by kind", unit: "%", metrics: {cpuUser: "user", cpuSystem: "system", cpuIowait: "I/O wait",
      cpuSteal: "steal"}},
    {title: "Temperatures", unit: "°C", metrics: {cpuTemperature: "CPU package", cpuCoreTemperature: "hottest core"},
      perGpu: "Temperature"},
    {title: "CPU clock", unit: "MHz", metrics: {cpuFrequency: "mean", cpuFrequencyMin: "slowest core"}},
    {title: "Disk", unit: "B/s", metrics: {diskRead: "read", diskWrite: "written"}},
    {title: "Swap", unit: "B/s", metrics: {swapIn: "in", swapOut: "out"}},
    {title: "Pressure stalls", unit: "%", metrics: {pressureCpu: "CPU", pressureMemory: "memory", pressureIo: "I/O"}},
  ];
  const RANGES = ["-15m", "-1h", "-24h", "-7d", "-30d"];
  const asked = new URLSearchParams(location.search).get("range");
  const state = {token: sessionStorage.getItem(TOKEN_KEY) || "", range: RANGES.includes(asked) ? asked : "-15m",
    charts: [], reasons: {}, gpus: [], lastCounts: "", reportS: 86400};
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
    return value.toLocaleString("en", {maximumSignificantDigits: 3});  // 0.000000328, never 3.28e-7
  }

  // a quantity in the unit that reads best (units from the largest; the last one's limit is 0): energy from
  // joules (mWh, Wh, kWh, MWh), carbon from grams
  function scaled(value, units) {
    if (value === null || value === undefined) return "–";
    const [, unit, factor] = units.find(([limit]) => Math.abs(value) >= limit);
    return format(Number((value * factor).toPrecision(3))) + " " + unit;
  }
  const prefixed = (unit) => [[1e9, "G" + unit, 1e-9], [1e6, "M" + unit, 1e-6], [1e3, "k" + unit, 1e-3],
    [1, unit, 1], [1e-3, "m" + unit, 1e3], [0, "µ" + unit, 1e6]];
  const jouleText = (joules) => scaled(joules, prefixed("J"));
  const carbonText = (grams) => scaled(grams, prefixed("g CO2e"));
  // an axis' tick: short, with an SI prefix (1.2M, 350k, 0.5), so that no label is wider than its axis
  function tickText(value) {
    if (value === null || value === undefined) return "";
    const [, prefix, factor] = [[1e9, "G", 1e-9], [1e6, "M", 1e-6], [1e3, "k", 1e-3], [0, "", 1]]
      .find(([limit]) => Math.abs(value) >= limit);
    return String(Number((value * factor).toPrecision(3))) + prefix;
  }

  function estimateNote(sources) {
    const parts = ESTIMATED_PARTS.filter(([, key]) => MODEL_WORDS[sources[key]])
      .map(([name, key]) => name + ": " + MODEL_WORDS[sources[key]]);
    return "estimated (" + parts.join(", ") + ")";
  }

  // -- figures -------------------------------------------------------------------------------------------
  function renderFigures(stats) {
    state.lastStats = stats;
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
            badge.textContent = estimateNote(meta.sources);
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
      loadStudies();
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

  // the series of a chart: [metric, legend in words with its unit]
  function chartSeries(spec) {
    if (spec.energy) return [["energy", "energy Wh"], ["energy", "carbon g CO2e"]];
    const gpus = state.gpus.length ? Object.entries(spec.gpuMetrics || {}) : [];
    const perGpu = spec.perGpu ? state.gpus.map((index) => ["gpu" + index + spec.perGpu, "GPU " + index]) : [];
    return Object.entries(spec.metrics).concat(gpus, perGpu).map(([name, words]) => [name, words + " " + spec.unit]);
  }

  function buildCharts() {
    const container = $("charts");
    container.textContent = "";
    state.charts = CHARTS.filter((spec) => !spec.gpuOnly || state.gpus.length).map((spec) => {
      const box = document.createElement("div");
      box.className = "chart";
      box.dataset.title = spec.title;
      box.innerHTML = `<h3></h3><div class="plot"></div><div class="empty" hidden>no data in this range</div>`;
      box.querySelector("h3").textContent = spec.energy ? "Energy (Wh) and carbon (g CO2e) per interval"
        : spec.title + " " + spec.unit;
      container.appendChild(box);
      return {spec, box, plot: null};
    });
    loadHistory();
  }

  // energy per bucket from the counter (its value at the bucket's end less that at its start), in Wh, and its
  // carbon at the range's mean intensity and PUE (as /api/energy gives them)
  async function energyData(answer, range) {
    const {min, max} = answer.series.energy;
    const wh = max.map((end, i) => (end === null || min[i] === null ? null : Math.max(end - min[i], 0) / 3600));
    const energy = await api("/api/energy?from=" + encodeURIComponent(range));
    const grams = wh.map((value) => (value === null ? null : value * energy.pue * energy.gPerKwh / 1000));
    return [wh, grams];
  }

  let historyRound = 0;

  async function loadHistory() {
    const palette = colors();
    const round = ++historyRound;
    const range = state.range;
    await Promise.all(state.charts.map(async (chart) => {
      const series = chartSeries(chart.spec);
      const metrics = [...new Set(series.map(([name]) => name))];
      const query = new URLSearchParams({metrics: metrics.join(","), from: range, points: "300",
        agg: chart.spec.energy ? "min,max" : "avg"});
      let answer, values;
      try {
        answer = await api("/api/history?" + query);
        values = chart.spec.energy ? await energyData(answer, range) : metrics.map((name) => answer.series[name].avg);
      } catch (error) {
        if (error instanceof Unauthorized) { askToken(true); }
        return;
      }
      if (round !== historyRound) return;  // a newer request (another range) is on its way
      const xs = answer.timestamps.map((ms) => ms / 1000);
      const data = [xs].concat(values);
      const hasData = data.slice(1).some((values) => values.some((value) => value !== null));
      chart.box.querySelector(".empty").hidden = hasData;
      chart.box.dataset.points = String(data.slice(1).reduce(
        (sum, values) => sum + values.filter((value) => value !== null).length, 0));
      chart.box.dataset.range = range;
      const width = Math.max(chart.box.clientWidth - 10, 300);
      if (chart.plot) chart.plot.destroy();
      chart.plot = new uPlot({
        width, height: 180,
        series: [{}].concat(series.map(([, label], i) => ({label, stroke: palette[i % palette.length],
          scale: chart.spec.energy && i === 1 ? "g" : "y",
          width: 1.5, spanGaps: false, points: {show: (u, si, i0, i1) => i1 - i0 < 60 || undefined}}))),
        axes: [{stroke: palette.length ? getComputedStyle(document.body).color : undefined},
          valueAxis("y", 3)].concat(chart.spec.energy ? [Object.assign(valueAxis("g", 1), {grid: {show: false}})] : []),
      }, data, chart.box.querySelector(".plot"));
    }));
  }

  // a value axis whose ticks read tickText and whose width fits its widest tick (uPlot draws on a canvas: the
  // width is measured with the axis' own font); the widths chosen are on the chart for the page's tests
  function valueAxis(scale, side) {
    return {scale, side, stroke: getComputedStyle(document.body).color,
      values: (u, splits) => splits.map(tickText),
      size(u, values, axisIndex) {
        if (!values) return 40;
        u.ctx.save();
        u.ctx.font = u.axes[axisIndex].font[0];
        const widest = Math.max(0, ...values.map((text) => u.ctx.measureText(text).width / devicePixelRatio));
        const size = Math.ceil(widest) + 18;  // the tick (5 px), the gap (5 px) and room to spare
        const box = u.root.closest(".chart");
        if (box) box.dataset["axis" + scale] = JSON.stringify({size, labels: values, font: u.ctx.font});
        u.ctx.restore();
        return size;
      }};
  }

  $("ranges").addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (!button) return;
    chooseRange(button.dataset.range);
    history.replaceState(null, "", "?range=" + encodeURIComponent(state.range));  // a link keeps the range
    loadHistory();
  });

  function chooseRange(range) {
    state.range = range;
    for (const other of $("ranges").querySelectorAll("button")) {
      other.classList.toggle("active", other.dataset.range === range);
    }
  }
  chooseRange(state.range);

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
      const cells = [item.id, item.name, (item.models || []).join(", "), item.status, item.accuracy, item.speed,
        item.latencyMs, jouleText(item.energyJ), jouleText(item.energyPerItemJ), carbonText(item.carbonG)];
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

  // a column's value: a figure, the half-width of its mean's 95 % interval ("figure±"), or the front
  function modelValue(item, key) {
    if (key === "runs") return item.runs.total;
    if (key === "pareto") return item.pareto === null ? null : (item.pareto ? "yes" : "no");
    if (key.endsWith("±")) {
      const spread = item.spread[key.slice(0, -1)];
      return spread && spread.ci95High !== null ? (spread.ci95High - spread.ci95Low) / 2 : null;
    }
    return item[key];
  }

  async function loadModels() {
    let table;
    try { table = await api("/api/models?from=-30d"); } catch (error) { return; }
    state.models = table.items;
    const omitted = $("models-omitted");
    omitted.hidden = !table.omitted;
    omitted.textContent = table.omitted ? `Showing ${format(table.items.length)} of ${format(table.models)} models ` +
      `(the first by name); ${format(table.omitted)} more are not listed.` : "";
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
      for (const column of ["model", "runs", "accuracy", "accuracy±", "speed", "latencyMs", "energyPerRunJ",
        "energyPerRunJ±", "energyPerItemJ", "energyPerItemJ±", "carbonPerItemG", "sciPerItemG", "pareto"]) {
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
    drawPareto(state.models || []);
  }

  // -- drawings: SVG, sized by their viewBox, each mark carrying its figures for the page's tests ------------
  const SVG = "http://www.w3.org/2000/svg";

  // an element under ``parent``, in its namespace (SVG inside an svg, HTML elsewhere)
  function mark(parent, name, attributes, text) {
    const node = parent.namespaceURI === SVG ? document.createElementNS(SVG, name) : document.createElement(name);
    for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
    if (text !== undefined) node.textContent = text;
    parent.appendChild(node);
    return node;
  }

  // round ticks (1, 2 or 5 x a power of ten apart) within [low, high], about ``count`` intervals of them
  function ticks(low, high, count) {
    const raw = (high - low) / count || 1;
    const power = 10 ** Math.floor(Math.log10(raw));
    const step = [1, 2, 5, 10].map((times) => times * power).find((candidate) => candidate >= raw);
    const found = [];
    for (let value = Math.ceil(low / step) * step; value <= high + step * 1e-9; value += step) {
      found.push(Number(value.toPrecision(12)));
    }
    return found;
  }

  // accuracy (y) against energy per item (x); the front's points filled and joined in order of energy
  function drawPareto(items) {
    const svg = $("pareto");
    svg.textContent = "";
    const points = items.filter((item) => item.accuracy !== null && item.energyPerItemJ !== null);
    $("no-pareto").hidden = points.length > 0;
    svg.hidden = points.length === 0;
    if (!points.length) return;
    const width = 640, height = 300, left = 64, right = 20, top = 12, bottom = 44;
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    const energies = points.map((item) => item.energyPerItemJ), accuracies = points.map((item) => item.accuracy);
    const xMax = Math.max(...energies) * 1.1 || 1, yLow = Math.max(Math.min(...accuracies) - 5, 0);
    const yHigh = Math.min(Math.max(...accuracies) + 5, 100) > yLow ? Math.min(Math.max(...accuracies) + 5, 100)
      : yLow + 1;
    const x = (value) => left + (width - left - right) * value / xMax;
    const y = (value) => top + (height - top - bottom) * (1 - (value - yLow) / (yHigh - yLow));
    mark(svg, "line", {class: "axis", x1: left, y1: height - bottom, x2: width - right, y2: height - bottom});
    mark(svg, "line", {class: "axis", x1: left, y1: top, x2: left, y2: height - bottom});
    for (const value of ticks(0, xMax, 4)) {
      mark(svg, "text", {x: x(value), y: height - bottom + 16, "text-anchor": "middle"}, tickText(value));
    }
    for (const value of ticks(yLow, yHigh, 4)) {
      mark(svg, "text", {x: left - 6, y: y(value) + 4, "text-anchor": "end"}, tickText(value));
    }
    mark(svg, "text", {x: (left + width - right) / 2, y: height - 6, "text-anchor": "middle"}, "energy per item (J)");
    mark(svg, "text", {x: 14, y: (top + height - bottom) / 2, "text-anchor": "middle",
      transform: `rotate(-90 14 ${(top + height - bottom) / 2})`}, "accuracy (%)");
    const front = points.filter((item) => item.pareto).sort((a, b) => a.energyPerItemJ - b.energyPerItemJ);
    mark(svg, "polyline", {class: "front-line", points: front.map((item) =>
      `${x(item.energyPerItemJ)},${y(item.accuracy)}`).join(" ")});
    for (const item of points) {
      const dot = mark(svg, "circle", {class: "point" + (item.pareto ? " front" : ""), r: 5,
        cx: x(item.energyPerItemJ), cy: y(item.accuracy), "data-model": item.model});
      mark(dot, "title", {}, `${item.model}: ${format(item.accuracy)} %, ${jouleText(item.energyPerItemJ)} per item` +
        (item.pareto ? " (on the front)" : ""));
      if (points.length <= 30) {  // named beside its point while the names fit
        mark(svg, "text", {x: x(item.energyPerItemJ) + 8, y: y(item.accuracy) - 6}, item.model.slice(0, 24));
      }
    }
  }

  // -- studies ---------------------------------------------------------------------------------------------
  async function loadStudies() {
    let list;
    try { list = await api("/api/studies"); } catch (error) { return; }
    const select = $("study-select");
    const chosen = state.study && list.items.some((item) => item.id === state.study) ? state.study
      : (list.items[0] || {}).id;
    $("no-studies").hidden = list.items.length > 0;
    $("study-view").hidden = list.items.length === 0;
    select.textContent = "";
    for (const item of list.items) {
      mark(select, "option", {value: item.id}, `${item.id} (${item.contenders.length} contenders, ${item.trials} trials)`);
    }
    if (chosen === undefined) return;
    select.value = chosen;
    loadStudy(chosen);
  }

  $("study-select").addEventListener("change", () => loadStudy($("study-select").value));

  async function loadStudy(id) {
    state.study = id;
    let study;
    try { study = await api("/api/studies/" + encodeURIComponent(id)); } catch (error) { return; }
    if (state.study !== id) return;  // another was chosen meanwhile
    const withEnergy = study.commands.every((command) => command.energy);
    const perItem = study.items ? "per item" : "per run";
    $("study-bars-title").textContent = withEnergy ? `Energy ${perItem} (J: mean, 95 % interval)`
      : "Time (s: mean, 95 % interval): no energy was measured";
    $("study-note").textContent = study.neverQuiet ? "the machine was never quiet: " + study.neverQuiet
      : (study.idleBaseline ? "idle baseline " + study.idleBaseline.how : "");
    drawBars(study.commands.map((command) => [command.name, withEnergy ? command.energy : command.time]),
      withEnergy ? "J" : "s");
    const body = $("study-ratios").querySelector("tbody");
    body.textContent = "";
    const words = {energy: `energy ${perItem}`, energyNetOfIdle: `energy ${perItem} net of idle`, time: "time"};
    for (const [quantity, ratios] of Object.entries(study.ratios)) {
      for (const found of ratios) {
        const row = mark(body, "tr", {"data-quantity": quantity, "data-other": found.other});
        mark(row, "td", {}, words[quantity] || quantity);
        mark(row, "td", {}, `${found.other} / ${found.base}`);
        mark(row, "td", {}, `${found.value.toFixed(2)} ± ${found.spread.toFixed(2)}`);
        mark(row, "td", {}, `${found.ci_low.toFixed(2)} – ${found.ci_high.toFixed(2)}`);
        mark(row, "td", {class: found.significant ? "significant" : ""},
          (found.significant ? "significant" : "not significant") + ` (p = ${Number(found.p.toPrecision(2))})`);
      }
    }
  }

  // a horizontal bar per contender from 0 to its mean, with its 95 % interval as an error bar
  function drawBars(rows, unit) {
    const svg = $("study-bars");
    svg.textContent = "";
    const width = 640, left = 180, right = 24, top = 10, band = 34, height = top + band * rows.length + 40;
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    const high = Math.max(...rows.map(([, d]) => Math.max(d.ci_high ?? d.mean, d.mean))) * 1.1 || 1;
    const x = (value) => left + (width - left - right) * Math.max(value, 0) / high;
    const bottom = top + band * rows.length;
    mark(svg, "line", {class: "axis", x1: left, y1: bottom, x2: width - right, y2: bottom});
    for (const value of ticks(0, high, 4)) {
      mark(svg, "text", {x: x(value), y: bottom + 16, "text-anchor": "middle"}, tickText(value));
    }
    mark(svg, "text", {x: (left + width - right) / 2, y: bottom + 34, "text-anchor": "middle"}, unit);
    rows.forEach(([name, d], i) => {
      const middle = top + band * i + band / 2;
      const label = mark(svg, "text", {x: left - 8, y: middle + 4, "text-anchor": "end"},
        name.length > 28 ? name.slice(0, 27) + "…" : name);
      mark(label, "title", {}, name);
      mark(svg, "rect", {class: "bar", x: left, y: middle - 10, width: x(d.mean) - left, height: 20,
        "data-name": name, "data-mean": d.mean});
      if (d.ci_low !== null && d.ci_high !== null) {
        const error = {class: "error", "data-name": name, "data-low": d.ci_low, "data-high": d.ci_high};
        mark(svg, "line", {...error, x1: x(d.ci_low), y1: middle, x2: x(d.ci_high), y2: middle});
        for (const end of [d.ci_low, d.ci_high]) {
          mark(svg, "line", {class: "error", x1: x(end), y1: middle - 6, x2: x(end), y2: middle + 6});
        }
      }
    });
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
    const joules = energy.energyJ;
    const rows = [["CPU", jouleText(joules.cpu), energy.methods.cpu],
      ["GPU", jouleText(joules.gpu), energy.methods.gpu], ["Memory", jouleText(joules.memory), energy.methods.memory],
      ["Total", jouleText(joules.total), ""],
      ["Carbon", carbonText(energy.carbonG), "at " + format(energy.gPerKwh) + " g/kWh"]];
    for (const [name, text, note] of rows) {
      if (name === "GPU" && note === "absent") continue;  // no GPU here: not a row of zeros
      const row = document.createElement("tr");
      row.innerHTML = "<td></td><td class='value'></td><td class='muted'></td>";
      row.children[0].textContent = name;
      row.children[1].textContent = text;
      row.children[2].textContent = note;
      body.appendChild(row);
    }
  }

  // -- start -----------------------------------------------------------------------------------------------
  let started = false;

  async function start() {
    try {  // the figures first; the reasons for what is not measured fill in once /api/check answers
      const check = api("/api/check").then((answer) => { state.reasons = answer.reasons || {}; }, () => {});
      const stats = await api("/api/dashboard/stats");
      renderFigures(stats);
      check.then(() => renderFigures(state.lastStats || stats));
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
