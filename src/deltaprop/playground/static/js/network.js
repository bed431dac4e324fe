// The network drawn as TF Playground draws it: a column of units per layer, each unit a
// thumbnail of its output over the input plane, edges coloured and sized by their weight.
import { css, diverging, NEG, POS, unitScale } from "./colors.js";
import { f32, heat, outputColor } from "./plots.js";

const SVG = "http://www.w3.org/2000/svg";

function el(tag, attrs = {}, parent = null) {
  const node = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v; else node.setAttribute(k, v);
  }
  if (parent) parent.appendChild(node);
  return node;
}

function boxSize(largest) {
  if (largest <= 8) return [38, 17];
  if (largest <= 16) return [24, 8];
  if (largest <= 32) return [14, 5];
  return [9, 3];
}

export class NetworkView {
  constructor(container, handlers) {
    this.container = container;
    this.handlers = handlers; // onUnit(layer, j), onEdge(layer, j, i), onLayer(change)
    this.edgeMode = "weight";
  }

  /** Lay the network out anew (after every "state" message). */
  build(state) {
    this.state = state;
    const sizes = state.network.sizes;
    const c = this.container;
    c.innerHTML = "";
    const [box, gap] = boxSize(Math.max(...sizes));
    const width = Math.max(420, c.clientWidth || 600);
    const top = 74;
    const tallest = Math.max(...sizes) * (box + gap);
    const height = top + tallest + 20;
    c.style.height = `${height}px`;
    const xs = sizes.map((_, l) => 30 + (l * (width - 60 - box)) / (sizes.length - 1));
    this.pos = sizes.map((n, l) => Array.from({ length: n }, (_, j) => [
      xs[l], top + (tallest - n * (box + gap)) / 2 + j * (box + gap)]));
    this.box = box;
    const svg = el("svg:svg", { width, height }, c);
    this.edges = [];
    for (let l = 1; l < sizes.length; l++) {
      const layerEdges = [];
      for (let j = 0; j < sizes[l]; j++) {
        const row = [];
        for (let i = 0; i < sizes[l - 1]; i++) {
          const [x0, y0] = this.pos[l - 1][i], [x1, y1] = this.pos[l][j];
          const sx = x0 + box, sy = y0 + box / 2, ex = x1, ey = y1 + box / 2, mx = (sx + ex) / 2;
          const d = `M${sx},${sy} C${mx},${sy} ${mx},${ey} ${ex},${ey}`;
          const hit = el("svg:path", { d, class: "hit", "data-layer": l, "data-j": j, "data-i": i }, svg);
          const path = el("svg:path", { d, class: "edge", id: `edge-${l}-${j}-${i}` }, svg);
          hit.addEventListener("click", () => this.handlers.onEdge(l, j, i));
          row.push(path);
        }
        layerEdges.push(row);
      }
      this.edges.push(layerEdges);
    }
    this.units = sizes.map((n, l) => Array.from({ length: n }, (_, j) => {
      const [x, y] = this.pos[l][j];
      const name = state.network.units[l][j];
      const unit = el("div", { class: "unit", id: `unit-${name}`, "data-unit": name, title: name }, c);
      unit.style.cssText = `left:${x}px;top:${y}px;width:${box}px;height:${box}px`;
      const canvas = el("canvas", { width: 40, height: 40 }, unit);
      if (box >= 24) el("span", { class: "name", text: name }, unit);
      const dot = l > 0 ? el("span", { class: box < 20 ? "delta small" : "delta" }, unit) : null;
      unit.addEventListener("click", () => this.handlers.onUnit(l, j));
      return { unit, canvas, dot };
    }));
    this.layerHeads(state, xs, box, top);
  }

