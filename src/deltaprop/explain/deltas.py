"""The delta rules: which formula gave each δ, its text, and the deltas' sections.

Every rule is one object with its schema name (a trace's ``delta_rule``), its formula as the
JSON writes it, the test of when it applies and how it is written out for a unit. Which rule
applies to an output layer is decided in one place, :func:`output_rule`, from the library's
loss and activation objects (the loss's ``output_delta`` computes δ; the rule says how that
reads). The numbers are the library's: δ from ``Network.backward``, h'(a) from the
activation's ``derivative``; the sections only write them into their formulas.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from deltaprop.core.activations import Activation
from deltaprop.core.losses import (
    BinaryCrossEntropy,
    CrossEntropy,
    Loss,
    MeanSquaredError,
    PoissonDeviance,
)
from deltaprop.core.notation import Style
from deltaprop.explain.controls import mask_factor
from deltaprop.explain.formulas import Eq, derivative_factor
from deltaprop.explain.page import Page, Section

if TYPE_CHECKING:
    from deltaprop.explain.record import LayerTrace

Array = np.ndarray


@dataclass
class OutputUnit:
    """Output unit k's numbers and symbols, as its δ line shows them; ``error``/``error_num``:
    (t_k − o_k) with symbols and with numbers."""

    k: int
    o: float
    t: float
    delta: float
    h_prime: float | None
    activation: str
    symbol: str
    a_symbol: str
    error: str
    error_num: str


class DeltaRule:
    """A delta rule: ``name`` in the trace schema and ``formula`` as its JSON writes it."""

    name = ""
    formula = ""


class GeneralRule(DeltaRule):
    """δ_k = −∂E/∂o_k · h'(a_k), for an output layer no simpler rule describes."""

    name = "general"
    formula = "δ_k = −∂E/∂o_k · h'(a_k)"

    def applies(self, loss: Loss, activation: Activation) -> bool:
        return True

    @staticmethod
    def general_line(s: Style) -> str:
        dk, ok = s.sub(s.d, "k"), s.sub("o", "k")
        return f"{dk} = {s.neg}{s.partial}E/{s.partial}{ok}{s.cdot}h'({s.sub('a', 'k')})"

    def rule_lines(self, s: Style) -> list[str]:
        return [self.general_line(s)]

    def notes(self, s: Style) -> list[str]:
        return []

    def eqs(self, s: Style, layer: LayerTrace, t: Array, max_terms: int) -> list[Eq]:
        """Equations before the units' (a sum the units' lines use)."""
        return []

    def chain(self, s: Style, unit: OutputUnit, layer: LayerTrace, t: Array) -> list[str]:
        chain = [f"{s.neg}{s.partial}E/{s.partial}{unit.symbol}{s.cdot}h'({unit.a_symbol})"]
        if unit.h_prime is not None and unit.h_prime != 0:
            chain.append(s.products([(unit.delta / unit.h_prime, unit.h_prime)]))
        return chain


class SigmoidSquaredErrorRule(GeneralRule):
    """The seed's δ_k = o_k (1 − o_k)(t_k − o_k): squared error through a sigmoid."""

    name = "sigmoid_mse"
    formula = "δ_k = o_k (1 − o_k)(t_k − o_k)"

    def applies(self, loss: Loss, activation: Activation) -> bool:
        return isinstance(loss, MeanSquaredError) and activation.name == "sigmoid"

    def rule_lines(self, s: Style) -> list[str]:
        dk, ok, tk = s.sub(s.d, "k"), s.sub("o", "k"), s.sub("t", "k")
        return [f"{dk} = {ok}(1{s.minus}{ok})({tk}{s.minus}{ok})"]

    def notes(self, s: Style) -> list[str]:
        return [
            s.text("The seed's formula: squared error through a sigmoid, whose derivative ")
            + s.math(f"h'(a) = o(1{s.minus}o)")
            + s.text(" is written through the output.")
        ]

    def chain(self, s: Style, unit: OutputUnit, layer: LayerTrace, t: Array) -> list[str]:
        o, n = unit.symbol, s.num(unit.o)
        return [
            f"{o}(1{s.minus}{o}){unit.error}",
            f"{n}{s.times}(1{s.minus}{n}){s.times}{unit.error_num}",
        ]


class SquaredErrorRule(GeneralRule):
    """δ_k = (t_k − o_k) h'(a_k): squared error through an element-wise activation."""

    name = "mse"
    formula = "δ_k = −∂E/∂o_k · h'(a_k) = (t_k − o_k) h'(a_k)"

    def applies(self, loss: Loss, activation: Activation) -> bool:
        return isinstance(loss, MeanSquaredError) and activation.elementwise

    def rule_lines(self, s: Style) -> list[str]:
        ok, tk = s.sub("o", "k"), s.sub("t", "k")
        return [self.general_line(s), f"{s.neg}{s.partial}E/{s.partial}{ok} = {tk}{s.minus}{ok}"]

    def chain(self, s: Style, unit: OutputUnit, layer: LayerTrace, t: Array) -> list[str]:
        fs, fn = derivative_factor(s, unit.activation, unit.symbol, unit.o, unit.a_symbol)
        fn = fn or s.num(unit.h_prime)  # an activation without a written-out derivative
        if fs:
            return [f"{fs}{unit.error}", f"{fn}{s.times}{unit.error_num}"]
        return [unit.error[1:-1], unit.error_num[1:-1]]


