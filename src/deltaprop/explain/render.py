"""A trace laid out for the terminal (text, optionally coloured), as Markdown or as LaTeX.

JSON is the trace's own :meth:`~deltaprop.explain.Trace.to_json`.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from deltaprop.core.notation import Style
from deltaprop.explain.document import Builder
from deltaprop.explain.formulas import Eq
from deltaprop.explain.page import Options, Section, Table

if TYPE_CHECKING:
    # Only a type here: the trace's render() calls this module.
    from deltaprop.explain.record import Trace

FORMATS = ("text", "markdown", "latex", "json")

# ------------------------------------------------------------------------ layout
_ANSI = {"bold": "1", "dim": "2", "red": "31", "green": "32", "cyan": "36", "under": "4"}
_ANSI_RE = re.compile(r"\x1b\[[0-9;]*m")


def _paint(text: str, *codes: str, on: bool) -> str:
    if not on or not text:
        return text
    return f"\x1b[{';'.join(_ANSI[c] for c in codes)}m{text}\x1b[0m"


def _eq_lines(eq: Eq, lhs_width: int, color: bool, width: int) -> list[str]:
    """One equation, continued on lines starting "= ..." when longer than ``width``."""
    colour = "green" if eq.sign > 0 else "red" if eq.sign < 0 else None
    result = _paint(eq.result, "bold", *([colour] if colour and not eq.note else []), on=color)
    note = f"   {_paint(eq.note, *([colour] if colour else []), on=color)}" if eq.note else ""
    # Lay out plain text first: colour codes have no width.
    pieces = [c for c in eq.chain if c] + [eq.result]
    painted = [c for c in eq.chain if c] + [result]
    indent = " " * lhs_width
    lines = [[eq.lhs.rjust(lhs_width), f" {eq.op} ", pieces[0]]]
    shown = [[_paint(eq.lhs.rjust(lhs_width), "cyan", on=color), f" {eq.op} ", painted[0]]]
    for plain, paint in zip(pieces[1:], painted[1:]):
        if width and len("".join(lines[-1])) + 3 + len(plain) > width:
            lines.append([indent, " = ", plain])
            shown.append([indent, " = ", paint])
        else:
            lines[-1] += [" = ", plain]
            shown[-1] += [" = ", paint]
    out = ["".join(parts) for parts in shown]
    out[-1] += note
    return out


def _text_table(table: Table, indent: str, wrap: int) -> list[str]:
    rows = ([table.headers] if any(table.headers) else []) + table.rows
    widths = [max(len(r[c]) for r in rows) for c in range(len(table.headers))]
    lines = []
    # The last column wraps within the width, under itself.
    start = len(indent) + sum(w + 2 for w in widths[:-1])
    room = max(20, wrap - start) if wrap else 0
    for r, row in enumerate(rows):
        cells = [cell.ljust(widths[c]) for c, cell in enumerate(row[:-1])]
        last = textwrap.wrap(row[-1], room) if room and len(row[-1]) > room else [row[-1]]
        lines.append((indent + "  ".join([*cells, last[0]])).rstrip())
        lines += [" " * start + more for more in last[1:]]
        if r == 0 and any(table.headers):
            lines.append(indent + "  ".join("─" * w for w in widths))
    return lines


def _eq_groups(eqs: list[Eq]) -> list[list[Eq]]:
    """Split at labels when several lines make up one weight's update."""
    multi = any(not e.label for e in eqs) and any(e.label for e in eqs)
    if not multi:
        return [eqs]
    groups: list[list[Eq]] = []
    for e in eqs:
        if e.label or not groups:
            groups.append([])
        groups[-1].append(e)
    return groups


def to_text(sections: list[Section], color: bool, wrap: int) -> str:
    out: list[str] = []
    for number, sec in enumerate(sections):
        if number == 0:
            out.append(_paint(sec.title, "bold", on=color))
        else:
            out += ["", _paint(f"{number}. {sec.title}", "bold", on=color)]
        for rule in sec.rule:
            out.append("   " + _paint(rule, "dim", on=color))
        if sec.eqs:
            width = max(len(e.lhs) for e in sec.eqs)
            for g, group in enumerate(_eq_groups(sec.eqs)):
                if g:
                    out.append("")
                out += ["   " + line for e in group for line in _eq_lines(e, width, color, wrap)]
        if sec.table:
            out += _text_table(sec.table, "   " if number else "  ", wrap + 3 if wrap else 0)
        for note in sec.notes:
            # Notes are prose (no colour codes): wrap them like the equations.
            out += (
                textwrap.wrap(
                    note,
                    wrap + 3,
                    initial_indent="   ",
                    subsequent_indent="   ",
                    break_on_hyphens=False,
                )
                if wrap
                else ["   " + note]
            )
    return "\n".join(out) + "\n"


