"""A trace as a worked example: its sections, equations and tables, for one output format.

The explanation follows the seed's order: forward pass and error, output deltas, hidden deltas
(backwards), weight updates, the new error. Large networks are summarised: each layer shows at
most ``max_units`` units (those with the largest |δ|, unless ``units``/``layer`` choose) and
at most ``top`` weights (those with the largest |Δw|), with a note of what was left out.
This module writes the header, the forward pass and the result; the deltas' sections are in
:mod:`deltaprop.explain.deltas`, the weight updates in :mod:`deltaprop.explain.updates`, and
:mod:`deltaprop.explain.render` lays the sections out as text, Markdown or LaTeX.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from deltaprop.core.notation import Style
from deltaprop.explain.controls import after_note, dropped_outputs, header_rows, penalty_section
from deltaprop.explain.deltas import hidden_deltas, output_deltas
from deltaprop.explain.formulas import Eq, activation_chain
from deltaprop.explain.loss_text import loss_text
from deltaprop.explain.page import Options, Page, Section, Table, select_units
from deltaprop.explain.updates import weight_updates

if TYPE_CHECKING:
    from deltaprop.explain.record import Trace

Array = np.ndarray

__all__ = ["Builder", "Options", "Section", "Table", "select_units", "sparkline"]


# ------------------------------------------------------------------------ the header
def _names_rows(page: Page) -> list[list[str]]:
    s, tr, L = page.style, page.trace, page.n_layers
    rows = [
        [
            s.text("units"),
            s.math(s.sub("a", "j"))
            + s.text(" net input, ")
            + s.math(s.sub("z", "j"))
            + s.text(" output of unit j; inputs ")
            + s.math(s.unit(0, 0))
            + s.text(", …, outputs ")
            + s.math(s.unit(L, 0))
            + s.text(", …"),
        ],
        [
            s.text("weights"),
            s.math(s.weight(L, 0, 0))
            + s.text(" from ")
            + s.math(s.unit(L - 1, 0))
            + s.text(" to ")
            + s.math(s.unit(L, 0))
            + s.text(" (W[j, i] in the code)"),
        ],
        [
            s.text("biases"),
            s.math(s.weight(L, 0, None))
            + s.text(" bias of ")
            + s.math(s.unit(L, 0))
            + s.text(": a weight from a unit that is always 1, updated like the others"),
        ],
    ]
    for names, layer, what in ((tr.input_names, 0, "inputs"), (tr.output_names, L, "outputs")):
        if names:
            shown = [
                s.math(s.unit(layer, j)) + s.text(f" = {name}")
                for j, name in enumerate(names[: page.opts.max_units])
            ]
            more = len(names) - len(shown)
            rows.append(
                [s.text(what), ", ".join(shown) + (s.text(f", … (+{more})") if more else "")]
            )
    return rows


def header(page: Page) -> Section:
    s, tr, limit = page.style, page.trace, page.opts.max_units
    sizes = "-".join(str(n) for n in tr.sizes)
    acts = ", ".join(tr.network["activations"])
    rows = [
        [
            s.text("network"),
            s.text(f"{sizes} units; activations {acts}; loss {tr.network['loss']}: ")
            + s.math(loss_text(tr.network).formula(s)),
        ],
        [s.text("optimizer"), s.text(page.opt_text()) + page.rule.header_note(s, page.t_step)],
        [
            s.text("example"),
            s.math(f"x = {s.vector(tr.x, limit)}")
            + s.text(", ")
            + s.math(f"t = {s.vector(tr.t, limit)}"),
        ],
        [
            s.text("sign"),
            s.math(f"{s.sub(s.d, 'j')} = {s.neg}{s.partial}E/{s.partial}{s.sub('a', 'j')}")
            + s.text(" (the seed's sign): gradient descent moves ")
            + s.math(s.sub("w", "ji"))
            + s.text(" by ")
            + s.math(f"+{s.eta} {s.sub(s.d, 'j')} {s.sub('z', 'i')}"),
        ],
        *header_rows(page),
        *_names_rows(page),
    ]
    return Section("One training step by backpropagation", table=Table(["", ""], rows))


# ------------------------------------------------------------------------ forward pass
def _net_input(page: Page, layer: int, j: int) -> Eq:
    """a_j = Σ_i w_ji z_i + b_j, term by term when there are few."""
    s, n = page.style, page.style.num
    ly, zp = page.trace.layers[layer - 1], page.z_prev(layer)
    if ly.W.shape[1] <= page.opts.max_terms:
        terms = [f"{s.weight(layer, j, i)} {s.unit(layer - 1, i)}" for i in range(ly.W.shape[1])]
        sym = " + ".join(terms) + f" + {s.weight(layer, j, None)}"
        num = s.products(list(zip(ly.W[j], zp))) + s.plus(ly.b[j])
    else:
        wji = f"w_{{{s.unit(layer, j)}\\,i}}" if s.latex else f"w_{s.unit(layer, j)},i"
        sym = f"{s.sum('i')}{wji} {s.sub('z', 'i')} + {s.weight(layer, j, None)}"
        num = n(float(np.dot(ly.W[j].astype(np.float64), zp))) + s.plus(ly.b[j])
    return Eq(s.a(layer, j), [sym, num], n(ly.a[j]), sign=0.0)


def _output_of(page: Page, layer: int, j: int) -> Eq:
    """z_j = h(a_j)."""
    s, n = page.style, page.style.num
    ly, a_sym = page.trace.layers[layer - 1], s.a(layer, j)
    if ly.activation == "softmax":
        chain = [s.frac(s.exp(a_sym), f"{s.sum('m')}{s.exp(s.sub('a', 'm'))}")]
        if ly.a.max() < 700:  # e^a is finite: the numbers can be shown as they are
            e = np.exp(ly.a.astype(np.float64))
            chain.append(s.frac(n(e[j]), n(e.sum())))
    else:
        chain = activation_chain(s, ly.activation, a_sym, ly.a[j])
    return Eq(s.unit(layer, j), chain, n(ly.z[j]))


def error_eq(page: Page) -> Eq:
    s, tr = page.style, page.trace
    text = loss_text(tr.network)
    chain = [text.formula(s)[len("E = ") :]]
    if len(tr.output) <= page.opts.max_terms:
        terms = text.terms(s, tr.t, tr.output)
        if terms is not None:
            chain.append(terms)
    if tr.penalty is not None:  # the weight penalty is part of E
        chain = [chain[0] + " + P", *(f"{c} + {s.num(tr.penalty)}" for c in chain[1:])]
    return Eq("E", chain, s.num(tr.error_before))


def forward(page: Page) -> Section:
    s = page.style
    sec = Section(
        "Forward pass",
        rule=[
            f"{s.sub('a', 'j')} = {s.sum('i')}{s.sub('w', 'ji')} {s.sub('z', 'i')} + "
            f"{s.sub('b', 'j')}{s.sep}{s.sub('z', 'j')} = h({s.sub('a', 'j')})"
        ],
    )
    for layer, units in page.shown.items():
        for j in units:
            sec.eqs += [_net_input(page, layer, j), _output_of(page, layer, j)]
        page.add_left_out(sec, layer)
    sec.eqs.append(error_eq(page))
    return sec


# ------------------------------------------------------------------------ after the step
def result(page: Page) -> Section:
    s, n, tr = page.style, page.style.num, page.trace
    before, after = tr.error_before, tr.error_after
    change = after - before
    verb = "fell" if change < 0 else "rose" if change > 0 else "did not change"
    pct = f" ({abs(change) / before * 100:.3g} %)" if before else ""
    sec = Section("After the step")
    to = r" \to " if s.latex else " → "
    lim = page.opts.max_units
    sec.eqs.append(Eq("E", [], f"{n(before)}{to}{n(after)}", sign=-change))
    sec.eqs.append(Eq("o", [], f"{s.vector(tr.output, lim)}{to}{s.vector(tr.output_after, lim)}"))
    sec.notes.append(
        s.text(
            f"The error {verb}"
            + (f" by {n(abs(change))}{pct}" if change else "")
            + ": E and o after are the same example forwarded through the new weights "
            "(target "
        )
        + s.math(f"t = {s.vector(tr.t, lim)}")
        + s.text(").")
    )
    if after_note(page):
        sec.notes.append(after_note(page))  # type: ignore[arg-type]
    if tr.applied:
        sec.notes.append(s.text("The network now has the new weights (apply=True)."))
    return sec


def repeated_steps(page: Page) -> Section | None:
    """E over the steps taken on the example, when there were several."""
    s, n, tr = page.style, page.style.num, page.trace
    N = tr.steps
    if N <= 1:
        return None
    if N <= 12:
        chosen = list(range(N + 1))
    else:
        chosen = sorted({0, 1, 2, 3, N, *np.unique(np.geomspace(1, N, 10).astype(int))})
    rows = [
        [
            str(h["step"]),
            n(h["error"]),
            s.math(s.vector(np.asarray(h["output"]), page.opts.max_units)),
        ]
        for h in (tr.history[k] for k in chosen)
    ]
    sec = Section(
        f"The error over {N} steps on this example", table=Table(["step", "E", "o"], rows)
    )
    first, last = tr.errors[0], tr.errors[-1]
    sec.notes.append(
        s.text(
            f"E went from {n(first)} to {n(last)} in {N} steps "
            f"({page.opt_text()} on one example, repeated)."
        )
    )
    if s.kind == "text":
        sec.notes.append("E by step (log scale): " + sparkline(tr.errors))
    return sec


class Builder:
    """The sections of one trace's explanation, written in one :class:`Style`."""

    def __init__(self, trace: Trace, style: Style, opts: Options) -> None:
        self.page = Page(trace, style, opts)

    def build(self) -> list[Section]:
        page = self.page
        sections = [header(page), forward(page)]
        sections += [sec for sec in (dropped_outputs(page), penalty_section(page)) if sec]
        out = output_deltas(page)
        if out:
            sections.append(out)
        sections += hidden_deltas(page)
        sections += weight_updates(page)
        sections.append(result(page))
        steps = repeated_steps(page)
        if steps:
            sections.append(steps)
        return sections


def sparkline(values: Sequence[float], width: int = 48) -> str:
    """▁▂▃▅▇ bars between the smallest and largest value (log scale when all are positive),
    sampled to ``width`` bars."""
    vals = np.asarray(values, dtype=np.float64)
    if np.all(vals > 0):
        # Errors fall by orders of magnitude; on a linear scale all but the first bar are flat.
        vals = np.log10(vals)
    if len(vals) > width:
        vals = vals[np.linspace(0, len(vals) - 1, width).round().astype(int)]
    lo, hi = vals.min(), vals.max()
    bars = "▁▂▃▄▅▆▇█"
    if hi == lo:
        return bars[0] * len(vals)
    return "".join(bars[int(round((v - lo) / (hi - lo) * (len(bars) - 1)))] for v in vals)