class SoftmaxSquaredErrorRule(GeneralRule):
    """δ_k = o_k ((t_k − o_k) − S), S = Σ_m o_m (t_m − o_m): softmax's Jacobian."""

    name = "softmax_mse"
    formula = "δ_k = o_k ((t_k − o_k) − Σ_m o_m (t_m − o_m))"

    def applies(self, loss: Loss, activation: Activation) -> bool:
        return isinstance(loss, MeanSquaredError) and activation.name == "softmax"

    @staticmethod
    def weighted_error(layer: LayerTrace, t: Array) -> float:
        """S, as the section shows it (δ itself is the library's)."""
        return float(np.sum(layer.z.astype(np.float64) * (t - layer.z)))

    def rule_lines(self, s: Style) -> list[str]:
        dk, ok, tk = s.sub(s.d, "k"), s.sub("o", "k"), s.sub("t", "k")
        return [
            self.general_line(s),
            f"{dk} = {ok}(({tk}{s.minus}{ok}){s.minus}S),   S = "
            f"{s.sum('m')}{s.sub('o', 'm')}({s.sub('t', 'm')}{s.minus}"
            f"{s.sub('o', 'm')})",
        ]

    def notes(self, s: Style) -> list[str]:
        return [s.text("Softmax is not element-wise: its Jacobian mixes the outputs through S.")]

    def eqs(self, s: Style, layer: LayerTrace, t: Array, max_terms: int) -> list[Eq]:
        n, p = s.num, s.p
        chain = [f"{s.sum('m')}{s.sub('o', 'm')}({s.sub('t', 'm')}{s.minus}{s.sub('o', 'm')})"]
        if layer.size <= max_terms:
            chain.append(
                " + ".join(f"{n(o)}{s.times}({n(tm)}{s.minus}{p(o)})" for o, tm in zip(layer.z, t))
            )
        return [Eq("S", chain, n(self.weighted_error(layer, t)))]

    def chain(self, s: Style, unit: OutputUnit, layer: LayerTrace, t: Array) -> list[str]:
        S = self.weighted_error(layer, t)
        return [
            f"{unit.symbol}({unit.error}{s.minus}S)",
            f"{s.num(unit.o)}{s.times}({unit.error_num}{s.minus}{s.p(S)})",
        ]


class CancellingRule(GeneralRule):
    """δ_k = t_k − o_k: a loss whose ∂E/∂o the output activation's derivative cancels."""

    formula = "δ_k = t_k − o_k"

    def __init__(self, name: str, loss: type[Loss], activation: str) -> None:
        self.name, self.loss, self.activation = name, loss, activation

    def applies(self, loss: Loss, activation: Activation) -> bool:
        return isinstance(loss, self.loss) and activation.name == self.activation

    def rule_lines(self, s: Style) -> list[str]:
        dk, ok, tk = s.sub(s.d, "k"), s.sub("o", "k"), s.sub("t", "k")
        return [self.general_line(s), f"{dk} = {tk}{s.minus}{ok}"]

    def notes(self, s: Style) -> list[str]:
        if self.activation == "softmax":
            what = s.text("The softmax's Jacobian")
        elif self.activation == "exp":
            what = s.text("The exponential's derivative ") + s.math(f"({s.exp('a')})' = o")
        else:
            what = s.text("The sigmoid's derivative ") + s.math(
                f"{s.fn('sigmoid')}'(a) = o(1{s.minus}o)"
            )
        return [
            what
            + s.text(" cancels the denominators of ")
            + s.math(f"{s.partial}E/{s.partial}o")
            + s.text(", leaving ")
            + s.math(f"t{s.minus}o")
            + s.text(".")
        ]

    def chain(self, s: Style, unit: OutputUnit, layer: LayerTrace, t: Array) -> list[str]:
        return [unit.error[1:-1], unit.error_num[1:-1]]


class HiddenRule(DeltaRule):
    """δ_j = h'(a_j) Σ_k δ_k w_kj, the rule of every hidden unit."""

    name = "hidden"
    formula = "δ_j = h'(a_j) Σ_k δ_k w_kj"


# The output rules in the order they are tried: the first that applies is the rule.
OUTPUT_RULES: tuple[GeneralRule, ...] = (
    SigmoidSquaredErrorRule(),
    SoftmaxSquaredErrorRule(),
    CancellingRule("softmax_cross_entropy", CrossEntropy, "softmax"),
    CancellingRule("sigmoid_binary_cross_entropy", BinaryCrossEntropy, "sigmoid"),
    CancellingRule("exp_poisson", PoissonDeviance, "exp"),
    SquaredErrorRule(),
    GeneralRule(),
)
HIDDEN = HiddenRule()
RULES: dict[str, DeltaRule] = {rule.name: rule for rule in (*OUTPUT_RULES, HIDDEN)}