  layerHeads(state, xs, box, top) {
    const sizes = state.network.sizes, L = sizes.length - 1;
    const choices = state.choices;
    sizes.forEach((n, l) => {
      const head = el("div", { class: "layer-head" }, this.container);
      head.style.cssText = `left:${xs[l] + box / 2 - 60}px;top:4px;width:120px`;
      if (l === 0) { el("div", { text: `${n} input${n > 1 ? "s" : ""}` }, head); return; }
      if (l === L) {
        el("div", { text: `${n} output${n > 1 ? "s" : ""}` }, head);
        el("div", { text: state.network.activations[L - 1], class: "mono" }, head);
        return;
      }
      el("div", { text: `${n} unit${n > 1 ? "s" : ""}` }, head);
      const select = el("select", { "data-layer": l, "aria-label": `activation of hidden layer ${l}` }, head);
      for (const a of choices.hidden_activations) el("option", { value: a, text: a }, select);
      select.value = state.network.activations[l - 1];
      select.addEventListener("change", () => this.handlers.onLayer({ layer: l, activation: select.value }));
      const units = el("div", { class: "units" }, head);
      const plus = el("button", { text: "+", title: "add a unit", "data-layer": l }, units);
      const minus = el("button", { text: "−", title: "remove a unit", "data-layer": l }, units);
      plus.addEventListener("click", () => this.handlers.onLayer({ layer: l, units: n + 1 }));
      minus.addEventListener("click", () => this.handlers.onLayer({ layer: l, units: n - 1 }));
      minus.disabled = n <= 1;
    });
  }

  /** Colours and widths from a frame (and the last step, for Δw mode). */
  update(frame, step) {
    const state = this.state;
    if (!state) return;
    const sizes = state.network.sizes;
    // Thousands of edges cost the page more than a frame: while playing, redraw them on
    // every few frames only (always when training stops).
    this.count = (this.count || 0) + 1;
    const edges = this.edges.reduce((n, layer) => n + layer.length * (layer[0] || []).length, 0);
    const every = Math.ceil(edges / 1500);
    if (!frame.running || this.count % every === 0) this.edgeColors(frame, step, sizes);
    this.deltaDots(frame);
    this.thumbnails(frame);
  }

  edgeColors(frame, step, sizes) {
    const changes = this.edgeMode === "change" && step ? step.layers.map((ly) => ly.W_change) : null;
    for (let l = 1; l < sizes.length; l++) {
      const W = changes ? changes[l - 1] : frame.weights[l - 1].W;
      let scale = 1;
      if (changes) { scale = 1e-12; for (const row of W) for (const v of row) scale = Math.max(scale, Math.abs(v)); scale = 3 / scale; }
      for (let j = 0; j < sizes[l]; j++) for (let i = 0; i < sizes[l - 1]; i++) {
        const w = W[j][i] * scale, path = this.edges[l - 1][j][i];
        path.setAttribute("stroke", css(w >= 0 ? POS : NEG, Math.min(1, 0.25 + Math.abs(w) / 2)));
        path.setAttribute("stroke-width", (0.4 + Math.min(Math.abs(w), 5) * 0.8).toFixed(2));
      }
    }
  }

  deltaDots(frame) {
    frame.deltas.forEach((deltas, li) => {
      let m = 1e-12;
      for (const d of deltas) m = Math.max(m, Math.abs(d));
      deltas.forEach((d, j) => {
        const dot = this.units[li + 1][j].dot;
        if (dot) { dot.style.background = css(diverging(d / m)); dot.title = `δ = ${d.toPrecision(4)}`; }
      });
    });
  }

  thumbnails(frame) {
    const g = frame.grids, state = this.state;
    if (!g) return;
    const sizes = state.network.sizes, L = sizes.length - 1;
    const inputs = f32(g.inputs), cells = g.unit_cells * g.unit_cells;
    this.units[0].forEach(({ canvas }, i) => {
      const scale = unitScale("", inputs.subarray(i * cells, (i + 1) * cells));
      heat(canvas, g.unit_cells, (k) => diverging(scale(inputs[i * cells + k])));
    });
    g.hidden.forEach((b64, li) => {
      const values = f32(b64), n = g.unit_cells * g.unit_cells;
      const scale = unitScale(state.network.activations[li], values);
      this.units[li + 1].forEach(({ canvas }, j) => heat(canvas, g.unit_cells, (k) => diverging(scale(values[j * n + k]))));
    });
    const out = f32(g.output), n = g.output_cells * g.output_cells;
    const scale = unitScale(state.network.activations[L - 1], out);
    this.units[L].forEach(({ canvas }, k) => heat(canvas, g.output_cells, (c) => diverging(scale(out[k * n + c]))));
    return outputColor;
  }

  select(kind, layer, j, i) {
    this.container.querySelectorAll(".selected").forEach((n) => n.classList.remove("selected"));
    if (kind === "unit") this.units[layer][j].unit.classList.add("selected");
    if (kind === "edge") this.edges[layer - 1][j][i].classList.add("selected");
  }
}
