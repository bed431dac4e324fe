"""Formulas with their numbers put in, written for the terminal, Markdown or LaTeX.

:class:`Eq` is one displayed chain of equalities; the symbols and numbers in it are written by
:class:`deltaprop.core.notation.Style`. The optimizers' rules are in
:mod:`deltaprop.explain.rules`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deltaprop.core.activations import ELU_ALPHA, get_activation
from deltaprop.core.notation import Style

Array = np.ndarray


@dataclass
class Eq:
    """One displayed chain ``lhs op chain[0] = chain[1] = ... = result``.

    ``label`` groups several lines (an optimizer's rule for one weight); ``sign`` of the result
    lets the terminal colour it; ``note`` follows the result (e.g. the Δw of an update).
    """

    lhs: str
    chain: list[str]
    result: str
    op: str = "="
    sign: float = 0.0
    note: str = ""
    label: str = ""


def derivative_factor(
    style: Style, activation: str, sym: str, z: float, a_sym: str
) -> tuple[str, str]:
    """h'(a) of the unit whose output is ``sym`` = z (net input ``a_sym``) as (symbolic,
    numeric) factors.

    Written through the output, as the library computes it; piecewise derivatives are written
    h'(a) with the branch's value. The constant 1 comes back as ("", "") so callers can leave
    it out.
    """
    s, n = style, style.num(z)
    if activation == "sigmoid":
        return f"{sym}(1{s.minus}{sym})", f"{n}{s.times}(1{s.minus}{n})"
    if activation == "tanh":
        return f"(1{s.minus}{s.sq(sym)})", f"(1{s.minus}{s.sq(s.p(z))})"
    if activation == "softplus":
        return f"(1{s.minus}{s.exp(s.neg + sym)})", f"(1{s.minus}{s.exp(s.neg + s.p(z))})"
    if activation == "identity":
        return "", ""
    if activation == "exp":  # h'(a) = e^a = z
        return sym, n
    if activation in ("relu", "leaky_relu") or (activation == "elu" and z > 0):
        # A branch's constant, from the library's own derivative (where the slopes are defined).
        value = get_activation(activation).derivative(np.asarray([z], dtype=np.float64))[0]
        return f"{s.fn(activation)}'({a_sym})", s.num(value)
    if activation == "elu":
        alpha = s.num(ELU_ALPHA)
        return f"({sym} + {alpha})", f"({n} + {alpha})"
    return f"h'({a_sym})", ""


def activation_chain(style: Style, activation: str, a_sym: str, a: float) -> list[str]:
    """z = h(a) written symbolically and with the number in."""
    if activation == "identity":
        return [a_sym]
    f = style.fn(activation)
    return [f"{f}({a_sym})", f"{f}({style.num(a)})"]
