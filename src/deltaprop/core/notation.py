"""The seed's notation written out: unit and weight names (x1, h1, o1, w_o1,h1, δ_h1), numbers
and operators, for the terminal, Markdown or LaTeX.

One home for how a quantity is named and a number is shown, so that the explanations' formulas
and the diagrams' labels say the same thing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

Array = np.ndarray

FORMATS = ("text", "markdown", "latex")

_SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")
_LATEX_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    # Prose may carry the symbols of the text output; LaTeX needs them as math.
    "δ": r"$\delta$",
    "Δ": r"$\Delta$",
    "η": r"$\eta$",
    "σ": r"$\sigma$",
    "Σ": r"$\Sigma$",
    "∂": r"$\partial$",
    "×": r"$\times$",
    "≤": r"$\le$",
    "→": r"$\to$",
    "−": "-",
    "…": r"\ldots{}",
    "|": r"$|$",
    "½": r"$\frac{1}{2}$",
}


@dataclass
class Style:
    """Symbols, numbers and operators for one output format."""

    kind: str = "text"
    digits: int = 4
    n_layers: int = 2  # layers of units (inputs excluded): names hidden units h or h1:, h2:
    latex: bool = field(init=False)

    def __post_init__(self) -> None:
        if self.kind not in FORMATS:
            raise ValueError(f"format must be one of {FORMATS}. Received: {self.kind!r}")
        self.latex = self.kind == "latex"
        L = self.latex
        self.times = r" \times " if L else " × "
        self.minus = " - " if L else " − "
        self.neg = "-" if L else "−"
        self.arrow = r"\leftarrow" if L else "←"
        self.eta = r"\eta" if L else "η"
        self.gamma = r"\gamma" if L else "γ"
        self.mu = r"\mu" if L else "μ"
        self.tau = r"\tau" if L else "τ"
        self.lam = r"\lambda" if L else "λ"
        self.alpha = r"\alpha" if L else "α"
        self.eps = r"\epsilon" if L else "ε"
        self.half = r"\tfrac{1}{2}" if L else "½"
        self.cdot = r" \cdot " if L else " · "
        self.partial = r"\partial " if L else "∂"
        self.le = r" \le " if L else " ≤ "
        self.sep = r",\quad " if L else ",   "

    # ---------------------------------------------------------------- numbers
    def num(self, x: float) -> str:
        """x to ``digits`` significant digits, with a proper minus sign."""
        x = float(x)
        if x == 0:
            return "0"
        if not math.isfinite(x):
            return str(x)
        s = f"{x:.{self.digits}g}"
        if "e" in s:
            mant, exp = s.split("e")
            exp_i = int(exp)
            if self.latex:
                s = f"{mant} \\times 10^{{{exp_i}}}"
            else:
                s = f"{mant}×10{str(exp_i).translate(_SUPERSCRIPT)}"
        return s.replace("-", self.neg, 1) if s.startswith("-") else s

    def p(self, x: float) -> str:
        """A number ready for a product: parenthesised when negative or in powers of ten."""
        s = self.num(x)
        wrap = s.startswith(self.neg) or "×10" in s or "10^{" in s
        return f"({s})" if wrap else s

    def products(self, pairs: list[tuple[float, float]]) -> str:
        """Σ a·b written out: "0.15 × 0.05 + 0.2 × 0.1", a leading factor's sign folded in."""
        out = ""
        for k, (a, b) in enumerate(pairs):
            a = float(a)
            if k == 0:
                out = f"{self.num(a)}{self.times}{self.p(b)}"
            else:
                op = self.minus if a < 0 else " + "
                out += f"{op}{self.num(abs(a))}{self.times}{self.p(b)}"
        return out

    def plus(self, value: float) -> str:
        """ " + v" or " − |v|", to continue a sum."""
        value = float(value)
        return f"{self.minus}{self.num(-value)}" if value < 0 else f" + {self.num(value)}"

    def signed(self, value: float) -> str:
        """A change, with its sign always written: +0.0113, −0.04108."""
        s = self.num(value)
        return s if s.startswith(self.neg) or s == "0" else "+" + s

    def vector(self, values: Array, limit: int) -> str:
        vals = [self.num(v) for v in values[:limit]]
        if len(values) > limit:
            vals.append(r"\ldots" if self.latex else "…")
        inner = ", ".join(vals)
        return rf"\left({inner}\right)" if self.latex else f"({inner})"

    # ---------------------------------------------------------------- symbols
    def sub(self, base: str, index: str) -> str:
        return f"{base}_{{{index}}}" if self.latex else f"{base}_{index}"

    def unit(self, layer: int, j: int) -> str:
        """The symbol of unit j (0-based) of ``layer`` (0 = inputs): x1, h1 or h2:1, o1."""
        n = j + 1
        if layer == 0:
            base = "x"
        elif layer == self.n_layers:
            base = "o"
        else:
            base = "h"
            if self.n_layers > 2:
                return f"h^{{({layer})}}_{{{n}}}" if self.latex else f"h{layer}:{n}"
        return f"{base}_{{{n}}}" if self.latex else f"{base}{n}"

    def a(self, layer: int, j: int) -> str:
        return self.sub("a", self.unit(layer, j))

    def delta(self, layer: int, j: int) -> str:
        return self.sub(r"\delta" if self.latex else "δ", self.unit(layer, j))

    @property
    def d(self) -> str:
        """The letter δ."""
        return r"\delta" if self.latex else "δ"

    def target(self, k: int) -> str:
        return f"t_{{{k + 1}}}" if self.latex else f"t{k + 1}"

    def weight(self, layer: int, j: int, i: int | None) -> str:
        """w_ji into unit j of ``layer`` from unit i of the layer before; i None: the bias."""
        if i is None:
            return self.sub("b", self.unit(layer, j))
        if self.latex:
            return f"w_{{{self.unit(layer, j)}\\,{self.unit(layer - 1, i)}}}"
        return f"w_{self.unit(layer, j)},{self.unit(layer - 1, i)}"

    def sq(self, expr: str) -> str:
        return f"{expr}^2" if self.latex else f"{expr}²"

    def sqrt(self, expr: str) -> str:
        return rf"\sqrt{{{expr}}}" if self.latex else f"√{expr}"

    def exp(self, expr: str) -> str:
        return f"e^{{{expr}}}" if self.latex else f"e^{expr}"

    def log(self, expr: str) -> str:
        return rf"\log {expr}" if self.latex else f"log {expr}"

    def frac(self, top: str, bottom: str) -> str:
        return rf"\frac{{{top}}}{{{bottom}}}" if self.latex else f"{top} / {bottom}"

    def hat(self, sym: str) -> str:
        return rf"\hat{{{sym}}}" if self.latex else f"{sym}̂"

    def sum(self, index: str) -> str:
        return rf"\sum_{{{index}}} " if self.latex else f"Σ_{index} "

    def fn(self, name: str) -> str:
        """An activation's name as a function symbol."""
        if name == "sigmoid":
            return r"\sigma" if self.latex else "σ"
        if self.latex:
            escaped = name.replace("_", "\\_")
            return rf"\operatorname{{{escaped}}}"
        return name

    def text(self, s: str) -> str:
        """Plain prose, escaped for the format."""
        if self.latex:
            return "".join(_LATEX_ESCAPES.get(c, c) for c in s)
        if self.kind == "markdown":
            return s.replace("*", r"\*").replace("|", r"\|")
        return s

    def math(self, s: str) -> str:
        """A formula inside prose."""
        if self.latex:
            return f"${s}$"
        if self.kind == "markdown":
            return f"`{s}`"
        return s


# -------------------------------------------------------------------- activations
