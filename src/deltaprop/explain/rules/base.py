"""What every optimizer's rule has: the gradient it starts from, one weight's numbers, the check.

An :class:`UpdateRule` is one optimizer kind's update, in three forms kept side by side in its
class: :meth:`~UpdateRule.recompute` (the numbers), :meth:`~UpdateRule.summary` (the formulas)
and :meth:`~UpdateRule.lines` (the formulas for one weight with its numbers in).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from deltaprop.core.notation import Style
from deltaprop.explain.formulas import Eq
from deltaprop.optim.optimizers import Optimizer

Array = np.ndarray


def hyperparameter(cfg: Mapping[str, Any], key: str) -> float:
    """A number of an optimizer's ``config()``, 0 where it has none."""
    return float(cfg.get(key, 0.0))


@dataclass
class WeightStep:
    """One weight's (or bias's) update, with the numbers its lines show.

    ``delta_z``/``delta_z_num``: δ_j z_i written with symbols and with numbers; ``grad``: ∂E/∂w;
    ``old``/``new``: the weight before and after the library's step; ``values``: this weight's
    numbers from :meth:`UpdateRule.recompute`; ``before``: its buffers before the step.
    """

    symbol: str
    delta_z: str
    delta_z_num: str
    grad: float
    old: float
    new: float
    values: dict[str, float]
    before: dict[str, float]
    penalty_sym: str = ""  # the weight penalty's gradient terms (a weight's, not a bias's)
    penalty_num: str = ""

    def change_note(self, style: Style) -> str:
        big_delta = r"\Delta " if style.latex else "Δ"
        return f"{big_delta}w = {style.signed(self.new - self.old)}"


class EqList(list):
    """The lines of one weight's update, with shorthands for the lines that end in a number."""

    def __init__(self, style: Style) -> None:
        super().__init__()
        self.style = style

    def equals(self, lhs: str, chain: list[str], value: float, op: str = "=") -> None:
        """``lhs = chain[0] = ... = value``."""
        self.append(Eq(lhs, chain, self.style.num(value), op=op, sign=value))

    def becomes(self, lhs: str, chain: list[str], value: float) -> None:
        """A buffer's (or the gradient's) new value: ``lhs ← chain[0] = ... = value``."""
        self.equals(lhs, chain, value, self.style.arrow)

    def new_weight(self, weight: WeightStep, chain: list[str]) -> None:
        """The last line: the weight's new value (the library's), with its change."""
        s = self.style
        self.append(
            Eq(
                weight.symbol,
                chain,
                s.num(weight.new),
                op=s.arrow,
                sign=weight.new - weight.old,
                note=weight.change_note(s),
            )
        )


