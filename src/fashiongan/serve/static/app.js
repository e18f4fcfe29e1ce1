// fashiongan web page: plain JavaScript over the /v1 API, no libraries, no build step.
"use strict";

const $ = (id) => document.getElementById(id);
let models = [];
let current = null;

function showError(message) {
  const box = $("error");
  box.textContent = message || "";
  box.hidden = !message;
}

async function fetchOk(url, options) {
  const response = await fetch(url, options);
  if (!response.ok) {
    let detail = response.statusText;
    try {
      const body = await response.json();
      detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
    } catch (e) { /* not JSON */ }
    throw new Error(`${response.status}: ${detail}`);
  }
  return response;
}

function query(params) {
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    for (const v of [].concat(value)) if (v !== "" && v !== null && v !== undefined) q.append(key, v);
  }
  return q.toString();
}

// --- model picker -----------------------------------------------------------------------
async function loadModels() {
  models = await (await fetchOk("/v1/models")).json();
  const select = $("model");
  select.innerHTML = "";
  for (const m of models) select.add(new Option(`${m.id} (step ${m.step})`, m.id));
  select.onchange = () => selectModel(select.value);
  selectModel(models[0].id);
}

function selectModel(id) {
  current = models.find((m) => m.id === id);
  const metrics = current.metrics
    ? " · " + Object.entries(current.metrics).map(([k, v]) => `${k} ${(+v).toFixed(3)}`).join(", ")
    : "";
  $("info").textContent =
    `${current.model}, ${current.conditioning} conditioning, ${current.resolution}px, ` +
    `step ${current.step}${metrics}`;
  const cls = $("gen-class");
  cls.innerHTML = "";
  cls.add(new Option("all classes", ""));
  if (current.conditional) current.classes.forEach((name) => cls.add(new Option(name, name)));
  cls.disabled = !current.conditional;
  $("interp-kind").querySelector("option[value=classes]").disabled = !current.conditional;
  document.querySelector("nav button[data-view=run]").disabled = !current.has_run;
  generate();
}

// --- generate ---------------------------------------------------------------------------
function generateUrl(format) {
  return "/v1/generate?" + query({
    model: current.id, n: $("gen-n").value, class: $("gen-class").value,
    seed: $("gen-seed").value, format,
  });
}

async function generate() {
  showError("");
  try {
    const blob = await (await fetchOk(generateUrl("png"))).blob();
    const img = $("gen-image");
    if (img.dataset.url) URL.revokeObjectURL(img.dataset.url);
    img.dataset.url = URL.createObjectURL(blob);
    img.src = img.dataset.url;
    $("gen-png").href = generateUrl("png");
    $("gen-npz").href = generateUrl("npz");
  } catch (e) { showError(e.message); }
}

// --- interpolate ------------------------------------------------------------------------
let frames = [];

async function interpolate() {
  showError("");
  const kind = $("interp-kind").value;
  const a = $("interp-a").value.trim(), b = $("interp-b").value.trim();
  const fixed = $("interp-fixed").value.trim();
  const params = { model: current.id, steps: $("interp-steps").value, format: "json" };
  if (kind === "seeds") {
    params.seeds = [a, b];
    if (fixed && current.conditional) params.class = fixed;
  } else {
    params.class = [a, b];
    params.seeds = fixed || "0";
  }
  try {
    const body = await (await fetchOk("/v1/interpolate?" + query(params))).json();
    frames = body.walks[0];
    const slider = $("interp-slider");
    slider.max = frames.length - 1;
    slider.value = 0;
    showFrame(0);
  } catch (e) { showError(e.message); }
}

function showFrame(i) {
  if (frames.length) $("interp-image").src = "data:image/png;base64," + frames[i];
}

