"""Adam's rule, and AdamW's: Adam with weight decay decoupled from the gradient."""

from __future__ import annotations

import numpy as np

from deltaprop.core.notation import Style
from deltaprop.explain.rules.base import EqList, UpdateRule, WeightStep
from deltaprop.optim.optimizers import Adam

Array = np.ndarray


class AdamRule(UpdateRule):
    """torch.optim.Adam and AdamW, with AMSGrad and (coupled or decoupled) weight decay."""

    def __init__(self, optimizer: Adam) -> None:
        super().__init__(optimizer)
        self.beta1, self.beta2 = optimizer.betas
        self.eps = optimizer.eps
        self.amsgrad = optimizer.amsgrad

    def update(self, t: int, w: Array, g: Array, b: dict[str, Array]) -> dict[str, Array]:
        beta1, beta2 = self.beta1, self.beta2
        out = {}
        if self.decoupled and self.weight_decay:
            w = w * (1 - self.lr * self.weight_decay)
            out["w_decayed"] = w
        d = out["g"] = self.gradient(w, g)
        m = beta1 * b["exp_avg"] + (1 - beta1) * d
        v = beta2 * b["exp_avg_sq"] + (1 - beta2) * d * d
        out["exp_avg"], out["exp_avg_sq"] = m, v
        if self.amsgrad:
            v = np.maximum(b["max_exp_avg_sq"], v)
            out["max_exp_avg_sq"] = v
        out["m_hat"] = m / (1 - beta1**t)
        out["v_hat"] = v / (1 - beta2**t)
        out["w"] = w - self.lr * out["m_hat"] / (np.sqrt(out["v_hat"]) + self.eps)
        return out

    @staticmethod
    def betas(style: Style) -> tuple[str, str]:
        return (r"\beta_1", r"\beta_2") if style.latex else ("β1", "β2")

    def rule_summary(self, style: Style) -> list[str]:
        s = style
        arrow = f" {s.arrow} "
        b1, b2 = self.betas(s)
        lines = []
        if self.decoupled and self.weight_decay:
            lines.append(f"w{arrow}w(1{s.minus}{s.gamma}{s.lam})")
        lines.append(f"m{arrow}{b1} m + (1{s.minus}{b1}) g")
        lines.append(f"v{arrow}{b2} v + (1{s.minus}{b2}) {s.sq('g')}")
        v = "v"
        if self.amsgrad:
            vmax = s.sub("v", "max")
            mx = r"\max" if s.latex else "max"
            lines.append(f"{vmax}{arrow}{mx}({vmax}, v)")
            v = vmax
        m_hat, v_hat = s.hat("m"), s.hat("v")
        lines.append(f"{m_hat} = {s.frac('m', f'(1{s.minus}{b1}^t)')}")
        lines.append(f"{v_hat} = {s.frac(v, f'(1{s.minus}{b2}^t)')}")
        denom = f"({s.sqrt(v_hat)} + {s.eps})"
        lines.append(f"w{arrow}w{s.minus}{s.gamma} {s.frac(m_hat, denom)}")
        return lines

    def weight_lines(self, eqs: EqList, t: int, weight: WeightStep) -> None:
        s, n = eqs.style, eqs.style.num
        w_cur = weight.old
        if "w_decayed" in weight.values:
            w_cur = weight.values["w_decayed"]
            eqs.becomes(
                weight.symbol,
                [
                    f"{weight.symbol}(1{s.minus}{s.gamma}{s.lam})",
                    f"{n(weight.old)}{s.times}(1{s.minus}{n(self.lr)}{s.times}"
                    f"{n(self.weight_decay)})",
                ],
                w_cur,
            )
        v_name, v_val = self.moment_lines(eqs, weight)
        self.corrected_lines(eqs, t, weight, w_cur, v_name, v_val)

    def moment_lines(self, eqs: EqList, weight: WeightStep) -> tuple[str, float]:
        """m, v (and v_max) updated; returns the second moment's name and value used."""
        s, n, p = eqs.style, eqs.style.num, eqs.style.p
        values, before = weight.values, weight.before
        b1, b2 = self.betas(s)
        beta1, beta2, g = self.beta1, self.beta2, values["g"]
        eqs.becomes(
            "m",
            [
                f"{b1} m + (1{s.minus}{b1}) g",
                f"{n(beta1)}{s.times}{p(before['exp_avg'])} + {n(1 - beta1)}{s.times}{p(g)}",
            ],
            values["exp_avg"],
        )
        eqs.becomes(
            "v",
            [
                f"{b2} v + (1{s.minus}{b2}) {s.sq('g')}",
                f"{n(beta2)}{s.times}{p(before['exp_avg_sq'])} + "
                f"{n(1 - beta2)}{s.times}{s.sq(p(g))}",
            ],
            values["exp_avg_sq"],
        )
        if "max_exp_avg_sq" not in values:
            return "v", values["exp_avg_sq"]
        v_name, v_val = s.sub("v", "max"), values["max_exp_avg_sq"]
        mx = r"\max" if s.latex else "max"
        eqs.becomes(
            v_name,
            [
                f"{mx}({v_name}, v)",
                f"{mx}({n(before['max_exp_avg_sq'])}, {n(values['exp_avg_sq'])})",
            ],
            v_val,
        )
        return v_name, v_val

    def corrected_lines(
        self, eqs: EqList, t: int, weight: WeightStep, w_cur: float, v_name: str, v_val: float
    ) -> None:
        """m̂, v̂ (the bias-corrected moments) and the new weight."""
        s, n, p = eqs.style, eqs.style.num, eqs.style.p
        values = weight.values
        b1, b2 = self.betas(s)
        eqs.equals(
            s.hat("m"),
            [
                s.frac("m", f"(1{s.minus}{b1}^t)"),
                s.frac(n(values["exp_avg"]), f"(1{s.minus}{n(self.beta1)}^{t})"),
            ],
            values["m_hat"],
        )
        eqs.equals(
            s.hat("v"),
            [
                s.frac(v_name, f"(1{s.minus}{b2}^t)"),
                s.frac(n(v_val), f"(1{s.minus}{n(self.beta2)}^{t})"),
            ],
            values["v_hat"],
        )
        den_sym = f"({s.sqrt(s.hat('v'))} + {s.eps})"
        den_num = f"({s.sqrt(p(values['v_hat']))} + {n(self.eps)})"
        eqs.new_weight(
            weight,
            [
                f"{weight.symbol}{s.minus}{s.gamma} {s.frac(s.hat('m'), den_sym)}",
                f"{n(w_cur)}{s.minus}{n(self.lr)}{s.times}{s.frac(p(values['m_hat']), den_num)}",
            ],
        )
