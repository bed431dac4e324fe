"""The weight-update sections: each layer's weights, written by the optimizer's rule.

The rule (:mod:`deltaprop.explain.rules`) writes the lines; this module picks the weights shown
(those with the largest |Δw| into the units shown), gives the rule each one's numbers, and
closes the section with the check of the rule's recomputation against the library's step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from deltaprop.explain.controls import penalty_terms
from deltaprop.explain.formulas import Eq
from deltaprop.explain.page import Page, Section
from deltaprop.explain.rules import StepOnlyRule, UpdateRule, WeightStep

if TYPE_CHECKING:
    from deltaprop.explain.record import LayerTrace

Array = np.ndarray
Weight = tuple[int, "int | None"]  # (j, i): w_ji, or the bias of unit j when i is None


def _recompute(page: Page, ly: LayerTrace) -> dict[str, dict[str, Array]] | None:
    """The rule's numbers for the layer's W and b, or None where the rule cannot give them
    (an optimizer without a written rule, or a trace whose state lacks a buffer)."""
    out = {}
    for param in ("W", "b"):
        before = {k: v["before"] for k, v in ly.optimizer_state[param].items()}
        grad = getattr(ly, f"{param}_grad")
        try:
            values = page.rule.recompute(
                page.t_step, getattr(ly, param), grad, before, bias=param == "b"
            )
        except KeyError:
            return None
        if values is None:
            return None
        out[param] = values
    return out


def _weights_shown(page: Page, ly: LayerTrace) -> list[Weight]:
    """The weights and biases into the layer's units shown, at most ``top`` of them (those with
    the largest |Δw|)."""
    cands: list[Weight] = [
        (j, i) for j in page.shown[ly.index] for i in [*range(ly.W.shape[1]), None]
    ]
    if len(cands) <= page.opts.top:
        return cands
    W_change, b_change = ly.W_change, ly.b_change
    change = {c: float(W_change[c] if c[1] is not None else b_change[c[0]]) for c in cands}
    return sorted(cands, key=lambda c: -abs(change[c]))[: page.opts.top]


def _weight_step(
    page: Page, ly: LayerTrace, weight: Weight, recomputed: dict[str, dict[str, Array]]
) -> WeightStep:
    """One weight's numbers and symbols, as its update lines show them."""
    s, p = page.style, page.style.p
    j, i = weight
    layer = ly.index
    if i is None:
        param, idx, zi = "b", (j,), 1.0
        old, new, grad = float(ly.b[j]), float(ly.b_new[j]), float(ly.b_grad[j])
        delta_z = f"{s.delta(layer, j)}{s.cdot}1"
    else:
        param, idx, zi = "W", (j, i), float(page.z_prev(layer)[i])
        old, new, grad = float(ly.W[j, i]), float(ly.W_new[j, i]), float(ly.W_grad[j, i])
        delta_z = f"{s.delta(layer, j)} {s.unit(layer - 1, i)}"
    values = recomputed.get(param, {})
    penalty_sym, penalty_num = penalty_terms(page, layer, old) if i is not None else ("", "")
    return WeightStep(
        symbol=s.weight(layer, j, i),
        delta_z=delta_z,
        delta_z_num=f"{p(ly.delta[j])}{s.times}{p(zi)}",
        grad=grad,
        old=old,
        new=new,
        values={k: float(v[idx]) if np.ndim(v) else float(v) for k, v in values.items()},
        before={k: float(v["before"][idx]) for k, v in ly.optimizer_state[param].items()},
        penalty_sym=penalty_sym,
        penalty_num=penalty_num,
    )


def _one_line(page: Page, ly: LayerTrace, weight: Weight, first: bool) -> Eq:
    """A weight past the first few written out: old + change = new, and its gradient."""
    s, n = page.style, page.style.num
    j, i = weight
    if i is None:
        old, new, grad = float(ly.b[j]), float(ly.b_new[j]), float(ly.b_grad[j])
    else:
        old, new, grad = float(ly.W[j, i]), float(ly.W_new[j, i]), float(ly.W_grad[j, i])
    symbol = s.weight(ly.index, j, i)
    # Only the first one-liner opens a group, so they print as one block.
    return Eq(
        symbol,
        [f"{n(old)}{s.plus(new - old)}"],
        n(new),
        op=s.arrow,
        sign=new - old,
        label=symbol if first else "",
        note=f"g = {n(grad)}",
    )


def _summary_note(page: Page, ly: LayerTrace, n_shown: int) -> str | None:
    """How many of the weights into the units shown are written, and the layer's |Δw|."""
    s, n = page.style, page.style.num
    n_cands = len(page.shown[ly.index]) * (ly.W.shape[1] + 1)
    if n_shown >= n_cands:
        return None
    every = np.abs(np.concatenate([ly.W_change.ravel(), ly.b_change]))
    return (
        s.text(
            f"{n_shown} of {n_cands} weights and biases into the units shown, "
            "those with the largest "
        )
        + s.math("|Δw|" if not s.latex else r"|\Delta w|")
        + s.text(f". Whole layer ({ly.W.size + ly.b.size}): largest ")
        + s.math(n(every.max()))
        + s.text(", mean ")
        + s.math(n(every.mean()))
        + s.text(".")
    )


def _check_note(
    page: Page, rule: UpdateRule, ly: LayerTrace, recomputed: dict[str, dict[str, Array]]
) -> str:
    """How closely the rule's recomputation gives the library's new weights."""
    s = page.style
    gap = max(
        float(np.max(np.abs(recomputed["W"]["w"] - ly.W_new), initial=0)),
        float(np.max(np.abs(recomputed["b"]["w"] - ly.b_new), initial=0)),
    )
    claim = rule.check_claim(s) + s.text(
        f" for all {ly.W.size + ly.b.size} parameters of this layer"
    )
    if gap == 0:
        return claim + s.text(", exactly.")
    return claim + s.text(" to within ") + s.math(f"{gap:.1e}") + s.text(".")


def layer_updates(page: Page, layer: int) -> Section:
    """The update of the weights into ``layer``'s units shown."""
    ly, rule = page.trace.layers[layer - 1], page.rule
    sec = Section(
        f"Weight updates, layer {layer} ({page.role_name(layer)})",
        rule=rule.summary(page.style) if layer == page.n_layers else [],
    )
    recomputed = _recompute(page, ly)
    # Without the rule's numbers each weight is shown as the result of the optimizer's step.
    writer = rule if recomputed is not None else StepOnlyRule(page.cfg)
    weights = _weights_shown(page, ly)
    for rank, weight in enumerate(weights):
        if writer.multiline and rank >= page.opts.detail:
            # Past the first few, one line per weight: a stateful rule takes 5-8.
            sec.eqs.append(_one_line(page, ly, weight, rank == page.opts.detail))
        else:
            step = _weight_step(page, ly, weight, recomputed or {})
            sec.eqs.extend(writer.lines(page.style, page.t_step, step))
    note = _summary_note(page, ly, len(weights))
    if note:
        sec.notes.append(note)
    if recomputed is not None:
        sec.notes.append(_check_note(page, rule, ly, recomputed))
    return sec


def weight_updates(page: Page) -> list[Section]:
    """One section per layer shown, from the output layer back."""
    return [
        layer_updates(page, layer) for layer in range(page.n_layers, 0, -1) if layer in page.shown
    ]
