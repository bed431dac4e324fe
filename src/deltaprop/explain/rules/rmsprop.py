"""RMSprop's rule: the gradient over a running RMS of its history, centred or with momentum."""

from __future__ import annotations

import numpy as np

from deltaprop.core.notation import Style
from deltaprop.explain.rules.base import EqList, UpdateRule, WeightStep
from deltaprop.optim.optimizers import RMSprop

Array = np.ndarray


def _symbols(style: Style) -> tuple[str, str]:
    """ḡ (the running mean of g) and ṽ (v less its square) in the format."""
    return (r"\bar{g}", r"\tilde{v}") if style.latex else ("ḡ", "ṽ")


class RMSpropRule(UpdateRule):
    """torch.optim.RMSprop: optional L2 weight decay, centring and momentum."""

    def __init__(self, optimizer: RMSprop) -> None:
        super().__init__(optimizer)
        self.alpha = optimizer.alpha
        self.eps = optimizer.eps
        self.momentum = optimizer.momentum
        self.centered = optimizer.centered

    def update(self, t: int, w: Array, g: Array, b: dict[str, Array]) -> dict[str, Array]:
        alpha, mu = self.alpha, self.momentum
        d = self.gradient(w, g)
        out = {"g": d}
        v = alpha * b["square_avg"] + (1 - alpha) * d * d
        out["square_avg"] = v
        if self.centered:
            gbar = alpha * b["grad_avg"] + (1 - alpha) * d
            out["grad_avg"] = gbar
            v = v - gbar * gbar
            out["v_centered"] = v
        scaled = d / (np.sqrt(v) + self.eps)
        if mu > 0:
            buf = mu * b["momentum_buffer"] + scaled
            out["momentum_buffer"] = buf
            out["w"] = w - self.lr * buf
        else:
            out["w"] = w - self.lr * scaled
        return out

    def rule_summary(self, style: Style) -> list[str]:
        s = style
        arrow = f" {s.arrow} "
        lines = [f"v{arrow}{s.alpha} v + (1{s.minus}{s.alpha}) {s.sq('g')}"]
        denom = "v"
        if self.centered:
            gb, denom = _symbols(s)
            lines.append(f"{gb}{arrow}{s.alpha} {gb} + (1{s.minus}{s.alpha}) g")
            lines.append(f"{denom} = v{s.minus}{s.sq(gb)}")
        step = s.frac("g", f"({s.sqrt(denom)} + {s.eps})")
        if self.momentum > 0:
            lines.append(
                f"u{arrow}{s.mu} u + {step}   (u: momentum buffer)"
                if not s.latex
                else f"u{arrow}{s.mu} u + {step}"
            )
            lines.append(f"w{arrow}w{s.minus}{s.gamma} u")
        else:
            lines.append(f"w{arrow}w{s.minus}{s.gamma} {step}")
        return lines

    def weight_lines(self, eqs: EqList, t: int, weight: WeightStep) -> None:
        s, n, p = eqs.style, eqs.style.num, eqs.style.p
        values, before, w_sym = weight.values, weight.before, weight.symbol
        alpha, mu, g = self.alpha, self.momentum, values["g"]
        eqs.becomes(
            "v",
            [
                f"{s.alpha} v + (1{s.minus}{s.alpha}) {s.sq('g')}",
                f"{n(alpha)}{s.times}{p(before['square_avg'])} + "
                f"{n(1 - alpha)}{s.times}{s.sq(p(g))}",
            ],
            values["square_avg"],
        )
        denom_sym, denom = "v", values["square_avg"]
        if "grad_avg" in values:
            gb, tv = _symbols(s)
            eqs.becomes(
                gb,
                [
                    f"{s.alpha} {gb} + (1{s.minus}{s.alpha}) g",
                    f"{n(alpha)}{s.times}{p(before['grad_avg'])} + {n(1 - alpha)}{s.times}{p(g)}",
                ],
                values["grad_avg"],
            )
            eqs.equals(
                tv,
                [
                    f"v{s.minus}{s.sq(gb)}",
                    f"{n(values['square_avg'])}{s.minus}{s.sq(p(values['grad_avg']))}",
                ],
                values["v_centered"],
            )
            denom_sym, denom = tv, values["v_centered"]
        scaled_sym = s.frac("g", f"({s.sqrt(denom_sym)} + {s.eps})")
        scaled_num = s.frac(p(g), f"({s.sqrt(p(denom))} + {n(self.eps)})")
        if mu > 0:
            eqs.becomes(
                "u",
                [
                    f"{s.mu} u + {scaled_sym}",
                    f"{n(mu)}{s.times}{p(before['momentum_buffer'])} + {scaled_num}",
                ],
                values["momentum_buffer"],
            )
            chain = [
                f"{w_sym}{s.minus}{s.gamma} u",
                f"{n(weight.old)}{s.minus}{n(self.lr)}{s.times}{p(values['momentum_buffer'])}",
            ]
        else:
            chain = [
                f"{w_sym}{s.minus}{s.gamma} {scaled_sym}",
                f"{n(weight.old)}{s.minus}{n(self.lr)}{s.times}{scaled_num}",
            ]
        eqs.new_weight(weight, chain)