def output_rule(loss: Loss, activation: Activation) -> GeneralRule:
    """The rule that describes the output deltas of ``loss`` through ``activation``."""
    return next(rule for rule in OUTPUT_RULES if rule.applies(loss, activation))


def formula_of(name: str) -> str:
    """The formula of the rule a trace names ("" for a name this deltaprop does not know)."""
    rule = RULES.get(name)
    return rule.formula if rule else ""


# ------------------------------------------------------------------------ the sections
def output_deltas(page: Page) -> Section | None:
    s, n, p = page.style, page.style.num, page.style.p
    tr, L = page.trace, page.n_layers
    if L not in page.shown:
        return None
    ly = tr.layers[-1]
    rule = RULES.get(ly.delta_rule)
    if not isinstance(rule, GeneralRule):
        rule = OUTPUT_RULES[-1]
    sec = Section("Output deltas", rule=rule.rule_lines(s), notes=rule.notes(s))
    sec.eqs += rule.eqs(s, ly, tr.t, page.opts.max_terms)
    for k in page.shown[L]:
        o, t = float(ly.z[k]), float(tr.t[k])
        osym = s.unit(L, k)
        unit = OutputUnit(
            k=k,
            o=o,
            t=t,
            delta=float(ly.delta[k]),
            h_prime=None if ly.h_prime is None else float(ly.h_prime[k]),
            activation=ly.activation,
            symbol=osym,
            a_symbol=s.a(L, k),
            error=f"({s.target(k)}{s.minus}{osym})",
            error_num=f"({n(t)}{s.minus}{p(o)})",
        )
        chain = rule.chain(s, unit, ly, tr.t)
        sec.eqs.append(Eq(s.delta(L, k), chain, n(unit.delta), sign=unit.delta))
    page.add_left_out(sec, L)
    return sec


def _hidden_unit(page: Page, layer: int, j: int) -> Eq:
    """δ_j = h'(a_j) Σ_k δ_k w_kj for unit j of ``layer``, with the numbers in."""
    s, n, p = page.style, page.style.num, page.style.p
    ly, nxt = page.trace.layers[layer - 1], page.trace.layers[layer]
    u = s.unit(layer, j)
    fs, fn = derivative_factor(s, ly.activation, u, float(ly.z[j]), s.a(layer, j))
    hp, bp, d = float(ly.h_prime[j]), float(ly.backprop[j]), float(ly.delta[j])
    fn = fn or (n(hp) if fs else "")
    if nxt.size <= page.opts.max_terms:
        sym_sum = " + ".join(
            f"{s.delta(layer + 1, k)} {s.weight(layer + 1, k, j)}" for k in range(nxt.size)
        )
        num_sum = s.products([(nxt.delta[k], nxt.W[k, j]) for k in range(nxt.size)])
    else:
        wk = f"w_{{k\\,{u}}}" if s.latex else f"w_k,{u}"
        sym_sum, num_sum = f"{s.sum('k')}{s.sub(s.d, 'k')} {wk}", n(bp)
    if fs:
        chain = [
            f"{fs}({sym_sum})",
            f"{fn}{s.times}({num_sum})" if fn else None,
            f"{n(hp)}{s.times}{p(bp)}",
        ]
    else:
        chain = [sym_sum, num_sum]
    factor = mask_factor(page, layer, j)
    if factor is not None:
        # Dropout: δ_j = m_j h'(a_j) Σ_k δ_k w_kj / (1 − p), the mask and the factor last.
        chain = [f"{c}{s.cdot}{f}" for c, f in zip(chain, (factor[0], *[factor[1]] * 2)) if c]
    return Eq(s.delta(layer, j), [c for c in chain if c], n(d), sign=d)


def hidden_deltas(page: Page) -> list[Section]:
    s, tr, out = page.style, page.trace, []
    dj, dk = s.sub(s.d, "j"), s.sub(s.d, "k")
    for layer in range(page.n_layers - 1, 0, -1):
        if layer not in page.shown:
            continue
        nxt = tr.layers[layer]
        rule = f"{dj} = h'({s.sub('a', 'j')}) {s.sum('k')}{dk} {s.sub('w', 'kj')}"
        if tr.layers[layer - 1].mask is not None:
            rule = f"{dj} = {s.sub('m', 'j')} h'({s.sub('a', 'j')}) {s.sum('k')}{dk} " + (
                f"{s.sub('w', 'kj')} / (1{s.minus}p)"
            )
        sec = Section(
            f"Hidden deltas, layer {layer}" if page.n_layers > 2 else "Hidden deltas",
            rule=[rule],
            notes=[
                s.text(
                    f"k runs over the {nxt.size} unit{'s' if nxt.size > 1 else ''} "
                    f"of layer {layer + 1} "
                    f"({page.role_name(layer + 1)}); the weights are those before the "
                    "update."
                )
            ],
        )
        sec.eqs += [_hidden_unit(page, layer, j) for j in page.shown[layer]]
        page.add_left_out(sec, layer)
        out.append(sec)
    return out
