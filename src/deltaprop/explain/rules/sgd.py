"""SGD's rules: the seed's update (plain SGD) and SGD with weight decay, momentum or Nesterov."""

from __future__ import annotations

import numpy as np

from deltaprop.core.notation import Style
from deltaprop.explain.formulas import Eq
from deltaprop.explain.rules.base import EqList, UpdateRule, WeightStep
from deltaprop.optim.optimizers import SGD

Array = np.ndarray


class SGDRule(UpdateRule):
    """torch.optim.SGD: optional L2 weight decay, (dampened) momentum and Nesterov momentum."""

    def __init__(self, optimizer: SGD) -> None:
        super().__init__(optimizer)
        self.momentum = optimizer.momentum
        self.dampening = optimizer.dampening
        self.nesterov = optimizer.nesterov

    def update(self, t: int, w: Array, g: Array, b: dict[str, Array]) -> dict[str, Array]:
        mu, tau = self.momentum, self.dampening
        d = self.gradient(w, g)
        out = {"g": d}
        if mu:
            buf = d.copy() if t == 1 else mu * b["momentum_buffer"] + (1 - tau) * d
            out["momentum_buffer"] = buf
            d = d + mu * buf if self.nesterov else buf
            out["step"] = d
        out["w"] = w - self.lr * d
        return out

    def rule_summary(self, style: Style) -> list[str]:
        s = style
        arrow = f" {s.arrow} "
        lines = []
        if self.momentum:
            lines.append(
                f"u{arrow}{s.mu} u + (1{s.minus}{s.tau}) g   (u: momentum buffer; u = g at step 1)"
                if not s.latex
                else r"u \leftarrow \mu u + (1 - \tau) g \quad (u = g \text{ at step } 1)"
            )
            lines.append(f"g{arrow}g + {s.mu} u" if self.nesterov else f"g{arrow}u")
        lines.append(f"w{arrow}w{s.minus}{s.gamma} g")
        return lines

    def weight_lines(self, eqs: EqList, t: int, weight: WeightStep) -> None:
        s, n, p = eqs.style, eqs.style.num, eqs.style.p
        mu, tau = self.momentum, self.dampening
        g = step = weight.values["g"]
        if mu:
            buf = weight.values["momentum_buffer"]
            if t == 1:
                eqs.equals("u", ["g"], buf)
            else:
                eqs.becomes(
                    "u",
                    [
                        f"{s.mu} u + (1{s.minus}{s.tau}) g",
                        f"{n(mu)}{s.times}{p(weight.before['momentum_buffer'])} + "
                        f"(1{s.minus}{n(tau)}){s.times}{p(g)}",
                    ],
                    buf,
                )
            if self.nesterov:
                step = weight.values["step"]
                eqs.becomes("g", [f"g + {s.mu} u", f"{n(g)} + {n(mu)}{s.times}{p(buf)}"], step)
            else:
                step = buf
        used = "g" if not mu or self.nesterov else "u"
        eqs.new_weight(
            weight,
            [
                f"{weight.symbol}{s.minus}{s.gamma} {used}",
                f"{n(weight.old)}{s.minus}{n(self.lr)}{s.times}{p(step)}",
            ],
        )


class SeedRule(SGDRule):
    """Plain SGD, the seed's update: w_ji ← w_ji + η δ_j z_i, one line per weight."""

    multiline = False

    def summary(self, style: Style) -> list[str]:
        s = style
        wji, dj, zi = s.sub("w", "ji"), s.sub(s.d, "j"), s.sub("z", "i")
        return [f"{wji} {s.arrow} {wji} + {s.eta} {dj} {zi}"]

    def lines(self, style: Style, t: int, weight: WeightStep) -> list[Eq]:
        s, n = style, style.num
        w_sym = weight.symbol
        return [
            Eq(
                w_sym,
                [
                    f"{w_sym} + {s.eta} {weight.delta_z}",
                    f"{n(weight.old)} + {n(self.lr)}{s.times}{weight.delta_z_num}",
                ],
                n(weight.new),
                op=s.arrow,
                sign=weight.new - weight.old,
                note=weight.change_note(s),
                label=w_sym,
            )
        ]

    def header_note(self, style: Style, t: int) -> str:
        return style.text(", the seed's update ") + style.math(self.summary(style)[0])

    def check_claim(self, style: Style) -> str:
        s = style
        big_delta = r"\Delta " if s.latex else "Δ"
        return (
            s.math(f"{big_delta}w")
            + s.text(f" = new − old from {self.name}.step agrees with ")
            + s.math(f"{s.eta} {s.sub(s.d, 'j')} {s.sub('z', 'i')}")
        )


def sgd_rule(optimizer: SGD) -> SGDRule:
    """The seed's rule for SGD without momentum or weight decay, else the full SGD rule."""
    if optimizer.variant == "plain" and optimizer.weight_decay == 0:
        return SeedRule(optimizer)
    return SGDRule(optimizer)
