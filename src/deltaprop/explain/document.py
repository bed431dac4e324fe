"""A trace as a worked example: its sections, equations and tables, for one output format.

The explanation follows the seed's order: forward pass and error, output deltas, hidden deltas
(backwards), weight updates, the new error. Large networks are summarised: each layer shows at
most ``max_units`` units (those with the largest |δ|, unless ``units``/``layer`` choose) and
at most ``top`` weights (those with the largest |Δw|), with a note of what was left out.
:mod:`deltaprop.explain.render` lays the sections out as text, Markdown or LaTeX.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from deltaprop.explain.formulas import Eq, Style, activation_chain, derivative_factor
from deltaprop.explain.rules import is_plain_sgd, optimizer_rule, rule_summary, update_lines
from deltaprop.explain.trace import Trace

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


def select_units(trace: Trace, opts: Options) -> dict[int, list[int]]:
    """Layer index -> units shown (0-based, in index order)."""
    layers = [ly for ly in trace.layers if opts.layer is None or ly.index == opts.layer]
    if opts.units is not None:
        names = _unit_index(trace)
        if isinstance(opts.units, str):  # "h1,o2" as the command line writes it
            opts = replace(opts, units=[u for u in opts.units.split(",") if u.strip()])
        chosen: dict[int, set[int]] = {}
        for raw in opts.units:
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
                    f"Received: units={list(opts.units)!r}"
                )
            if opts.layer is not None and where[0] != opts.layer:
                raise ValueError(f"unit {key!r} is not in layer {opts.layer}")
            chosen.setdefault(where[0], set()).add(where[1])
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


# ------------------------------------------------------------------------ building
class Builder:
    """The sections of one trace's explanation, written in one :class:`Style`."""

    def __init__(self, trace: Trace, style: Style, opts: Options) -> None:
        self.tr, self.s, self.o = trace, style, opts
        self.L = len(trace.layers)
        self.shown = select_units(trace, opts)
        self.cfg = {k: v for k, v in trace.optimizer.items() if k != "step"}
        self.t_step = int(trace.optimizer.get("step", 1))

    # -- helpers
    def z_prev(self, layer: int) -> Array:
        return self.tr.x if layer == 1 else self.tr.layers[layer - 2].z

    def role_name(self, layer: int) -> str:
        return "output" if layer == self.L else "hidden"

    def left_out(self, layer: int) -> str | None:
        ly, n_shown = self.tr.layers[layer - 1], len(self.shown.get(layer, []))
        if n_shown == ly.size:
            return None
        s = self.s
        why = (
            "the ones you chose"
            if self.o.units is not None
            else f"those with the largest {s.math(f'|{s.d}|')}"
        )
        return (
            s.text(f"Layer {layer} ({self.role_name(layer)}): {n_shown} of {ly.size} units shown, ")
            + why
            + s.text(".")
        )

    def opt_text(self) -> str:
        # Zero and off settings are left out: SGD(lr=0.5), not SGD(lr=0.5, momentum=0.0, ...).
        args = ", ".join(
            f"{k}={tuple(v) if isinstance(v, list) else v!r}"
            for k, v in self.cfg.items()
            if k != "name" and (k == "lr" or v not in (0, False))
        )
        return f"{self.cfg.get('name')}({args})"

    # -- sections
    def header(self) -> Section:
        s, tr = self.s, self.tr
        sizes = "-".join(str(n) for n in tr.sizes)
        acts = ", ".join(tr.network["activations"])
        rows = [
            [
                s.text("network"),
                s.text(f"{sizes} units; activations {acts}; loss {tr.network['loss']}: ")
                + s.math(self.loss_formula()),
            ],
            [
                s.text("optimizer"),
                s.text(self.opt_text())
                + (
                    s.text(", the seed's update ") + s.math(rule_summary(s, self.cfg)[0])
                    if is_plain_sgd(self.cfg)
                    else s.text(f", step t = {self.t_step}")
                ),
            ],
            [
                s.text("example"),
                s.math(f"x = {s.vector(tr.x, self.o.max_units)}")
                + s.text(", ")
                + s.math(f"t = {s.vector(tr.t, self.o.max_units)}"),
            ],
            [
                s.text("sign"),
                s.math(f"{s.sub(s.d, 'j')} = {s.neg}{s.partial}E/{s.partial}{s.sub('a', 'j')}")
                + s.text(" (the seed's sign): gradient descent moves ")
                + s.math(s.sub("w", "ji"))
                + s.text(" by ")
                + s.math(f"+{s.eta} {s.sub(s.d, 'j')} {s.sub('z', 'i')}"),
            ],
            *self.names_rows(),
        ]
        return Section("One training step by backpropagation", table=Table(["", ""], rows))

    def names_rows(self) -> list[list[str]]:
        s, tr = self.s, self.tr
        rows = [
            [
                s.text("units"),
                s.math(s.sub("a", "j"))
                + s.text(" net input, ")
                + s.math(s.sub("z", "j"))
                + s.text(" output of unit j; inputs ")
                + s.math(s.unit(0, 0))
                + s.text(", …, outputs ")
                + s.math(s.unit(self.L, 0))
                + s.text(", …"),
            ],
            [
                s.text("weights"),
                s.math(s.weight(self.L, 0, 0))
                + s.text(" from ")
                + s.math(s.unit(self.L - 1, 0))
                + s.text(" to ")
                + s.math(s.unit(self.L, 0))
                + s.text(" (W[j, i] in the code)"),
            ],
            [
                s.text("biases"),
                s.math(s.weight(self.L, 0, None))
                + s.text(" bias of ")
                + s.math(s.unit(self.L, 0))
                + s.text(": a weight from a unit that is always 1, updated like the others"),
            ],
        ]
        for names, layer, what in (
            (tr.input_names, 0, "inputs"),
            (tr.output_names, self.L, "outputs"),
        ):
            if names:
                shown = [
                    s.math(s.unit(layer, j)) + s.text(f" = {name}")
                    for j, name in enumerate(names[: self.o.max_units])
                ]
                more = len(names) - len(shown)
                rows.append(
                    [s.text(what), ", ".join(shown) + (s.text(f", … (+{more})") if more else "")]
                )
        return rows

    def loss_formula(self) -> str:
        s = self.s
        name = self.tr.network["loss"]
        sk = s.sum("k")
        tk, ok = s.sub("t", "k"), s.sub("o", "k")
        if name == "mse":
            return f"E = {s.half} {sk}{s.sq(f'({tk}{s.minus}{ok})')}"
        if name == "cross_entropy":
            return f"E = {s.neg}{sk}{tk} {s.log(ok)}"
        if name == "binary_cross_entropy":
            return (
                f"E = {s.neg}{sk}[{tk} {s.log(ok)} + (1{s.minus}{tk}) {s.log(f'(1{s.minus}{ok})')}]"
            )
        return s.text(self.tr.network.get("loss_formula") or name)

    def forward(self) -> Section:
        s, n = self.s, self.s.num
        sec = Section(
            "Forward pass",
            rule=[
                f"{s.sub('a', 'j')} = {s.sum('i')}{s.sub('w', 'ji')} {s.sub('z', 'i')} + "
                f"{s.sub('b', 'j')}{s.sep}{s.sub('z', 'j')} = h({s.sub('a', 'j')})"
            ],
        )
        for layer, units in self.shown.items():
            ly = self.tr.layers[layer - 1]
            zp = self.z_prev(layer)
            for j in units:
                a_sym = s.a(layer, j)
                if ly.W.shape[1] <= self.o.max_terms:
                    terms = [
                        f"{s.weight(layer, j, i)} {s.unit(layer - 1, i)}"
                        for i in range(ly.W.shape[1])
                    ]
                    sym = " + ".join(terms) + f" + {s.weight(layer, j, None)}"
                    num = s.products(list(zip(ly.W[j], zp))) + s.plus(ly.b[j])
                else:
                    wji = f"w_{{{s.unit(layer, j)}\\,i}}" if s.latex else f"w_{s.unit(layer, j)},i"
                    sym = f"{s.sum('i')}{wji} {s.sub('z', 'i')} + {s.weight(layer, j, None)}"
                    num = n(float(np.dot(ly.W[j].astype(np.float64), zp))) + s.plus(ly.b[j])
                sec.eqs.append(Eq(a_sym, [sym, num], n(ly.a[j]), sign=0.0))
                if ly.activation == "softmax":
                    chain = [s.frac(s.exp(a_sym), f"{s.sum('m')}{s.exp(s.sub('a', 'm'))}")]
                    if ly.a.max() < 700:  # e^a is finite: the numbers can be shown as they are
                        e = np.exp(ly.a.astype(np.float64))
                        chain.append(s.frac(n(e[j]), n(e.sum())))
                else:
                    chain = activation_chain(s, ly.activation, a_sym, ly.a[j])
                sec.eqs.append(Eq(s.unit(layer, j), chain, n(ly.z[j])))
            note = self.left_out(layer)
            if note:
                sec.notes.append(note)
        sec.eqs.append(self.error_eq())
        return sec

    def error_eq(self) -> Eq:
        s, n, tr = self.s, self.s.num, self.tr
        o, t, name = tr.output, tr.t, tr.network["loss"]
        chain = [self.loss_formula()[len("E = ") :]]
        if len(o) <= self.o.max_terms:
            if name == "mse":
                chain.append(
                    " + ".join(
                        f"{s.half} {s.sq(f'({n(tk)}{s.minus}{s.p(ok)})')}" for tk, ok in zip(t, o)
                    )
                )
            elif name == "cross_entropy":
                terms = [(tk, ok) for tk, ok in zip(t, o) if tk != 0]
                chain.append(
                    s.neg
                    + "("
                    + " + ".join(
                        (s.log(n(ok)) if tk == 1 else f"{n(tk)}{s.times}{s.log(n(ok))}")
                        for tk, ok in terms
                    )
                    + ")"
                )
            elif name == "binary_cross_entropy":
                chain.append(
                    s.neg
                    + "("
                    + " + ".join(
                        f"{n(tk)}{s.times}{s.log(n(ok))} + {n(1 - tk)}{s.times}{s.log(n(1 - ok))}"
                        for tk, ok in zip(t, o)
                    )
                    + ")"
                )
        return Eq("E", chain, n(tr.error_before))

    def output_deltas(self) -> Section | None:
        s, n, p = self.s, self.s.num, self.s.p
        tr, L = self.tr, self.L
        if L not in self.shown:
            return None
        ly = tr.layers[-1]
        rule = ly.delta_rule
        dk, ok, tk = s.sub(s.d, "k"), s.sub("o", "k"), s.sub("t", "k")
        general = f"{dk} = {s.neg}{s.partial}E/{s.partial}{ok}{s.cdot}h'({s.sub('a', 'k')})"
        sec = Section("Output deltas", rule=[general])
        if rule == "sigmoid_mse":
            sec.rule = [f"{dk} = {ok}(1{s.minus}{ok})({tk}{s.minus}{ok})"]
            sec.notes.append(
                s.text("The seed's formula: squared error through a sigmoid, whose derivative ")
                + s.math(f"h'(a) = o(1{s.minus}o)")
                + s.text(" is written through the output.")
            )
        elif rule == "mse":
            sec.rule.append(f"{s.neg}{s.partial}E/{s.partial}{ok} = {tk}{s.minus}{ok}")
        elif rule == "softmax_mse":
            sec.rule.append(
                f"{dk} = {ok}(({tk}{s.minus}{ok}){s.minus}S),   S = "
                f"{s.sum('m')}{s.sub('o', 'm')}({s.sub('t', 'm')}{s.minus}"
                f"{s.sub('o', 'm')})"
            )
            sec.notes.append(
                s.text("Softmax is not element-wise: its Jacobian mixes the outputs through S.")
            )
            S = float(np.sum(ly.z.astype(np.float64) * (tr.t - ly.z)))
            chain = [f"{s.sum('m')}{s.sub('o', 'm')}({s.sub('t', 'm')}{s.minus}{s.sub('o', 'm')})"]
            if ly.size <= self.o.max_terms:
                chain.append(
                    " + ".join(
                        f"{n(o)}{s.times}({n(t)}{s.minus}{p(o)})" for o, t in zip(ly.z, tr.t)
                    )
                )
            sec.eqs.append(Eq("S", chain, n(S)))
        elif rule in ("softmax_cross_entropy", "sigmoid_binary_cross_entropy"):
            sec.rule.append(f"{dk} = {tk}{s.minus}{ok}")
            what = (
                s.text("The softmax's Jacobian")
                if rule.startswith("softmax")
                else s.text("The sigmoid's derivative ")
                + s.math(f"{s.fn('sigmoid')}'(a) = o(1{s.minus}o)")
            )
            sec.notes.append(
                what
                + s.text(" cancels the denominators of ")
                + s.math(f"{s.partial}E/{s.partial}o")
                + s.text(", leaving ")
                + s.math(f"t{s.minus}o")
                + s.text(".")
            )
        for k in self.shown[L]:
            o, t, d = float(ly.z[k]), float(tr.t[k]), float(ly.delta[k])
            osym, tsym = s.unit(L, k), s.target(k)
            diff_sym, diff_num = f"({tsym}{s.minus}{osym})", f"({n(t)}{s.minus}{p(o)})"
            if rule == "sigmoid_mse":
                chain = [
                    f"{osym}(1{s.minus}{osym}){diff_sym}",
                    f"{n(o)}{s.times}(1{s.minus}{n(o)}){s.times}{diff_num}",
                ]
            elif rule == "mse":
                fs, fn = derivative_factor(s, ly.activation, osym, o, s.a(L, k))
                fn = fn or n(ly.h_prime[k])  # an activation without a written-out derivative
                chain = (
                    [f"{fs}{diff_sym}", f"{fn}{s.times}{diff_num}"]
                    if fs
                    else [diff_sym[1:-1], diff_num[1:-1]]
                )
            elif rule == "softmax_mse":
                chain = [
                    f"{osym}({diff_sym}{s.minus}S)",
                    f"{n(o)}{s.times}({diff_num}{s.minus}{p(S)})",
                ]
            elif rule in ("softmax_cross_entropy", "sigmoid_binary_cross_entropy"):
                chain = [diff_sym[1:-1], diff_num[1:-1]]
            else:
                chain = [f"{s.neg}{s.partial}E/{s.partial}{osym}{s.cdot}h'({s.a(L, k)})"]
                if ly.h_prime is not None and ly.h_prime[k] != 0:
                    chain.append(s.products([(d / float(ly.h_prime[k]), ly.h_prime[k])]))
            sec.eqs.append(Eq(s.delta(L, k), chain, n(d), sign=d))
        note = self.left_out(L)
        if note:
            sec.notes.append(note)
        return sec

    def hidden_deltas(self) -> list[Section]:
        s, n, p = self.s, self.s.num, self.s.p
        tr, out = self.tr, []
        dj, dk = s.sub(s.d, "j"), s.sub(s.d, "k")
        for layer in range(self.L - 1, 0, -1):
            if layer not in self.shown:
                continue
            ly, nxt = tr.layers[layer - 1], tr.layers[layer]
            sec = Section(
                f"Hidden deltas, layer {layer}" if self.L > 2 else "Hidden deltas",
                rule=[f"{dj} = h'({s.sub('a', 'j')}) {s.sum('k')}{dk} {s.sub('w', 'kj')}"],
                notes=[
                    s.text(
                        f"k runs over the {nxt.size} unit{'s' if nxt.size > 1 else ''} "
                        f"of layer {layer + 1} "
                        f"({self.role_name(layer + 1)}); the weights are those before the "
                        "update."
                    )
                ],
            )
            for j in self.shown[layer]:
                u = s.unit(layer, j)
                fs, fn = derivative_factor(s, ly.activation, u, float(ly.z[j]), s.a(layer, j))
                hp, bp, d = float(ly.h_prime[j]), float(ly.backprop[j]), float(ly.delta[j])
                fn = fn or (n(hp) if fs else "")
                if nxt.size <= self.o.max_terms:
                    sym_sum = " + ".join(
                        f"{s.delta(layer + 1, k)} {s.weight(layer + 1, k, j)}"
                        for k in range(nxt.size)
                    )
                    num_sum = s.products([(nxt.delta[k], nxt.W[k, j]) for k in range(nxt.size)])
                else:
                    wk = f"w_{{k\\,{u}}}" if s.latex else f"w_k,{u}"
                    sym_sum, num_sum = f"{s.sum('k')}{dk} {wk}", n(bp)
                if fs:
                    chain = [
                        f"{fs}({sym_sum})",
                        f"{fn}{s.times}({num_sum})" if fn else None,
                        f"{n(hp)}{s.times}{p(bp)}",
                    ]
                else:
                    chain = [sym_sum, num_sum]
                sec.eqs.append(Eq(s.delta(layer, j), [c for c in chain if c], n(d), sign=d))
            note = self.left_out(layer)
            if note:
                sec.notes.append(note)
            out.append(sec)
        return out

    def updates(self) -> list[Section]:
        s, n, p = self.s, self.s.num, self.s.p
        tr, out = self.tr, []
        plain = is_plain_sgd(self.cfg)
        for layer in range(self.L, 0, -1):
            if layer not in self.shown:
                continue
            ly = tr.layers[layer - 1]
            zp = self.z_prev(layer)
            title = f"Weight updates, layer {layer} ({self.role_name(layer)})"
            sec = Section(title, rule=rule_summary(s, self.cfg) if layer == self.L else [])
            try:
                rule_w = optimizer_rule(
                    self.cfg,
                    self.t_step,
                    ly.W,
                    ly.W_grad,
                    {k: v["before"] for k, v in ly.optimizer_state["W"].items()},
                )
                rule_b = optimizer_rule(
                    self.cfg,
                    self.t_step,
                    ly.b,
                    ly.b_grad,
                    {k: v["before"] for k, v in ly.optimizer_state["b"].items()},
                )
            except KeyError:
                rule_w = rule_b = None
            cands = [(j, i) for j in self.shown[layer] for i in [*range(ly.W.shape[1]), None]]
            change = {
                c: float(ly.W_change[c] if c[1] is not None else ly.b_change[c[0]]) for c in cands
            }
            if len(cands) > self.o.top:
                cands = sorted(cands, key=lambda c: -abs(change[c]))[: self.o.top]
            for rank, (j, i) in enumerate(cands):
                w_sym = s.weight(layer, j, i)
                if i is None:
                    w_old, w_new, grad = float(ly.b[j]), float(ly.b_new[j]), float(ly.b_grad[j])
                    zi, zi_sym, rule, state, idx = 1.0, "1", rule_b, ly.optimizer_state["b"], (j,)
                    dz_sym = f"{s.delta(layer, j)}{s.cdot}1"
                else:
                    w_old, w_new, grad = (
                        float(ly.W[j, i]),
                        float(ly.W_new[j, i]),
                        float(ly.W_grad[j, i]),
                    )
                    zi, zi_sym, rule, state, idx = (
                        float(zp[i]),
                        s.unit(layer - 1, i),
                        rule_w,
                        ly.optimizer_state["W"],
                        (j, i),
                    )
                    dz_sym = f"{s.delta(layer, j)} {zi_sym}"
                dz_num = f"{p(ly.delta[j])}{s.times}{p(zi)}"
                if rule is None:
                    big = r"\Delta " if s.latex else "Δ"
                    sec.eqs.append(
                        Eq(
                            w_sym,
                            [s.text(f"{self.cfg.get('name')}.step")],
                            n(w_new),
                            op=s.arrow,
                            sign=w_new - w_old,
                            label=w_sym,
                            note=f"{big}w = {s.signed(w_new - w_old)}",
                        )
                    )
                    continue
                if not plain and rank >= self.o.detail:
                    # Past the first few, one line per weight: a stateful rule takes 5-8.
                    # Only the first one-liner opens a group, so they print as one block.
                    sec.eqs.append(
                        Eq(
                            w_sym,
                            [f"{n(w_old)}{s.plus(w_new - w_old)}"],
                            n(w_new),
                            op=s.arrow,
                            sign=w_new - w_old,
                            label=w_sym if rank == self.o.detail else "",
                            note=f"g = {n(grad)}",
                        )
                    )
                    continue
                values = {k: float(v[idx]) if np.ndim(v) else float(v) for k, v in rule.items()}
                before = {k: float(v["before"][idx]) for k, v in state.items()}
                sec.eqs.extend(
                    update_lines(
                        s,
                        self.cfg,
                        self.t_step,
                        w_sym,
                        dz_sym,
                        dz_num,
                        grad,
                        values,
                        before,
                        w_old,
                        w_new,
                    )
                )
            n_params = ly.W.size + ly.b.size
            n_cands = len(self.shown[layer]) * (ly.W.shape[1] + 1)
            if len(cands) < n_cands:
                every = np.abs(np.concatenate([ly.W_change.ravel(), ly.b_change]))
                sec.notes.append(
                    s.text(
                        f"{len(cands)} of {n_cands} weights and biases into the units shown, "
                        "those with the largest "
                    )
                    + s.math("|Δw|" if not s.latex else r"|\Delta w|")
                    + s.text(f". Whole layer ({n_params}): largest ")
                    + s.math(n(every.max()))
                    + s.text(", mean ")
                    + s.math(n(every.mean()))
                    + s.text(".")
                )
            if rule_w is not None:
                gap = max(
                    float(np.max(np.abs(rule_w["w"] - ly.W_new), initial=0)),
                    float(np.max(np.abs(rule_b["w"] - ly.b_new), initial=0)),
                )
                name = self.cfg["name"]
                if plain:
                    big = r"\Delta " if s.latex else "Δ"
                    claim = (
                        s.math(f"{big}w")
                        + s.text(f" = new − old from {name}.step agrees with ")
                        + s.math(f"{s.eta} {s.sub(s.d, 'j')} {s.sub('z', 'i')}")
                    )
                else:
                    claim = s.text(
                        f"The rule, recomputed from these numbers, gives {name}.step's values"
                    )
                claim += s.text(f" for all {n_params} parameters of this layer")
                sec.notes.append(
                    claim + s.text(", exactly.")
                    if gap == 0
                    else claim + s.text(" to within ") + s.math(f"{gap:.1e}") + s.text(".")
                )
            out.append(sec)
        return out

    def result(self) -> Section:
        s, n, tr = self.s, self.s.num, self.tr
        before, after = tr.error_before, tr.error_after
        change = after - before
        verb = "fell" if change < 0 else "rose" if change > 0 else "did not change"
        pct = f" ({abs(change) / before * 100:.3g} %)" if before else ""
        sec = Section("After the step")
        to = r" \to " if s.latex else " → "
        lim = self.o.max_units
        sec.eqs.append(Eq("E", [], f"{n(before)}{to}{n(after)}", sign=-change))
        sec.eqs.append(
            Eq("o", [], f"{s.vector(tr.output, lim)}{to}{s.vector(tr.output_after, lim)}")
        )
        sec.notes.append(
            s.text(
                f"The error {verb}"
                + (f" by {n(abs(change))}{pct}" if change else "")
                + ": E and o after are the same example forwarded through the new weights "
                "(target "
            )
            + s.math(f"t = {s.vector(tr.t, lim)}")
            + s.text(").")
        )
        if tr.applied:
            sec.notes.append(s.text("The network now has the new weights (apply=True)."))
        return sec

    def steps(self) -> Section | None:
        s, n, tr = self.s, self.s.num, self.tr
        N = tr.steps
        if N <= 1:
            return None
        if N <= 12:
            chosen = list(range(N + 1))
        else:
            chosen = sorted({0, 1, 2, 3, N, *np.unique(np.geomspace(1, N, 10).astype(int))})
        rows = [
            [
                str(h["step"]),
                n(h["error"]),
                s.math(s.vector(np.asarray(h["output"]), self.o.max_units)),
            ]
            for h in (tr.history[k] for k in chosen)
        ]
        sec = Section(
            f"The error over {N} steps on this example", table=Table(["step", "E", "o"], rows)
        )
        first, last = tr.errors[0], tr.errors[-1]
        sec.notes.append(
            s.text(
                f"E went from {n(first)} to {n(last)} in {N} steps "
                f"({self.opt_text()} on one example, repeated)."
            )
        )
        if s.kind == "text":
            sec.notes.append("E by step (log scale): " + sparkline(tr.errors))
        return sec

    def build(self) -> list[Section]:
        sections = [self.header(), self.forward()]
        out = self.output_deltas()
        if out:
            sections.append(out)
        sections += self.hidden_deltas()
        sections += self.updates()
        sections.append(self.result())
        st = self.steps()
        if st:
            sections.append(st)
        return sections


def sparkline(values: Sequence[float], width: int = 48) -> str:
    """▁▂▃▅▇ bars between the smallest and largest value (log scale when all are positive),
    sampled to ``width`` bars."""
    vals = np.asarray(values, dtype=np.float64)
    if np.all(vals > 0):
        # Errors fall by orders of magnitude; on a linear scale all but the first bar are flat.
        vals = np.log10(vals)
    if len(vals) > width:
        vals = vals[np.linspace(0, len(vals) - 1, width).round().astype(int)]
    lo, hi = vals.min(), vals.max()
    bars = "▁▂▃▄▅▆▇█"
    if hi == lo:
        return bars[0] * len(vals)
    return "".join(bars[int(round((v - lo) / (hi - lo) * (len(bars) - 1)))] for v in vals)
