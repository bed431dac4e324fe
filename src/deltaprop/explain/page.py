"""What every section of an explanation shares: the options, the units shown, the page's parts.

A :class:`Page` is one trace being written in one :class:`~deltaprop.core.notation.Style`
with one set of :class:`Options`: it knows which units each layer shows, the optimizer's
update rule (:func:`deltaprop.explain.rules.rule_for`, looked up once here) and the small
phrases several sections use. Sections are :class:`Section` records, laid out by
:mod:`deltaprop.explain.render`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from deltaprop.core.notation import Style
from deltaprop.explain.formulas import Eq
from deltaprop.explain.rules import rule_for

if TYPE_CHECKING:
    from deltaprop.explain.record import Trace

Array = np.ndarray


@dataclass
class Options:
    """How much of a trace to show and how.

    digits: significant digits of every number (the trace keeps full precision).
    max_units: units shown per layer; bigger layers show those with the largest |δ|.
    top: weights (and biases) shown per layer; more show those with the largest |Δw|.
    max_terms: sums with more terms are written Σ_i ... instead of term by term.
    detail: weights per layer whose update is written out line by line when the optimizer
        is not plain SGD (its rule takes several lines); the others shown get one line.
    layer: show only this layer of units (1 = the first after the inputs).
    units: show only these units, by name ("h2", "o1", "h2:3" with several hidden layers;
        with ``layer``, plain numbers count from 1 in that layer).
    color: ANSI colours (text only).
    width: text and Markdown lines longer than this continue on the next line ("= ...");
        0 never breaks.
    standalone: LaTeX as a complete document (else a fragment for \\input).
    """

    digits: int = 4
    max_units: int = 10
    top: int = 10
    max_terms: int = 6
    detail: int = 3
    layer: int | None = None
    units: Sequence[str] | None = None
    color: bool = False
    width: int = 100
    standalone: bool = True

    def check(self, trace: Trace) -> None:
        for name, low, high in (
            ("digits", 1, 17),
            ("max_units", 1, None),
            ("top", 1, None),
            ("max_terms", 1, None),
            ("detail", 0, None),
            ("width", 0, None),
        ):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int)
                or value < low
                or (high is not None and value > high)
            ):
                bound = f"in [{low}, {high}]" if high else f">= {low}"
                raise ValueError(f"{name} must be an integer {bound}. Received: {name}={value!r}")
        n = len(trace.layers)
        if self.layer is not None and (
            isinstance(self.layer, bool)
            or not isinstance(self.layer, int)
            or not 1 <= self.layer <= n
        ):
            raise ValueError(
                f"layer must be 1..{n} (layers of units after the inputs; {n} is the output "
                f"layer). Received: layer={self.layer!r}"
            )


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]


@dataclass
class Section:
    title: str
    rule: list[str] = field(default_factory=list)  # formulas under the title
    eqs: list[Eq] = field(default_factory=list)
    table: Table | None = None
    notes: list[str] = field(default_factory=list)  # prose, already escaped


# ------------------------------------------------------------------------ selection
def _unit_index(trace: Trace) -> dict[str, tuple[int, int]]:
    style = Style("text", n_layers=len(trace.layers))
    return {style.unit(ly.index, j): (ly.index, j) for ly in trace.layers for j in range(ly.size)}


def _chosen_units(trace: Trace, opts: Options) -> dict[int, set[int]]:
    """Layer index -> the units ``opts.units`` names (0-based); ValueError for unknown ones."""
    names = _unit_index(trace)
    units = opts.units
    if isinstance(units, str):  # "h1,o2" as the command line writes it
        units = [u for u in units.split(",") if u.strip()]
    chosen: dict[int, set[int]] = {}
    for raw in units:  # type: ignore[union-attr]
        key = str(raw).strip()
        if opts.layer is not None and key.isdigit():
            ly = trace.layers[opts.layer - 1]
            if not 1 <= int(key) <= ly.size:
                raise ValueError(
                    f"unit {key} is not in layer {opts.layer}, which has units 1..{ly.size}"
                )
            where = (opts.layer, int(key) - 1)
        elif key in names:
            where = names[key]
        else:
            examples = ", ".join(dict.fromkeys(list(names)[:3] + list(names)[-2:]))
            raise ValueError(
                f"unknown unit {key!r}; units are named like {examples} (inputs have no δ). "
                f"Received: units={list(units)!r}"
            )
        if opts.layer is not None and where[0] != opts.layer:
            raise ValueError(f"unit {key!r} is not in layer {opts.layer}")
        chosen.setdefault(where[0], set()).add(where[1])
    return chosen


def select_units(trace: Trace, opts: Options) -> dict[int, list[int]]:
    """Layer index -> units shown (0-based, in index order)."""
    layers = [ly for ly in trace.layers if opts.layer is None or ly.index == opts.layer]
    if opts.units is not None:
        chosen = _chosen_units(trace, opts)
        return {ly.index: sorted(chosen[ly.index]) for ly in layers if ly.index in chosen}
    out = {}
    for ly in layers:
        if ly.size <= opts.max_units:
            out[ly.index] = list(range(ly.size))
        else:
            # Stable sort: among equal |δ| the lower index wins, so the choice is reproducible.
            order = np.argsort(-np.abs(ly.delta), kind="stable")[: opts.max_units]
            out[ly.index] = sorted(int(j) for j in order)
    return out


# ------------------------------------------------------------------------ the page
class Page:
    """One trace being written: its style, options, the units shown and the update rule."""

    def __init__(self, trace: Trace, style: Style, opts: Options) -> None:
        self.trace, self.style, self.opts = trace, style, opts
        self.n_layers = len(trace.layers)
        self.shown = select_units(trace, opts)
        self.cfg = {k: v for k, v in trace.optimizer.items() if k != "step"}
        self.t_step = int(trace.optimizer.get("step", 1))
        self.rule = rule_for(self.cfg, penalized="l2" in trace.network)

    def z_prev(self, layer: int) -> Array:
        """What ``layer`` receives: the inputs for layer 1, else the outputs of the layer
        before (under dropout, z̃ = z m / (1 − p))."""
        return self.trace.x if layer == 1 else self.dropped(layer - 1)

    def dropout_rate(self, layer: int) -> float:
        """Hidden ``layer``'s dropout rate p (0 without dropout)."""
        rates = self.trace.network.get("dropout")
        return float(rates[layer - 1]) if rates and layer <= len(rates) else 0.0

    def dropped(self, layer: int) -> Array:
        """``layer``'s outputs as the next layer receives them, z m / (1 − p), computed as the
        library does (the mask scaled by 1 / (1 − p) in the network's dtype)."""
        ly = self.trace.layers[layer - 1]
        if ly.mask is None:
            return ly.z
        scaled = ly.mask * ly.z.dtype.type(1.0 / (1.0 - self.dropout_rate(layer)))
        return ly.z * scaled

    def role_name(self, layer: int) -> str:
        return "output" if layer == self.n_layers else "hidden"

    def left_out(self, layer: int) -> str | None:
        """The note saying how many of the layer's units are shown, if not all."""
        ly, n_shown = self.trace.layers[layer - 1], len(self.shown.get(layer, []))
        if n_shown == ly.size:
            return None
        s = self.style
        why = (
            "the ones you chose"
            if self.opts.units is not None
            else f"those with the largest {s.math(f'|{s.d}|')}"
        )
        return (
            s.text(f"Layer {layer} ({self.role_name(layer)}): {n_shown} of {ly.size} units shown, ")
            + why
            + s.text(".")
        )

    def add_left_out(self, section: Section, layer: int) -> None:
        note = self.left_out(layer)
        if note:
            section.notes.append(note)

    def opt_text(self) -> str:
        # Zero and off settings are left out: SGD(lr=0.5), not SGD(lr=0.5, momentum=0.0, ...).
        args = ", ".join(
            f"{k}={tuple(v) if isinstance(v, list) else v!r}"
            for k, v in self.cfg.items()
            if k != "name" and (k == "lr" or v not in (0, False))
        )
        return f"{self.cfg.get('name')}({args})"
