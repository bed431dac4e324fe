"""How each loss is written: E's formula, and its terms with the example's numbers in.

One writer per loss class of :mod:`deltaprop.core.losses`, found once from the loss a trace
names (:func:`loss_text`); a loss the library does not know is written as its own formula text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from deltaprop.core.losses import BinaryCrossEntropy, CrossEntropy, Loss, MeanSquaredError, get_loss
from deltaprop.core.notation import Style

Array = np.ndarray


def _symbols(s: Style) -> tuple[str, str, str]:
    return s.sum("k"), s.sub("t", "k"), s.sub("o", "k")


class LossText:
    """A loss written out; this base writes one the library does not know."""

    def __init__(self, network: Mapping[str, Any]) -> None:
        self.network = network

    def formula(self, s: Style) -> str:
        """E = ... in symbols."""
        return s.text(self.network.get("loss_formula") or self.network["loss"])

    def terms(self, s: Style, t: Array, o: Array) -> str | None:
        """E's terms with the numbers in, or None where they are not written out."""
        return None


class MeanSquaredErrorText(LossText):
    def formula(self, s: Style) -> str:
        sk, tk, ok = _symbols(s)
        return f"E = {s.half} {sk}{s.sq(f'({tk}{s.minus}{ok})')}"

    def terms(self, s: Style, t: Array, o: Array) -> str:
        n = s.num
        return " + ".join(
            f"{s.half} {s.sq(f'({n(tk)}{s.minus}{s.p(ok)})')}" for tk, ok in zip(t, o)
        )


class CrossEntropyText(LossText):
    def formula(self, s: Style) -> str:
        sk, tk, ok = _symbols(s)
        return f"E = {s.neg}{sk}{tk} {s.log(ok)}"

    def terms(self, s: Style, t: Array, o: Array) -> str:
        n = s.num
        terms = [(tk, ok) for tk, ok in zip(t, o) if tk != 0]
        return (
            s.neg
            + "("
            + " + ".join(
                (s.log(n(ok)) if tk == 1 else f"{n(tk)}{s.times}{s.log(n(ok))}") for tk, ok in terms
            )
            + ")"
        )


class BinaryCrossEntropyText(LossText):
    def formula(self, s: Style) -> str:
        sk, tk, ok = _symbols(s)
        return f"E = {s.neg}{sk}[{tk} {s.log(ok)} + (1{s.minus}{tk}) {s.log(f'(1{s.minus}{ok})')}]"

    def terms(self, s: Style, t: Array, o: Array) -> str:
        n = s.num
        return (
            s.neg
            + "("
            + " + ".join(
                f"{n(tk)}{s.times}{s.log(n(ok))} + {n(1 - tk)}{s.times}{s.log(n(1 - ok))}"
                for tk, ok in zip(t, o)
            )
            + ")"
        )


WRITERS: dict[type[Loss], type[LossText]] = {
    MeanSquaredError: MeanSquaredErrorText,
    CrossEntropy: CrossEntropyText,
    BinaryCrossEntropy: BinaryCrossEntropyText,
}


def loss_text(network: Mapping[str, Any]) -> LossText:
    """The writer of the loss a trace's ``network`` record names."""
    try:
        loss = get_loss(network["loss"])
    except ValueError:
        return LossText(network)
    for kind in type(loss).__mro__:
        if kind in WRITERS:
            return WRITERS[kind](network)
    return LossText(network)  # pragma: no cover - every library loss has a writer
