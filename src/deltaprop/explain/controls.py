"""The training controls a network carries, written out: dropout's masks and the penalty.

Dropout: a hidden layer with rate p passes z̃_j = m_j z_j / (1 − p) on (m_j ∈ {0, 1}, the
step's mask), and its deltas are δ_j = m_j h'(a_j) Σ_k δ_k w_kj / (1 − p). The weight penalty
P(W) = Σ_l [λ₂/2 · Σ w² + λ₁ · Σ |w|] is part of E, and its gradient λ₂ w + λ₁ sign(w) part
of each weight's (never a bias's). The numbers are the library's (the trace's); these
sections write them into their formulas.
"""

from __future__ import annotations

import numpy as np

from deltaprop.core.notation import Style
from deltaprop.explain.formulas import Eq
from deltaprop.explain.page import Page, Section

Array = np.ndarray


def _keep(s: Style, p: str) -> str:
    """1 − p as a denominator (in parentheses where the fraction is written inline)."""
    return f"1{s.minus}{p}" if s.latex else f"(1{s.minus}{p})"


def tilde(s: Style, sym: str) -> str:
    """A unit's output as the next layer receives it under dropout."""
    return rf"\tilde{{{sym}}}" if s.latex else f"{sym}~"


def header_rows(page: Page) -> list[list[str]]:
    """The header's rows for the network's dropout rates and penalty, when it has them."""
    s, net, rows = page.style, page.trace.network, []
    if "dropout" in net:
        rates = ", ".join(f"{p:g}" for p in net["dropout"])
        rows.append(
            [
                s.text("dropout"),
                s.text(f"rates {rates} (one per hidden layer); a kept unit passes on ")
                + s.math(f"m z / (1{s.minus}p)"),
            ]
        )
    if "l2" in net:
        l2 = ", ".join(f"{v:g}" for v in net["l2"])
        l1 = ", ".join(f"{v:g}" for v in net["l1"])
        rows.append(
            [
                s.text("penalty"),
                s.text("on the weights, not the biases: ")
                + s.math(f"{s.sub(s.lam, '2')} = {l2}")
                + s.text("; ")
                + s.math(f"{s.sub(s.lam, '1')} = {l1}")
                + s.text(f" (per layer; penalty_scale {net['penalty_scale']!r})"),
            ]
        )
    return rows


def dropped_outputs(page: Page) -> Section | None:
    """z̃_j = m_j z_j / (1 − p) for the hidden units shown of every layer with a mask."""
    s, n, tr = page.style, page.style.num, page.trace
    layers = [ly for ly in tr.layers if ly.mask is not None and ly.index in page.shown]
    if not layers:
        return None
    mj, zj = s.sub("m", "j"), s.sub("z", "j")
    sec = Section(
        "Dropout",
        rule=[f"{tilde(s, zj)} = {s.frac(f'{mj} {zj}', _keep(s, 'p'))}"],
        notes=[
            s.text("The step's mask ")
            + s.math(f"{mj} = 0 or 1")
            + s.text(" (drawn from the network's generator, 0 with probability p): the layer ")
            + s.text("after receives ")
            + s.math(tilde(s, zj))
            + s.text(" (the forward pass above feeds it to the next layer's net inputs, and ")
            + s.text("the gradients of that layer's weights use it); prediction never drops.")
        ],
    )
    for ly in layers:
        p = page.dropout_rate(ly.index)
        dropped = page.dropped(ly.index)
        for j in page.shown[ly.index]:
            u = s.unit(ly.index, j)
            chain = [
                s.frac(f"{s.sub('m', u)} {u}", _keep(s, n(p))),
                s.frac(f"{n(ly.mask[j])}{s.times}{s.p(ly.z[j])}", n(1.0 - p)),
            ]
            sec.eqs.append(Eq(tilde(s, u), chain, n(dropped[j])))
    return sec


def mask_factor(page: Page, layer: int, j: int) -> tuple[str, str] | None:
    """(symbols, numbers) of unit j's factor m_j / (1 − p) in its delta, None without."""
    ly = page.trace.layers[layer - 1]
    if ly.mask is None:
        return None
    s, n = page.style, page.style.num
    p = page.dropout_rate(layer)
    u = s.unit(layer, j)
    return (s.frac(s.sub("m", u), _keep(s, n(p))), s.frac(n(ly.mask[j]), n(1.0 - p)))


def penalty_section(page: Page) -> Section | None:
    """P(W), its value before the step, and where its gradient goes."""
    s, n, tr = page.style, page.style.num, page.trace
    if tr.penalty is None:
        return None
    lam2, lam1 = s.sub(s.lam, "2"), s.sub(s.lam, "1")
    rule = (
        f"P = {s.sum('l')}[{s.frac(lam2, '2')} {s.sum('ji')}{s.sq(s.sub('w', 'ji'))} + "
        f"{lam1} {s.sum('ji')}|{s.sub('w', 'ji')}|]"
    )
    sec = Section("Weight penalty", rule=[rule])
    sec.eqs.append(Eq("P", [], n(tr.penalty)))
    sec.notes.append(
        s.text("P is part of E (above) and on the weights only: each weight's gradient gains ")
        + s.math(f"{lam2} w + {lam1} sign(w)")
        + s.text(", a bias's nothing.")
    )
    return sec


def penalty_terms(page: Page, layer: int, w: float) -> tuple[str, str]:
    """The penalty's terms of a weight's gradient in symbols and numbers ("" without)."""
    net = page.trace.network
    if "l2" not in net:
        return "", ""
    s, n, p = page.style, page.style.num, page.style.p
    l2, l1 = float(net["l2"][layer - 1]), float(net["l1"][layer - 1])
    sym, num = "", ""
    if l2:
        sym += f" + {s.sub(s.lam, '2')} w"
        num += f" + {n(l2)}{s.times}{p(w)}"
    if l1:
        sym += f" + {s.sub(s.lam, '1')} sign(w)"
        num += f" + {n(l1)}{s.times}{p(float(np.sign(w)))}"
    return sym, num


def after_note(page: Page) -> str | None:
    """Under dropout, what E after the step is measured without."""
    if not any(ly.mask is not None for ly in page.trace.layers):
        return None
    s = page.style
    return s.text(
        "E before is the step's own, with its dropout mask; E and o after are without "
        "dropout, as prediction computes them."
    )