class UpdateRule:
    """An optimizer kind's update rule, recomputed and written out.

    The recomputation is deliberately independent of :mod:`deltaprop.optim.optimizers`: it is
    written from the torch.optim algorithms in float64, so that an explanation can check that
    the formula it prints is the step the library took (each update section says how closely
    they agree; tests/test_explain.py compares the two for every optimizer kind).

    ``multiline``: a weight's update takes several lines, so the document writes only the first
    few weights out in full. ``decoupled``: weight decay bypasses the gradient (the optimizer's
    own flag: AdamW).
    """

    multiline = True
    penalized = False  # the network has a weight penalty: its terms join g (rule_for sets it)

    def __init__(self, optimizer: Optimizer) -> None:
        # The hyperparameters as the library's optimizer holds them (validated floats).
        self.optimizer = optimizer
        self.name = optimizer.name
        self.lr = optimizer.lr
        self.weight_decay = optimizer.weight_decay
        self.decoupled = optimizer.decoupled
        self.decay_biases = bool(getattr(optimizer, "decay_biases", True))

    @property
    def coupled_decay(self) -> bool:
        """Whether an L2 term λ w is added to the gradient."""
        return bool(self.weight_decay) and not self.decoupled

    # ------------------------------------------------------------------ numbers
    def recompute(
        self, t: int, w: Array, g: Array, before: Mapping[str, Array], bias: bool = False
    ) -> dict[str, Array] | None:
        """The update at step t from the buffers ``before``, every intermediate, in float64.

        Returns named arrays: always ``"g"`` (the gradient used, with any L2 term) and ``"w"``
        (the new weight), plus the new buffers under the optimizer's buffer names and
        intermediates ("m_hat", "v_hat", "lr_t", "w_decayed", ...); None for a rule that cannot
        be recomputed.
        """
        w = np.asarray(w, dtype=np.float64)
        g = np.asarray(g, dtype=np.float64)
        b = {k: np.asarray(v, dtype=np.float64) for k, v in before.items()}
        if bias and not self.decay_biases:  # AdamW(decay_biases=False) leaves biases alone
            undecayed = copy.copy(self)
            undecayed.weight_decay = 0.0
            return undecayed.update(t, w, g, b)
        return self.update(t, w, g, b)

    def update(self, t: int, w: Array, g: Array, b: dict[str, Array]) -> dict[str, Array] | None:
        """:meth:`recompute` on float64 arrays; each kind writes its algorithm here."""
        return None

    def gradient(self, w: Array, g: Array) -> Array:
        """The gradient the update uses: g + λ w with coupled weight decay."""
        return g + self.weight_decay * w if self.coupled_decay else g

    # ------------------------------------------------------------------ formulas
    def summary(self, style: Style) -> list[str]:
        """The update rule as formulas (no numbers), one line each."""
        s = style
        arrow = f" {s.arrow} "
        lines = [f"g = {s.partial}E/{s.partial}w = {s.neg}{s.sub(s.d, 'j')} {s.sub('z', 'i')}"]
        if self.penalized:
            lines[0] += f" + {s.sub(s.lam, '2')} w + {s.sub(s.lam, '1')} sign(w)   (weights)"
        if self.coupled_decay:
            lines.append(f"g{arrow}g + {s.lam} w")
        return lines + self.rule_summary(style)

    def rule_summary(self, style: Style) -> list[str]:
        """The lines of :meth:`summary` after the gradient's."""
        return []

    def lines(self, style: Style, t: int, weight: WeightStep) -> list[Eq]:
        """The rule for one weight with the numbers in, one :class:`Eq` per line; the first
        carries the weight's symbol as its label."""
        s, n, p = style, style.num, style.p
        eqs = EqList(style)
        w_sym = weight.symbol
        derivative = f"{s.partial}E/{s.partial}{w_sym} = {s.neg}{weight.delta_z}"
        eqs.equals(
            "g",
            [derivative + weight.penalty_sym, f"{s.neg}{weight.delta_z_num}{weight.penalty_num}"],
            weight.grad,
        )
        if self.coupled_decay:
            decay = f"{n(weight.grad)} + {n(self.weight_decay)}{s.times}{p(weight.old)}"
            eqs.becomes("g", [f"g + {s.lam} {w_sym}", decay], weight.values["g"])
        self.weight_lines(eqs, t, weight)
        eqs[0].label = w_sym
        return eqs

    def weight_lines(self, eqs: EqList, t: int, weight: WeightStep) -> None:
        """The lines of :meth:`lines` after the gradient's, ending with the new weight."""
        raise NotImplementedError

    # ------------------------------------------------------------------ prose
    def header_note(self, style: Style, t: int) -> str:
        """What follows the optimizer's name in the explanation's header."""
        return style.text(f", step t = {t}")

    def check_claim(self, style: Style) -> str:
        """What the check of the recomputation against the library's step says agrees."""
        return style.text(
            f"The rule, recomputed from these numbers, gives {self.name}.step's values"
        )


class StepOnlyRule(UpdateRule):
    """An optimizer without a written rule (one of a user's): each weight shown as the result of
    its ``step``, with nothing recomputed."""

    multiline = False

    def __init__(self, cfg: Mapping[str, Any]) -> None:
        # No optimizer of the library's to read: the trace's record of it is all there is.
        self.decay_biases = True
        self.name = str(cfg.get("name"))
        self.lr = hyperparameter(cfg, "lr")
        self.weight_decay = hyperparameter(cfg, "weight_decay")
        self.decoupled = False

    def rule_summary(self, style: Style) -> list[str]:
        return [f"w {style.arrow} {self.name}.step(w, g)"]

    def lines(self, style: Style, t: int, weight: WeightStep) -> list[Eq]:
        s = style
        return [
            Eq(
                weight.symbol,
                [s.text(f"{self.name}.step")],
                s.num(weight.new),
                op=s.arrow,
                sign=weight.new - weight.old,
                label=weight.symbol,
                note=weight.change_note(s),
            )
        ]
