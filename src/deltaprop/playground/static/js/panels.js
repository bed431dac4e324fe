// The inspector (a unit's or an edge's numbers and formulas) and the list of every δ and Δw
// of the last step: the numbers deltaprop explain prints, formatted as it formats them.

const SUP = { "-": "⁻", 0: "⁰", 1: "¹", 2: "²", 3: "³", 4: "⁴", 5: "⁵", 6: "⁶", 7: "⁷", 8: "⁸", 9: "⁹" };

function strip(s) { return s.includes(".") ? s.replace(/0+$/, "").replace(/\.$/, "") : s; }

/** x to 4 significant digits, as Python's f"{x:.4g}" with deltaprop's minus and ×10ⁿ. */
export function num(x, digits = 4) {
  if (x === null || x === undefined) return "–";
  if (x === 0) return "0";
  if (!Number.isFinite(x)) return String(x);
  const [mant, expText] = x.toExponential(digits - 1).split("e");
  const exp = Number(expText);
  let s;
  if (exp < -4 || exp >= digits) s = `${strip(mant)}×10${String(exp).split("").map((c) => SUP[c]).join("")}`;
  else s = strip(x.toFixed(Math.max(0, digits - 1 - exp)));
  return s.startsWith("-") ? "−" + s.slice(1) : s;
}

function esc(text) {
  return String(text).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
}

function cell(value, signed = true) {
  const cls = signed && value > 0 ? "pos" : signed && value < 0 ? "neg" : "";
  return `<td class="${cls}" data-value="${value}">${num(value)}</td>`;
}

function blocks(list) {
  return (list || []).map((b) => `<div class="formula"><div class="title">${esc(b.title)}</div>` +
    b.rule.map((r) => `<div class="rule">${esc(r)}</div>`).join("") +
    `<pre>${b.lines.map(esc).join("\n")}</pre></div>`).join("");
}

function numbers(rows) {
  return `<dl class="numbers">${rows.map(([k, v, id]) =>
    `<dt>${k}</dt><dd${id ? ` id="${id}"` : ""} data-value="${v}">${typeof v === "number" ? num(v) : esc(v)}</dd>`).join("")}</dl>`;
}

export function unitPanel(state, frame, step, layer, j) {
  const name = state.network.units[layer][j];
  const L = state.network.sizes.length - 1;
  if (layer === 0) {
    const value = step && step.example ? step.x[j] : null;
    return `<h4>${esc(name)}: input ${j + 1} (${esc(state.data.feature_names[j] || name)})</h4>` +
      (value === null ? "<p class=\"hint\">An input unit: z = x. Press Step to see the example's value.</p>"
        : numbers([["x = z", value, "inspect-z"]]));
  }
  const role = layer === L ? "output" : `hidden layer ${layer}`;
  let html = `<h4>${esc(name)}: ${role}, ${esc(state.network.activations[layer - 1])}</h4>`;
  const b = frame.weights[layer - 1].b[j];
  if (step && step.example) {
    const ly = step.layers[layer - 1];
    html += numbers([
      ["a (net input)", ly.a[j], "inspect-a"], ["z (output)", ly.z[j], "inspect-z"],
      ["h'(a)", ly.h_prime ? ly.h_prime[j] : "softmax: a Jacobian"],
      ["δ = −∂E/∂a", ly.delta[j], "inspect-delta"], ["bias b", ly.b[j]],
      ["Δb", ly.b_change[j]]]);
    html += blocks(step.formulas.units[name]) + blocks(step.formulas.weights[`b_${name}`]);
  } else if (step) {
    const ly = step.layers[layer - 1];
    html += numbers([["δ, mean over the batch", ly.delta[j], "inspect-delta"], ["bias b", b],
      ["∂E/∂b (batch mean)", ly.b_grad[j]], ["Δb", ly.b_change[j]]]);
    html += `<p class="hint">Formulas with their numbers are written for one example at a time: set
      batch size 1 (the seed's online loop) and press Step.</p>`;
  } else {
    html += numbers([["δ, mean over the training set now", frame.deltas[layer - 1][j], "inspect-delta"], ["bias b", b]]);
    html += `<p class="hint">Press Step for this unit's a, z and δ on one example, each in its formula.</p>`;
  }
  return html;
}

export function edgePanel(state, frame, step, layer, j, i) {
  const units = state.network.units;
  const name = `w_${units[layer][j]},${units[layer - 1][i]}`;
  let html = `<h4>${esc(name)}: from ${esc(units[layer - 1][i])} to ${esc(units[layer][j])}</h4>`;
  const rows = [["w now", frame.weights[layer - 1].W[j][i], "inspect-w"]];
  if (step) {
    const ly = step.layers[layer - 1];
    if (step.example) rows.push(["w before the step", ly.W[j][i]]);
    rows.push([step.example ? "∂E/∂w = −δ_j z_i" : "∂E/∂w (batch mean)", ly.W_grad[j][i], "inspect-grad"]);
    rows.push(["Δw of the last step", ly.W_change[j][i], "inspect-change"]);
  }
  html += numbers(rows);
  if (step && step.example) html += blocks(step.formulas.weights[name]);
  else html += `<p class="hint">Press Step (batch size 1) for this weight's update in its formula.</p>`;
  return html;
}

export function stepPanel(state, step) {
  const units = state.network.units;
  const where = step.example
    ? `example ${step.rows[0]} of the training set, epoch ${step.epoch}: E = ${num(step.error_before)} → ${num(step.error_after)}`
    : `batch ${step.batch} (${step.rows.length} examples), epoch ${step.epoch}: mean E = ${num(step.loss)} before the step`;
  let html = `<p class="hint">${esc(where)}</p><table class="values" id="delta-table"><tr><th>unit</th><th>δ</th></tr>`;
  for (let l = step.layers.length; l >= 1; l--) {
    step.layers[l - 1].delta.forEach((d, j) => {
      html += `<tr data-unit="${esc(units[l][j])}"><td>δ_${esc(units[l][j])}</td>${cell(d)}</tr>`;
    });
  }
  html += `</table><table class="values" id="change-table"><tr><th>weight</th><th>∂E/∂w</th><th>Δw</th></tr>`;
  const LIMIT = 400;
  for (let l = step.layers.length; l >= 1; l--) {
    const ly = step.layers[l - 1];
    let shown = 0;
    ly.W_change.forEach((row, j) => {
      row.forEach((dw, i) => {
        if (shown++ >= LIMIT) return;
        html += `<tr><td>w_${esc(units[l][j])},${esc(units[l - 1][i])}</td>${cell(ly.W_grad[j][i])}${cell(dw)}</tr>`;
      });
      html += `<tr><td>b_${esc(units[l][j])}</td>${cell(ly.b_grad[j])}${cell(ly.b_change[j])}</tr>`;
    });
    if (shown > LIMIT) html += `<tr><td colspan="3" class="hint">… ${shown - LIMIT} more weights in layer ${l}</td></tr>`;
  }
  return html + "</table>";
}
