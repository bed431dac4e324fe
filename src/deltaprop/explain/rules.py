"""Every optimizer's update rule, recomputed and written out with the numbers in.

:func:`optimizer_rule` recomputes an update from the state a trace recorded, from the
torch.optim algorithms and independently of :mod:`deltaprop.optim.optimizers`, so an explanation can
check that the formula it prints is the step the library took; :func:`rule_summary` and
:func:`update_lines` write the rule symbolically and for one weight.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from deltaprop.explain.formulas import Eq, Style

Array = np.ndarray


def _hp(cfg: dict[str, Any], key: str, default: float = 0.0) -> float:
    return float(cfg.get(key, default))


def optimizer_rule(
    cfg: dict[str, Any], t: int, w: Array, g: Array, before: dict[str, Array]
) -> dict[str, Array]:
    """The update of ``cfg["name"]`` at step t from the state ``before``, every intermediate.

    Written from the torch.optim algorithms (the optimizers' docstrings), not from
    :mod:`deltaprop.optim.optimizers`, in float64. Returns named arrays: always ``"g"`` (the
    gradient used, with any L2 term) and ``"w"`` (the new weight), plus the new buffers under
    the optimizer's buffer names and intermediates ("m_hat", "v_hat", "lr_t", "w_decayed", ...).
    Raises KeyError for an optimizer it does not know.
    """
    name = cfg["name"]
    w = np.asarray(w, dtype=np.float64)
    g = np.asarray(g, dtype=np.float64)
    b = {k: np.asarray(v, dtype=np.float64) for k, v in before.items()}
    lr, wd = _hp(cfg, "lr"), _hp(cfg, "weight_decay")
    out: dict[str, Array] = {}
    if name == "SGD":
        mu, tau = _hp(cfg, "momentum"), _hp(cfg, "dampening")
        d = g + wd * w if wd else g
        out["g"] = d
        if mu:
            buf = d.copy() if t == 1 else mu * b["momentum_buffer"] + (1 - tau) * d
            out["momentum_buffer"] = buf
            d = d + mu * buf if cfg.get("nesterov") else buf
            out["step"] = d
        out["w"] = w - lr * d
    elif name in ("Adam", "AdamW"):
        beta1, beta2 = (float(v) for v in cfg["betas"])
        eps = _hp(cfg, "eps")
        if name == "AdamW":
            d = g
            if wd:
                w = w * (1 - lr * wd)
                out["w_decayed"] = w
        else:
            d = g + wd * w if wd else g
        out["g"] = d
        m = beta1 * b["exp_avg"] + (1 - beta1) * d
        v = beta2 * b["exp_avg_sq"] + (1 - beta2) * d * d
        out["exp_avg"], out["exp_avg_sq"] = m, v
        if cfg.get("amsgrad"):
            v = np.maximum(b["max_exp_avg_sq"], v)
            out["max_exp_avg_sq"] = v
        out["m_hat"] = m / (1 - beta1**t)
        out["v_hat"] = v / (1 - beta2**t)
        out["w"] = w - lr * out["m_hat"] / (np.sqrt(out["v_hat"]) + eps)
    elif name == "RMSprop":
        alpha, eps, mu = _hp(cfg, "alpha"), _hp(cfg, "eps"), _hp(cfg, "momentum")
        d = g + wd * w if wd else g
        out["g"] = d
        v = alpha * b["square_avg"] + (1 - alpha) * d * d
        out["square_avg"] = v
        if cfg.get("centered"):
            gbar = alpha * b["grad_avg"] + (1 - alpha) * d
            out["grad_avg"] = gbar
            v = v - gbar * gbar
            out["v_centered"] = v
        scaled = d / (np.sqrt(v) + eps)
        if mu > 0:
            buf = mu * b["momentum_buffer"] + scaled
            out["momentum_buffer"] = buf
            out["w"] = w - lr * buf
        else:
            out["w"] = w - lr * scaled
    elif name == "Adagrad":
        eps, decay = _hp(cfg, "eps"), _hp(cfg, "lr_decay")
        out["lr_t"] = np.asarray(lr / (1 + (t - 1) * decay))
        d = g + wd * w if wd else g
        out["g"] = d
        s = b["sum"] + d * d
        out["sum"] = s
        out["w"] = w - out["lr_t"] * d / (np.sqrt(s) + eps)
    else:
        raise KeyError(name)
    return out


def is_plain_sgd(cfg: dict[str, Any]) -> bool:
    """The seed's update: SGD without momentum or weight decay."""
    return cfg.get("name") == "SGD" and not cfg.get("momentum") and not cfg.get("weight_decay")


def rule_summary(style: Style, cfg: dict[str, Any]) -> list[str]:
    """The optimizer's update rule as formulas (no numbers), one line each."""
    s = style
    arrow = f" {s.arrow} "
    g, w = "g", "w"
    name = cfg.get("name")
    wd = _hp(cfg, "weight_decay")
    lines: list[str] = []
    wji, dj, zi = s.sub("w", "ji"), s.sub(s.d, "j"), s.sub("z", "i")
    if is_plain_sgd(cfg):
        return [f"{wji}{arrow}{wji} + {s.eta} {dj} {zi}"]
    lines.append(f"g = {s.partial}E/{s.partial}w = {s.neg}{dj} {zi}")
    if wd and name != "AdamW":
        lines.append(f"{g}{arrow}{g} + {s.lam} {w}")
    if name == "SGD":
        if _hp(cfg, "momentum"):
            lines.append(
                f"u{arrow}{s.mu} u + (1{s.minus}{s.tau}) g   (u: momentum buffer; u = g at step 1)"
                if not s.latex
                else r"u \leftarrow \mu u + (1 - \tau) g \quad (u = g \text{ at step } 1)"
            )
            lines.append(f"g{arrow}g + {s.mu} u" if cfg.get("nesterov") else f"g{arrow}u")
        lines.append(f"{w}{arrow}{w}{s.minus}{s.gamma} g")
    elif name in ("Adam", "AdamW"):
        b1, b2 = (r"\beta_1", r"\beta_2") if s.latex else ("β1", "β2")
        if wd and name == "AdamW":
            lines.append(f"{w}{arrow}{w}(1{s.minus}{s.gamma}{s.lam})")
        lines.append(f"m{arrow}{b1} m + (1{s.minus}{b1}) g")
        lines.append(f"v{arrow}{b2} v + (1{s.minus}{b2}) {s.sq('g')}")
        v = "v"
        if cfg.get("amsgrad"):
            vmax = s.sub("v", "max")
            mx = r"\max" if s.latex else "max"
            lines.append(f"{vmax}{arrow}{mx}({vmax}, v)")
            v = vmax
        m_hat, v_hat = s.hat("m"), s.hat("v")
        lines.append(f"{m_hat} = {s.frac('m', f'(1{s.minus}{b1}^t)')}")
        lines.append(f"{v_hat} = {s.frac(v, f'(1{s.minus}{b2}^t)')}")
        denom = f"({s.sqrt(v_hat)} + {s.eps})"
        lines.append(f"{w}{arrow}{w}{s.minus}{s.gamma} {s.frac(m_hat, denom)}")
    elif name == "RMSprop":
        lines.append(f"v{arrow}{s.alpha} v + (1{s.minus}{s.alpha}) {s.sq('g')}")
        denom = "v"
        if cfg.get("centered"):
            gb = r"\bar{g}" if s.latex else "ḡ"
            lines.append(f"{gb}{arrow}{s.alpha} {gb} + (1{s.minus}{s.alpha}) g")
            denom = r"\tilde{v}" if s.latex else "ṽ"
            lines.append(f"{denom} = v{s.minus}{s.sq(gb)}")
        step = s.frac("g", f"({s.sqrt(denom)} + {s.eps})")
        if _hp(cfg, "momentum") > 0:
            lines.append(
                f"u{arrow}{s.mu} u + {step}   (u: momentum buffer)"
                if not s.latex
                else f"u{arrow}{s.mu} u + {step}"
            )
            lines.append(f"{w}{arrow}{w}{s.minus}{s.gamma} u")
        else:
            lines.append(f"{w}{arrow}{w}{s.minus}{s.gamma} {step}")
    elif name == "Adagrad":
        gt = r"\tilde{\gamma}" if s.latex else "γ̃"
        if _hp(cfg, "lr_decay"):
            lines.append(f"{gt} = {s.frac(s.gamma, f'(1 + (t{s.minus}1) {s.eta})')}")
        else:
            gt = s.gamma
        lines.append(f"s{arrow}s + {s.sq('g')}")
        denom = f"({s.sqrt('s')} + {s.eps})"
        lines.append(f"{w}{arrow}{w}{s.minus}{gt} {s.frac('g', denom)}")
    else:
        lines.append(f"{w}{arrow}{name}.step({w}, g)")
    return lines


def update_lines(
    style: Style,
    cfg: dict[str, Any],
    t: int,
    w_sym: str,
    dz_sym: str,
    dz_num: str,
    grad: float,
    values: dict[str, float],
    before: dict[str, float],
    w_old: float,
    w_new: float,
) -> list[Eq]:
    """The optimizer's rule for one weight with the numbers in, one :class:`Eq` per line.

    ``dz_sym``/``dz_num``: δ_j z_i written out (symbols, numbers); ``grad``: ∂E/∂w;
    ``values``: :func:`optimizer_rule`'s numbers for this weight; ``before``: its buffers
    before the step; ``w_new``: the new value the library's optimizer produced (shown as the
    result of the last line).
    """
    s, n, p = style, style.num, style.p
    arrow = s.arrow
    lr, wd = _hp(cfg, "lr"), _hp(cfg, "weight_decay")
    name = cfg.get("name")
    big_delta = r"\Delta " if s.latex else "Δ"
    change = f"{big_delta}w = {s.signed(w_new - w_old)}"
    eqs: list[Eq] = []

    def eq(lhs: str, chain: list[str], value: float, op: str = "=") -> None:
        eqs.append(Eq(lhs, chain, n(value), op=op, sign=value))

    if is_plain_sgd(cfg):
        # The seed's rule: the update adds η δ_j z_i.
        eqs.append(
            Eq(
                w_sym,
                [f"{w_sym} + {s.eta} {dz_sym}", f"{n(w_old)} + {n(lr)}{s.times}{dz_num}"],
                n(w_new),
                op=arrow,
                sign=w_new - w_old,
                note=change,
                label=w_sym,
            )
        )
        return eqs
    g = values["g"]
    eq("g", [f"{s.partial}E/{s.partial}{w_sym} = {s.neg}{dz_sym}", f"{s.neg}{dz_num}"], grad)
    if wd and name != "AdamW":
        eq("g", [f"g + {s.lam} {w_sym}", f"{n(grad)} + {n(wd)}{s.times}{p(w_old)}"], g, arrow)
    w_cur = w_old
    if name == "SGD":
        mu, tau = _hp(cfg, "momentum"), _hp(cfg, "dampening")
        step = g
        if mu:
            buf = values["momentum_buffer"]
            if t == 1:
                eq("u", ["g"], buf)
            else:
                eq(
                    "u",
                    [
                        f"{s.mu} u + (1{s.minus}{s.tau}) g",
                        f"{n(mu)}{s.times}{p(before['momentum_buffer'])} + "
                        f"(1{s.minus}{n(tau)}){s.times}{p(g)}",
                    ],
                    buf,
                    arrow,
                )
            if cfg.get("nesterov"):
                step = values["step"]
                eq("g", [f"g + {s.mu} u", f"{n(g)} + {n(mu)}{s.times}{p(buf)}"], step, arrow)
            else:
                step = buf
        eqs.append(
            Eq(
                w_sym,
                [
                    f"{w_sym}{s.minus}{s.gamma} {'g' if not mu or cfg.get('nesterov') else 'u'}",
                    f"{n(w_old)}{s.minus}{n(lr)}{s.times}{p(step)}",
                ],
                n(w_new),
                op=arrow,
                sign=w_new - w_old,
                note=change,
            )
        )
    elif name in ("Adam", "AdamW"):
        beta1, beta2 = (float(v) for v in cfg["betas"])
        b1, b2 = (r"\beta_1", r"\beta_2") if s.latex else ("β1", "β2")
        if "w_decayed" in values:
            w_cur = values["w_decayed"]
            eq(
                w_sym,
                [
                    f"{w_sym}(1{s.minus}{s.gamma}{s.lam})",
                    f"{n(w_old)}{s.times}(1{s.minus}{n(lr)}{s.times}{n(wd)})",
                ],
                w_cur,
                arrow,
            )
        eq(
            "m",
            [
                f"{b1} m + (1{s.minus}{b1}) g",
                f"{n(beta1)}{s.times}{p(before['exp_avg'])} + {n(1 - beta1)}{s.times}{p(g)}",
            ],
            values["exp_avg"],
            arrow,
        )
        eq(
            "v",
            [
                f"{b2} v + (1{s.minus}{b2}) {s.sq('g')}",
                f"{n(beta2)}{s.times}{p(before['exp_avg_sq'])} + "
                f"{n(1 - beta2)}{s.times}{s.sq(p(g))}",
            ],
            values["exp_avg_sq"],
            arrow,
        )
        v_name, v_val = "v", values["exp_avg_sq"]
        if "max_exp_avg_sq" in values:
            v_name, v_val = s.sub("v", "max"), values["max_exp_avg_sq"]
            mx = r"\max" if s.latex else "max"
            eq(
                v_name,
                [
                    f"{mx}({v_name}, v)",
                    f"{mx}({n(before['max_exp_avg_sq'])}, {n(values['exp_avg_sq'])})",
                ],
                v_val,
                arrow,
            )
        eq(
            s.hat("m"),
            [
                s.frac("m", f"(1{s.minus}{b1}^t)"),
                s.frac(n(values["exp_avg"]), f"(1{s.minus}{n(beta1)}^{t})"),
            ],
            values["m_hat"],
        )
        eq(
            s.hat("v"),
            [
                s.frac(v_name, f"(1{s.minus}{b2}^t)"),
                s.frac(n(v_val), f"(1{s.minus}{n(beta2)}^{t})"),
            ],
            values["v_hat"],
        )
        den_sym = f"({s.sqrt(s.hat('v'))} + {s.eps})"
        den_num = f"({s.sqrt(p(values['v_hat']))} + {n(_hp(cfg, 'eps'))})"
        eqs.append(
            Eq(
                w_sym,
                [
                    f"{w_sym}{s.minus}{s.gamma} {s.frac(s.hat('m'), den_sym)}",
                    f"{n(w_cur)}{s.minus}{n(lr)}{s.times}{s.frac(p(values['m_hat']), den_num)}",
                ],
                n(w_new),
                op=arrow,
                sign=w_new - w_old,
                note=change,
            )
        )
    elif name == "RMSprop":
        alpha, mu, eps = _hp(cfg, "alpha"), _hp(cfg, "momentum"), _hp(cfg, "eps")
        eq(
            "v",
            [
                f"{s.alpha} v + (1{s.minus}{s.alpha}) {s.sq('g')}",
                f"{n(alpha)}{s.times}{p(before['square_avg'])} + "
                f"{n(1 - alpha)}{s.times}{s.sq(p(g))}",
            ],
            values["square_avg"],
            arrow,
        )
        denom_sym, denom = "v", values["square_avg"]
        if "grad_avg" in values:
            gb = r"\bar{g}" if s.latex else "ḡ"
            tv = r"\tilde{v}" if s.latex else "ṽ"
            eq(
                gb,
                [
                    f"{s.alpha} {gb} + (1{s.minus}{s.alpha}) g",
                    f"{n(alpha)}{s.times}{p(before['grad_avg'])} + {n(1 - alpha)}{s.times}{p(g)}",
                ],
                values["grad_avg"],
                arrow,
            )
            eq(
                tv,
                [
                    f"v{s.minus}{s.sq(gb)}",
                    f"{n(values['square_avg'])}{s.minus}{s.sq(p(values['grad_avg']))}",
                ],
                values["v_centered"],
            )
            denom_sym, denom = tv, values["v_centered"]
        scaled_sym = s.frac("g", f"({s.sqrt(denom_sym)} + {s.eps})")
        scaled_num = s.frac(p(g), f"({s.sqrt(p(denom))} + {n(eps)})")
        if mu > 0:
            eq(
                "u",
                [
                    f"{s.mu} u + {scaled_sym}",
                    f"{n(mu)}{s.times}{p(before['momentum_buffer'])} + {scaled_num}",
                ],
                values["momentum_buffer"],
                arrow,
            )
            chain = [
                f"{w_sym}{s.minus}{s.gamma} u",
                f"{n(w_old)}{s.minus}{n(lr)}{s.times}{p(values['momentum_buffer'])}",
            ]
        else:
            chain = [
                f"{w_sym}{s.minus}{s.gamma} {scaled_sym}",
                f"{n(w_old)}{s.minus}{n(lr)}{s.times}{scaled_num}",
            ]
        eqs.append(Eq(w_sym, chain, n(w_new), op=arrow, sign=w_new - w_old, note=change))
    elif name == "Adagrad":
        eps, decay = _hp(cfg, "eps"), _hp(cfg, "lr_decay")
        gt = s.gamma
        if decay:
            gt = r"\tilde{\gamma}" if s.latex else "γ̃"
            eq(
                gt,
                [
                    s.frac(s.gamma, f"(1 + (t{s.minus}1) {s.eta})"),
                    s.frac(n(lr), f"(1 + {t - 1}{s.times}{n(decay)})"),
                ],
                values["lr_t"],
            )
        eq("s", [f"s + {s.sq('g')}", f"{n(before['sum'])} + {s.sq(p(g))}"], values["sum"], arrow)
        den_sym = f"({s.sqrt('s')} + {s.eps})"
        den_num = f"({s.sqrt(p(values['sum']))} + {n(eps)})"
        eqs.append(
            Eq(
                w_sym,
                [
                    f"{w_sym}{s.minus}{gt} {s.frac('g', den_sym)}",
                    f"{n(w_old)}{s.minus}{n(float(values['lr_t']))}{s.times}"
                    f"{s.frac(p(g), den_num)}",
                ],
                n(w_new),
                op=arrow,
                sign=w_new - w_old,
                note=change,
            )
        )
    else:  # pragma: no cover - optimizer_rule raised first
        raise KeyError(name)
    eqs[0].label = w_sym
    return eqs
