"""Adagrad's rule: steps that shrink with the summed squares of the gradient."""

from __future__ import annotations

import numpy as np

from deltaprop.core.notation import Style
from deltaprop.explain.rules.base import EqList, UpdateRule, WeightStep
from deltaprop.optim.optimizers import Adagrad

Array = np.ndarray


def _decayed_lr(style: Style) -> str:
    return r"\tilde{\gamma}" if style.latex else "γ̃"


class AdagradRule(UpdateRule):
    """torch.optim.Adagrad: optional L2 weight decay and learning-rate decay."""

    def __init__(self, optimizer: Adagrad) -> None:
        super().__init__(optimizer)
        self.eps = optimizer.eps
        self.lr_decay = optimizer.lr_decay

    def update(self, t: int, w: Array, g: Array, b: dict[str, Array]) -> dict[str, Array]:
        out = {"lr_t": np.asarray(self.lr / (1 + (t - 1) * self.lr_decay))}
        d = out["g"] = self.gradient(w, g)
        s = b["sum"] + d * d
        out["sum"] = s
        out["w"] = w - out["lr_t"] * d / (np.sqrt(s) + self.eps)
        return out

    def rule_summary(self, style: Style) -> list[str]:
        s = style
        arrow = f" {s.arrow} "
        lines = []
        gt = s.gamma
        if self.lr_decay:
            gt = _decayed_lr(s)
            lines.append(f"{gt} = {s.frac(s.gamma, f'(1 + (t{s.minus}1) {s.eta})')}")
        lines.append(f"s{arrow}s + {s.sq('g')}")
        denom = f"({s.sqrt('s')} + {s.eps})"
        lines.append(f"w{arrow}w{s.minus}{gt} {s.frac('g', denom)}")
        return lines

    def weight_lines(self, eqs: EqList, t: int, weight: WeightStep) -> None:
        s, n, p = eqs.style, eqs.style.num, eqs.style.p
        values, g = weight.values, weight.values["g"]
        gt = s.gamma
        if self.lr_decay:
            gt = _decayed_lr(s)
            eqs.equals(
                gt,
                [
                    s.frac(s.gamma, f"(1 + (t{s.minus}1) {s.eta})"),
                    s.frac(n(self.lr), f"(1 + {t - 1}{s.times}{n(self.lr_decay)})"),
                ],
                values["lr_t"],
            )
        eqs.becomes(
            "s", [f"s + {s.sq('g')}", f"{n(weight.before['sum'])} + {s.sq(p(g))}"], values["sum"]
        )
        den_sym = f"({s.sqrt('s')} + {s.eps})"
        den_num = f"({s.sqrt(p(values['sum']))} + {n(self.eps)})"
        eqs.new_weight(
            weight,
            [
                f"{weight.symbol}{s.minus}{gt} {s.frac('g', den_sym)}",
                f"{n(weight.old)}{s.minus}{n(float(values['lr_t']))}{s.times}"
                f"{s.frac(p(g), den_num)}",
            ],
        )
