// Colour scales: TF Playground's orange (negative, class 0) and blue (positive, class 1).
export const NEG = [245, 147, 34];
export const POS = [8, 119, 189];
const MID = [247, 247, 247];
export const CLASS_COLORS = [NEG, POS, [46, 160, 67], [214, 39, 40], [148, 103, 189],
  [140, 86, 75], [227, 119, 194], [110, 110, 110], [188, 189, 34], [23, 190, 207]];

export function classColor(k) { return CLASS_COLORS[k % CLASS_COLORS.length]; }

/** v in [-1, 1] -> orange (−1), near white (0), blue (+1). */
export function diverging(v) {
  const t = Math.min(1, Math.abs(v) || 0);
  const end = v < 0 ? NEG : POS;
  return [MID[0] + (end[0] - MID[0]) * t, MID[1] + (end[1] - MID[1]) * t, MID[2] + (end[2] - MID[2]) * t];
}

export function mix(rgb, t) {
  return [MID[0] + (rgb[0] - MID[0]) * t, MID[1] + (rgb[1] - MID[1]) * t, MID[2] + (rgb[2] - MID[2]) * t];
}

export function css(rgb, alpha = 1) {
  return `rgba(${rgb[0] | 0},${rgb[1] | 0},${rgb[2] | 0},${alpha})`;
}

/** How a unit's output reads on the diverging scale, by its activation's range. */
export function unitScale(activation, values) {
  if (activation === "tanh") return (v) => v;
  if (activation === "sigmoid" || activation === "softmax") return (v) => 2 * v - 1;
  let m = 1e-12;
  for (const v of values) m = Math.max(m, Math.abs(v));
  return (v) => v / m;
}
