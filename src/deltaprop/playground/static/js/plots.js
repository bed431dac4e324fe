// Canvas drawings: heat maps over the input plane, data points, the loss curves.
import { classColor, css, diverging, mix } from "./colors.js";

export function f32(b64) {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  return new Float32Array(bytes.buffer);
}

const scratch = document.createElement("canvas");

/** Paint a cells x cells image (colorAt(index) -> rgb) scaled smoothly onto canvas. */
export function heat(canvas, cells, colorAt) {
  scratch.width = cells; scratch.height = cells;
  const sctx = scratch.getContext("2d");
  const image = sctx.createImageData(cells, cells);
  for (let i = 0; i < cells * cells; i++) {
    const c = colorAt(i);
    image.data[4 * i] = c[0]; image.data[4 * i + 1] = c[1]; image.data[4 * i + 2] = c[2];
    image.data[4 * i + 3] = 255;
  }
  sctx.putImageData(image, 0, 0);
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = true;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.drawImage(scratch, 0, 0, canvas.width, canvas.height);
}

// The output plane is painted paler than the points on it, so that every point shows.
const PALE = 0.72;

/** The colour of the output plane at cell i: class probabilities or a value. */
export function outputColor(values, nOut, cells, data, range) {
  const color = outputColorFull(values, nOut, cells, data, range);
  return (i) => mix(color(i), PALE);
}

function outputColorFull(values, nOut, cells, data, range) {
  const n = cells * cells;
  return (i) => {
    if (data.task !== "classification") {
      const v = values[i];
      return diverging(2 * (v - range[0]) / (range[1] - range[0] || 1) - 1);
    }
    if (nOut === 1) return diverging(2 * values[i] - 1);
    if (nOut === 2) return diverging(values[n + i] - values[i]);
    let best = 0, total = 0;
    for (let k = 0; k < nOut; k++) {
      const v = Math.max(0, values[k * n + i]);
      total += v;
      if (v > values[best * n + i]) best = k;
    }
    const confidence = total > 0 ? values[best * n + i] / total : 0;
    return mix(classColor(best), Math.min(1, Math.max(0, (confidence * nOut - 1) / (nOut - 1))));
  };
}

export function toCanvas(extent, canvas, x, y) {
  const [x0, x1, y0, y1] = extent;
  return [(x - x0) / (x1 - x0) * canvas.width, (y1 - y) / (y1 - y0) * canvas.height];
}

/** Data points: class colour (or the target's value), test points with a dark ring. */
export function points(canvas, extent, part, test, range) {
  const ctx = canvas.getContext("2d");
  const r = Math.max(2.5, canvas.width / 110);
  part.x.forEach((p, n) => {
    const [cx, cy] = toCanvas(extent, canvas, p[0], p[1]);
    let color;
    if (part.label) color = classColor(part.label[n]);
    else {
      const t = part.target[n][0];
      color = diverging(2 * (t - range[0]) / (range[1] - range[0] || 1) - 1);
    }
    ctx.beginPath();
    ctx.arc(cx, cy, r, 0, 2 * Math.PI);
    ctx.fillStyle = css(color);
    ctx.fill();
    ctx.lineWidth = test ? 1.6 : 1;
    ctx.strokeStyle = test ? "#111" : "#fff";
    ctx.stroke();
  });
}

/** Train (dark) and test (blue) loss against the epoch. */
export function curve(canvas, points) {
  const ctx = canvas.getContext("2d");
  const ratio = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || canvas.width, h = canvas.clientHeight || canvas.height;
  if (canvas.width !== Math.round(w * ratio)) { canvas.width = Math.round(w * ratio); canvas.height = Math.round(h * ratio); }
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, w, h);
  const finite = points.flatMap((p) => [p[1], p[2]]).filter((v) => v !== null && Number.isFinite(v));
  if (points.length < 2 || !finite.length) return;
  const top = Math.max(...finite) * 1.05 || 1;
  const x0 = points[0][0], x1 = points[points.length - 1][0] || 1;
  for (const [col, color] of [[1, "#2b2f36"], [2, "#0877bd"]]) {
    ctx.beginPath();
    let started = false;
    for (const p of points) {
      if (p[col] === null) continue;
      const x = (p[0] - x0) / ((x1 - x0) || 1) * (w - 2) + 1;
      const y = h - 2 - (p[col] / top) * (h - 6);
      if (started) ctx.lineTo(x, y); else { ctx.moveTo(x, y); started = true; }
    }
    ctx.strokeStyle = color;
    ctx.lineWidth = 1.5;
    ctx.stroke();
  }
}

// Small pictures of the five data sets, for choosing one (drawn here: no request).
function rand(seed) { let s = seed; return () => ((s = (s * 16807) % 2147483647) / 2147483647); }

const SHAPES = {
  circles: (r) => { const c = r() < 0.5 ? 0 : 1; const rad = c ? 0.65 + 0.3 * r() : 0.45 * r();
    const a = 2 * Math.PI * r(); return [rad * Math.cos(a), rad * Math.sin(a), c]; },
  xor: (r) => { const x = 1.9 * r() - 0.95, y = 1.9 * r() - 0.95; return [x, y, x * y < 0 ? 1 : 0]; },
  gauss: (r) => { const c = r() < 0.5 ? 0 : 1; const m = c ? -0.45 : 0.45;
    return [m + 0.3 * (r() - 0.5) * 2, m + 0.3 * (r() - 0.5) * 2, c]; },
  spiral: (r) => { const c = r() < 0.5 ? 0 : 1; const rad = 0.05 + 0.9 * r();
    const a = 1.75 * 2 * Math.PI * rad + Math.PI * c; return [rad * Math.sin(a), rad * Math.cos(a), c]; },
  moons: (r) => { const c = r() < 0.5 ? 0 : 1; const t = Math.PI * r();
    const p = c ? [1 - Math.cos(t), 0.5 - Math.sin(t)] : [Math.cos(t), Math.sin(t)];
    return [(p[0] - 0.5) * 0.62, (p[1] - 0.25) * 0.9, c]; },
};
export const DATASETS = Object.keys(SHAPES);

export function datasetPicture(canvas, name) {
  const ctx = canvas.getContext("2d");
  const r = rand(7);
  ctx.fillStyle = "#f7f7f7";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  for (let n = 0; n < 160; n++) {
    const [x, y, c] = SHAPES[name](r);
    ctx.fillStyle = css(classColor(c));
    ctx.fillRect((x + 1) / 2 * canvas.width - 1.5, (1 - y) / 2 * canvas.height - 1.5, 3, 3);
  }
}
