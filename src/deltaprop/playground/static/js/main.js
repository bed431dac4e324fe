// The playground page: one WebSocket to the local server, the controls, the URL hash.
import { NetworkView } from "./network.js";
import { curve, datasetPicture, DATASETS, f32, heat, outputColor, points } from "./plots.js";
import { edgePanel, num, stepPanel, unitPanel } from "./panels.js";
import { classColor, css } from "./colors.js";

const $ = (id) => document.getElementById(id);
// Settings that change how the run trains, not what it trains: the worked example keeps them.
const TRAINING_KEYS = new Set(["lr", "optimizer", "momentum", "batch", "l2", "speed"]);

const page = { state: null, frame: null, step: null, curve: [], selection: null, running: false,
  frames: 0, received: 0, socket: null };
window.playground = page; // for the tests and the benchmark

// ------------------------------------------------------------------ the socket
function send(message) {
  if (page.socket && page.socket.readyState === WebSocket.OPEN) page.socket.send(JSON.stringify(message));
}

function say(text, info = false) {
  const box = $("message");
  box.textContent = text;
  box.className = info ? "info" : "";
  box.hidden = !text;
}

function hashValues() {
  const text = decodeURIComponent(location.hash.replace(/^#/, ""));
  const values = {};
  for (const pair of text.split("&")) {
    if (!pair) continue;
    const at = pair.indexOf("=");
    values[at < 0 ? pair : pair.slice(0, at)] = at < 0 ? "" : pair.slice(at + 1);
  }
  return values;
}

function writeHash(hash) {
  const text = Object.entries(hash).map(([k, v]) => `${k}=${v}`).join("&");
  history.replaceState(null, "", `#${text}`);
}

function connect() {
  const socket = new WebSocket(`ws://${location.host}/ws`);
  page.socket = socket;
  socket.addEventListener("open", () => {
    const values = hashValues();
    if (Object.keys(values).length) send({ type: "settings", settings: values });
  });
  socket.addEventListener("message", (event) => receive(JSON.parse(event.data)));
  socket.addEventListener("close", () => { setRunning(false); say("The playground server has stopped: start it again with `deltaprop playground`."); });
}

const HANDLERS = {
  state(m) { onState(m); },
  frame(m) { onFrame(m); },
  step(m) {
    page.step = m;
    $("step-body").innerHTML = stepPanel(page.state, m);
    refreshInspector();
    if (page.frame) view.update(page.frame, m);
  },
  error(m) { say(m.message); if (m.kind === "diverged") setRunning(false); },
  model_file(m) { download(m.name, Uint8Array.from(atob(m.data), (c) => c.charCodeAt(0)), "application/octet-stream"); },
  markdown(m) { download(m.name, m.text, "text/markdown"); },
};

function receive(message) {
  const handler = HANDLERS[message.type];
  if (handler) handler(message);
}

function download(name, content, type) {
  const url = URL.createObjectURL(new Blob([content], { type }));
  const a = document.createElement("a");
  a.href = url; a.download = name;
  document.body.appendChild(a); a.click(); a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

// ------------------------------------------------------------------ messages
function onState(m) {
  page.state = m;
  page.step = null;
  page.curve = [];
  page.selection = null;
  writeHash(m.hash);
  syncControls(m);
  view.build(m);
  $("step-body").innerHTML = '<p class="hint">Press <b>Step</b> (or →) to take one step on the reference path and see every number of it.</p>';
  $("inspector-body").innerHTML = '<p class="hint">Click a unit for its a, z and δ, or an edge for its w, ∂E/∂w and Δw, with the seed\'s formulas and the numbers, as <code>deltaprop explain</code> prints them.</p>';
  onFrame(m.frame);
}

// Frames are drawn at the screen's pace: one that arrives while another waits replaces it
// (its loss-curve points are kept), so a slow page skips frames rather than falling behind.
let pending = null;

function onFrame(f) {
  page.received = (page.received || 0) + 1;
  page.curve = f.curve_from === 0 ? f.curve.slice() : page.curve.concat(f.curve);
  page.frame = f;
  setRunning(f.running);
  $("epoch").textContent = `epoch ${f.epoch}`;
  if (!pending) requestAnimationFrame(draw);
  pending = f;
}

function draw() {
  const f = pending;
  pending = null;
  if (!f || !page.state) return;
  page.frames += 1;
  const bpe = page.state.batches_per_epoch;
  $("substep").textContent = f.batch ? `batch ${f.batch} of ${bpe}` : (f.steps ? `${f.steps} steps` : "");
  $("train-loss").textContent = num(f.train_loss);
  $("test-loss").textContent = num(f.test_loss);
  $("test-accuracy").textContent = f.test_accuracy === null ? "–" : `${(100 * f.test_accuracy).toFixed(1)} %`;
  curve($("curve"), page.curve);
  view.update(f, page.step);
  boundary(f);
  if (page.selection && page.selection.kind === "edge") refreshInspector();
}

function targetRange(state) {
  // A squashing output reads on its own range, [0, 1]; others on the targets'.
  if (["sigmoid", "softmax"].includes(state.network.activations.at(-1))) return [0, 1];
  const t = state.data.train.target;
  if (!t || !t.length) return [0, 1];
  const v = t.map((row) => row[0]);
  return [Math.min(...v), Math.max(...v)];
}

function boundary(f) {
  const canvas = $("boundary"), state = page.state, ext = state.data.extent;
  const note = $("boundary-note");
  if (!ext || !f.grids) {
    canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
    note.hidden = false;
    note.textContent = "One input: there is no plane to draw; the rest works.";
    return;
  }
  note.hidden = true;
  $("plane-note").hidden = !state.data.projected;
  if (state.data.projected) {
    $("plane-note").textContent = `${state.data.n_inputs} inputs, drawn on the plane of their first two ` +
      `principal components through the mean (${Math.round(100 * state.data.projected_variance)} % of the variance).`;
  }
  const nOut = state.network.sizes.at(-1), cells = f.grids.output_cells, range = targetRange(state);
  heat(canvas, cells, outputColor(f32(f.grids.output), nOut, cells, state.data, range));
  points(canvas, ext, state.data.train, false, range);
  if ($("show-test").checked) points(canvas, ext, state.data.test, true, range);
}

function setRunning(running) {
  page.running = running;
  $("play").disabled = running;
  $("pause").disabled = !running;
}

// ------------------------------------------------------------------ the inspector
function refreshInspector() {
  const s = page.selection;
  if (!s || !page.frame) return;
  $("inspector-body").innerHTML = s.kind === "unit"
    ? unitPanel(page.state, page.frame, page.step, s.layer, s.j)
    : edgePanel(page.state, page.frame, page.step, s.layer, s.j, s.i);
}

const view = new NetworkView($("network"), {
  onUnit(layer, j) { page.selection = { kind: "unit", layer, j }; view.select("unit", layer, j); refreshInspector(); },
  onEdge(layer, j, i) { page.selection = { kind: "edge", layer, j, i }; view.select("edge", layer, j, i); refreshInspector(); },
  onLayer(change) {
    const s = page.state.settings;
    const hidden = s.hidden.slice(), acts = s.activation.slice();
    if (change.units !== undefined) hidden[change.layer - 1] = change.units;
    if (change.activation !== undefined) acts[change.layer - 1] = change.activation;
    change_({ shape: hidden.join(","), activation: acts.join(",") });
  },
});

// ------------------------------------------------------------------ controls
function change_(values) {
  say("");
  const keys = Object.keys(values);
  const settings = keys.every((k) => TRAINING_KEYS.has(k)) || "example" in values ? values : { ...values, example: "" };
  send({ type: "settings", settings });
}

function syncControls(m) {
  const s = m.settings, c = m.choices;
  fill($("output"), c.output_activations);
  fill($("init"), c.inits);
  for (const key of ["lr", "momentum", "batch", "l2", "seed", "optimizer", "loss", "output", "init", "train", "noise", "points"]) {
    $(key).value = s[key];
  }
  $("speed").value = String(s.speed);
  $("momentum-box").hidden = !["momentum", "nesterov"].includes(s.optimizer);
  $("train-value").textContent = `${Math.round(s.train * 100)} %`;
  $("noise-value").textContent = `${Math.round(s.noise * 100)} %`;
  $("points-value").textContent = s.points;
  $("example").checked = s.example === "classic";
  document.querySelectorAll("#datasets canvas").forEach((cv) =>
    cv.classList.toggle("selected", !s.example && cv.dataset.name === s.dataset));
  const data = m.data;
  $("data-name").textContent = `${data.name}: ${data.n_train} training / ${data.n_test} test examples, ${data.n_inputs} inputs`;
  const hidden = s.hidden.length;
  $("layer-count").textContent = `${hidden} hidden layer${hidden === 1 ? "" : "s"}`;
  $("add-layer").disabled = hidden >= c.max_hidden_layers || !!s.example;
  $("remove-layer").disabled = hidden === 0 || !!s.example;
  $("network-note").textContent = `${m.network.parameters} parameters · loss ${m.network.loss_formula}`;
  legend(m);
  for (const key of ["train", "noise", "points"]) $(key).disabled = !!s.example;
}

function legend(m) {
  const box = $("legend"), names = m.data.class_names;
  if (names && names.length > 2) {
    box.innerHTML = names.map((name, k) =>
      `<span class="swatch" style="background:${css(classColor(k))}"></span><span>${name}</span>`).join(" ");
    return;
  }
  const range = targetRange(m);
  const [low, high] = names || [num(range[0]), num(range[1])];
  box.innerHTML = `<span class="swatch neg"></span><span>${low}</span><span class="bar"></span>` +
    `<span>${high}</span><span class="swatch pos"></span>`;
}

function fill(select, options) {
  if (select.options.length === options.length) return;
  select.innerHTML = options.map((o) => `<option value="${o}">${o}</option>`).join("");
}

function fileBase64(file) {
  return file.arrayBuffer().then((buffer) => {
    let binary = "";
    const bytes = new Uint8Array(buffer);
    for (let k = 0; k < bytes.length; k += 0x8000) binary += String.fromCharCode(...bytes.subarray(k, k + 0x8000));
    return btoa(binary);
  });
}

function wire() {
  $("play").addEventListener("click", () => { say(""); send({ type: "play" }); setRunning(true); });
  $("pause").addEventListener("click", () => send({ type: "pause" }));
  $("step").addEventListener("click", () => { say(""); send({ type: "step" }); });
  $("reset").addEventListener("click", () => { say(""); send({ type: "reset" }); });
  for (const key of ["lr", "momentum", "batch", "l2", "seed", "optimizer", "loss", "output", "init", "speed"]) {
    $(key).addEventListener("change", () => change_({ [key]: $(key).value }));
  }
  for (const key of ["train", "noise", "points"]) {
    $(key).addEventListener("input", () => { $(`${key}-value`).textContent = key === "points" ? $(key).value : `${Math.round($(key).value * 100)} %`; });
    $(key).addEventListener("change", () => change_({ [key]: $(key).value }));
  }
  $("example").addEventListener("change", () => change_($("example").checked ? { example: "classic" } : { example: "" }));
  $("show-test").addEventListener("change", () => page.frame && boundary(page.frame));
  $("edge-mode").addEventListener("change", () => {
    view.edgeMode = $("edge-mode").value;
    if (page.frame) view.update(page.frame, page.step);
  });
  $("add-layer").addEventListener("click", () => {
    const s = page.state.settings;
    change_({ shape: [...s.hidden, s.hidden.at(-1) || 4].join(","), activation: [...s.activation, s.activation.at(-1) || "tanh"].join(",") });
  });
  $("remove-layer").addEventListener("click", () => {
    const s = page.state.settings;
    change_({ shape: s.hidden.slice(0, -1).join(","), activation: s.activation.slice(0, -1).join(",") || "tanh" });
  });
  $("csv").addEventListener("change", async () => {
    const file = $("csv").files[0];
    if (!file) return;
    say("");
    send({ type: "upload_csv", name: file.name, data: await fileBase64(file) });
    $("csv").value = "";
  });
  $("model-file").addEventListener("change", async () => {
    const file = $("model-file").files[0];
    if (!file) return;
    say("");
    send({ type: "load_model", data: await fileBase64(file) });
    $("model-file").value = "";
  });
  $("download-model").addEventListener("click", () => send({ type: "export_model" }));
  $("download-markdown").addEventListener("click", () => send({ type: "export_markdown" }));
  document.addEventListener("keydown", (event) => {
    if (event.target.closest && event.target.closest("input, select, textarea")) return;
    if (event.key === " ") { event.preventDefault(); page.running ? send({ type: "pause" }) : (send({ type: "play" }), setRunning(true)); }
    if (event.key === "ArrowRight") { event.preventDefault(); send({ type: "step" }); }
  });
  window.addEventListener("hashchange", () => send({ type: "settings", settings: hashValues() }));
  const box = $("datasets");
  for (const name of DATASETS) {
    const canvas = document.createElement("canvas");
    canvas.width = 56; canvas.height = 56; canvas.dataset.name = name; canvas.title = name;
    canvas.setAttribute("role", "button"); canvas.setAttribute("aria-label", `data set ${name}`);
    datasetPicture(canvas, name);
    canvas.addEventListener("click", () => change_({ dataset: name }));
    box.appendChild(canvas);
  }
  $("boundary").width = 600; $("boundary").height = 600;
}

wire();
connect();