// --- run view ---------------------------------------------------------------------------
function drawChart(canvas, rows, series) {
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height, pad = 36;
  ctx.clearRect(0, 0, w, h);
  const xs = rows.map((r) => r.kimg ?? r.step);
  const values = series.flatMap(([key]) => rows.map((r) => r[key]).filter(Number.isFinite));
  if (!rows.length || !values.length) {
    ctx.fillStyle = "#888";
    ctx.fillText("no data", w / 2 - 20, h / 2);
    return;
  }
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  const [y0, y1] = [Math.min(...values), Math.max(...values)];
  const X = (x) => pad + ((x - x0) / (x1 - x0 || 1)) * (w - pad - 8);
  const Y = (y) => h - pad + 8 - ((y - y0) / (y1 - y0 || 1)) * (h - pad - 8);
  ctx.strokeStyle = "#bbb";
  ctx.strokeRect(pad, 8, w - pad - 8, h - pad - 8 + 8 - 8);
  ctx.fillStyle = "#555";
  ctx.font = "11px sans-serif";
  ctx.fillText(y1.toPrecision(3), 2, 14);
  ctx.fillText(y0.toPrecision(3), 2, h - pad + 8);
  ctx.fillText(`${x0.toFixed(1)} → ${x1.toFixed(1)} ${rows[0].kimg !== undefined ? "kimg" : "step"}`, pad, h - 6);
  series.forEach(([key, colour], k) => {
    ctx.strokeStyle = colour;
    ctx.beginPath();
    let started = false;
    rows.forEach((r, i) => {
      if (!Number.isFinite(r[key])) return;
      if (started) ctx.lineTo(X(xs[i]), Y(r[key])); else ctx.moveTo(X(xs[i]), Y(r[key]));
      started = true;
    });
    ctx.stroke();
    ctx.fillStyle = colour;
    rows.forEach((r, i) => {  // a dot per point: a lone evaluation is visible too
      if (Number.isFinite(r[key])) ctx.fillRect(X(xs[i]) - 2, Y(r[key]) - 2, 4, 4);
    });
    ctx.fillText(key, w - 110, 20 + 13 * k);
  });
}

let gridSteps = [];

async function showRun() {
  showError("");
  try {
    const m = await (await fetchOk(`/v1/runs/${encodeURIComponent(current.id)}/metrics`)).json();
    drawChart($("chart-loss"), m.train, [["loss_d", "#c33"], ["loss_g", "#36c"]]);
    drawChart($("chart-grad"), m.train, [["grad_norm_d", "#c33"], ["grad_norm_g", "#36c"]]);
    drawChart($("chart-fid"), m.eval, [["fid", "#393"]]);
    const last = m.train[m.train.length - 1];
    $("run-summary").textContent = last
      ? `${m.train.length} log rows, last at step ${last.step} (${last.kimg} kimg)` +
        (m.eval.length ? `; best FID ${Math.min(...m.eval.map((r) => r.fid)).toFixed(2)}` : "; not evaluated during training")
      : "no training log";
    gridSteps = (await (await fetchOk(`/v1/runs/${encodeURIComponent(current.id)}/grids`)).json()).steps;
    const slider = $("grid-slider");
    slider.max = Math.max(0, gridSteps.length - 1);
    slider.value = slider.max;
    showGrid(+slider.value);
  } catch (e) { showError(e.message); }
}

function showGrid(i) {
  if (!gridSteps.length) return;
  $("grid-step").textContent = gridSteps[i];
  $("grid-image").src = `/v1/runs/${encodeURIComponent(current.id)}/grids/${gridSteps[i]}`;
}

// --- wiring -----------------------------------------------------------------------------
function showView(name) {
  for (const b of document.querySelectorAll("nav button")) b.classList.toggle("active", b.dataset.view === name);
  for (const v of ["generate", "interpolate", "run"]) $("view-" + v).hidden = v !== name;
  if (name === "run") showRun();
  if (name === "interpolate" && !frames.length) interpolate();
}

document.querySelectorAll("nav button").forEach((b) => (b.onclick = () => showView(b.dataset.view)));
$("generate-form").onsubmit = (e) => { e.preventDefault(); generate(); };
$("gen-new-seed").onclick = () => { $("gen-seed").value = Math.floor(Math.random() * 1e9); generate(); };
$("interp-form").onsubmit = (e) => { e.preventDefault(); interpolate(); };
$("interp-kind").onchange = () => {
  const classes = $("interp-kind").value === "classes";
  $("interp-a").value = classes ? "sneaker" : "0";
  $("interp-b").value = classes ? "ankle boot" : "1";
  $("interp-fixed").value = classes ? "0" : "";
};
$("interp-slider").oninput = (e) => showFrame(+e.target.value);
$("grid-slider").oninput = (e) => showGrid(+e.target.value);
loadModels().catch((e) => showError(e.message));