def to_markdown(sections: list[Section], wrap: int) -> str:
    out: list[str] = []
    for number, sec in enumerate(sections):
        out.append(f"## {sec.title}" if number == 0 else f"### {number}. {sec.title}")
        out.append("")
        if sec.rule:
            out += [f"`{r}`  " for r in sec.rule] + [""]
        if sec.eqs:
            width = max(len(e.lhs) for e in sec.eqs)
            out.append("```text")
            for g, group in enumerate(_eq_groups(sec.eqs)):
                if g:
                    out.append("")
                out += [line for e in group for line in _eq_lines(e, width, False, wrap)]
            out += ["```", ""]
        if sec.table:
            headers = (
                sec.table.headers if any(sec.table.headers) else [" "] * len(sec.table.headers)
            )
            out.append("| " + " | ".join(headers) + " |")
            out.append("|" + "|".join("---" for _ in headers) + "|")
            out += ["| " + " | ".join(row) + " |" for row in sec.table.rows]
            out.append("")
        for note in sec.notes:
            out += [note, ""]
    return "\n".join(out).rstrip() + "\n"


def to_latex(sections: list[Section], standalone: bool) -> str:
    out: list[str] = []
    if standalone:
        out += [
            r"\documentclass{article}",
            r"\usepackage[utf8]{inputenc}",
            r"\usepackage{amsmath}",
            r"\usepackage[margin=2cm]{geometry}",
            r"\begin{document}",
        ]
    for number, sec in enumerate(sections):
        out.append(
            rf"\section*{{{sec.title}}}"
            if number == 0
            else rf"\subsection*{{{number}. {sec.title}}}"
        )
        if sec.rule:
            out.append(r"\begin{gather*}")
            out.append(" \\\\\n".join(sec.rule))
            out.append(r"\end{gather*}")
        if sec.eqs:
            out.append(r"\begin{align*}")
            lines = []
            for e in sec.eqs:
                chain = [c for c in e.chain if c] + [e.result]
                note = rf" \quad {e.note}" if e.note else ""
                op = "=" if e.op == "=" else e.op
                one = f"{e.lhs} &{op} " + " = ".join(chain) + note
                if len(one) <= 110 or len(chain) == 1:
                    lines.append(one)
                else:
                    rows = [f"{e.lhs} &{op} {chain[0]}"] + [f"&= {c}" for c in chain[1:]]
                    rows[-1] += note
                    lines.append(" \\\\\n".join(rows))
            out.append(" \\\\\n".join(lines))
            out.append(r"\end{align*}")
        if sec.table:
            cols = len(sec.table.headers)
            out.append(r"\begin{tabular}{" + "l" * cols + "}")
            if any(sec.table.headers):
                out.append(" & ".join(sec.table.headers) + r" \\ \hline")
            out += [" & ".join(row) + r" \\" for row in sec.table.rows]
            out.append(r"\end{tabular}")
        for note in sec.notes:
            out += [note, ""]
    if standalone:
        out.append(r"\end{document}")
    return "\n".join(out) + "\n"


def render(trace: Trace, format: str = "text", **options: Any) -> str:
    """The trace as ``format``: "text" (terminal), "markdown", "latex" or "json".

    ``options`` are :class:`Options` fields (ignored for JSON, which is always complete).
    """
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}. Received: format={format!r}")
    if format == "json":
        return trace.to_json() + "\n"
    unknown = set(options) - set(Options.__dataclass_fields__)
    if unknown:
        raise ValueError(
            f"unknown render options {sorted(unknown)}; known: "
            f"{sorted(Options.__dataclass_fields__)}"
        )
    opts = replace(Options(), **options)
    opts.check(trace)
    style = Style(format, digits=opts.digits, n_layers=len(trace.layers))
    sections = Builder(trace, style, opts).build()
    if format == "text":
        return to_text(sections, opts.color, opts.width - 3 if opts.width else 0)
    if format == "markdown":
        return to_markdown(sections, opts.width)
    return to_latex(sections, opts.standalone)


def strip_ansi(text: str) -> str:
    return _ANSI_RE.sub("", text)
