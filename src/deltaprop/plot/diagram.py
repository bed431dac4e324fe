"""The network drawn: units coloured by their value or δ, edges by the sign and size of w or Δw.

>>> import deltaprop as dp
>>> from deltaprop.explain import classic_example
>>> net, x, t, lr = classic_example()
>>> from deltaprop.plot import network
>>> fig = network(net, dp.explain(net, x, t, dp.SGD(lr=lr)), show="delta")

Big layers are summarised: at most ``max_units`` units per layer are drawn (the first and the
last ones) with a "+N more" marker between them, so a 784-input network draws in a moment.
"""

from __future__ import annotations

import base64
import html
import io
import os
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Colormap, Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Circle, FancyBboxPatch

from deltaprop.core.network import FeedForward
from deltaprop.core.notation import Style
from deltaprop.plot.display import NotebookFigure
from deltaprop.plot.layout import RADIUS, SMALL_EDGES, Layout, Shown, layout_for, shown_numbers

if TYPE_CHECKING:
    from deltaprop.explain import Trace

Array = np.ndarray

SHOW = ("value", "delta")
# Negative red, positive blue, as in TensorFlow Playground's diagrams (orange/blue).
CMAP = "RdBu"
POSITIVE, NEGATIVE = colormaps[CMAP](0.9), colormaps[CMAP](0.1)
BIAS_HALF = 0.22  # half the side of a bias unit's square


def _save(fig: Figure, path: str | os.PathLike | None, dpi: float) -> None:
    if path is None:
        return
    suffix = os.path.splitext(os.fspath(path))[1].lower()
    if suffix not in (".png", ".svg", ".pdf"):
        raise ValueError(
            f"diagrams are saved as .png, .svg or .pdf (by the suffix). Received: path={path!r}"
        )
    fig.savefig(path, dpi=dpi, bbox_inches="tight")


def network(
    net: FeedForward,
    trace: Trace | None = None,
    *,
    path: str | os.PathLike | None = None,
    show: str = "value",
    labels: bool | str = "auto",
    x: object = None,
    max_units: int = 12,
    bias: bool | str = "auto",
    dpi: float = 110,
) -> Figure:
    """Draw ``net``; with a :class:`~deltaprop.explain.Trace`, draw that step's numbers.

    show: "value" colours units by their output z (needs ``trace`` or an input ``x``; without
        either, units are plain) and sizes edges by |w|; "delta" (needs ``trace``) colours
        units by δ and sizes edges by |Δw| of the step. Edge colour is the sign: blue
        positive, red negative.
    labels: "auto" writes the numbers on units and edges when the drawing is small (at most
        12 edges); True or False forces it.
    x: an input to forward when there is no trace (show="value").
    max_units: units drawn per layer; larger layers draw the first and last ones and
        "+N more" between.
    bias: draw each layer's bias as a unit fixed at 1 ("auto": when labels are drawn).
    path: save as PNG, SVG or PDF by the suffix.

    The weights drawn are the trace's (before its step) when there is a trace, else the
    network's. Returns the matplotlib Figure.
    """
    _check_arguments(net, trace, show, labels, bias, max_units, x)
    shown = shown_numbers(net, trace, x, show)
    layout = layout_for(net.sizes, max_units, labels, bias)
    scale = _unit_scale(shown, layout, show)
    style = Style("text", digits=3, n_layers=len(net.layers))
    fig, ax = _canvas(layout)
    _draw_edges(ax, layout, shown, style)
    _draw_units(ax, net, layout, shown, scale, style)
    ax.set_title(_title(net, trace, show, style), fontsize=10)
    if any(v is not None for v in shown.units):
        _colour_bar(fig, layout, scale)
    _edge_legend(ax, show, layout.with_bias)
    _save(fig, path, dpi)
    return fig


def _check_arguments(
    net: object,
    trace: Trace | None,
    show: str,
    labels: object,
    bias: object,
    max_units: object,
    x: object,
) -> None:
    if not isinstance(net, FeedForward):
        raise ValueError(f"network() draws a deltaprop Network. Received: {type(net).__name__}")
    if show not in SHOW:
        raise ValueError(f"show must be one of {SHOW}. Received: show={show!r}")
    if labels not in (True, False, "auto"):
        raise ValueError(f"labels must be True, False or 'auto'. Received: labels={labels!r}")
    if bias not in (True, False, "auto"):
        raise ValueError(f"bias must be True, False or 'auto'. Received: bias={bias!r}")
    if isinstance(max_units, bool) or not isinstance(max_units, int) or max_units < 2:
        raise ValueError(f"max_units must be an integer >= 2. Received: max_units={max_units!r}")
    if trace is not None and list(trace.sizes) != net.sizes:
        raise ValueError(f"the trace is of a {trace.sizes} network but net has sizes {net.sizes}")
    if show == "delta" and trace is None:
        raise ValueError(
            "show='delta' colours units by the δ of a step: pass trace=dp.explain(...)"
        )
    if trace is not None and x is not None:
        raise ValueError("give trace or x, not both: the trace already holds its input")


class _UnitScale(NamedTuple):
    """Unit colours: one symmetric scale for the whole drawing."""

    norm: Normalize
    vmax: float
    cmap: Colormap
    label: str


def _unit_scale(shown: Shown, layout: Layout, show: str) -> _UnitScale:
    drawn_values = [
        np.asarray(v, dtype=np.float64)[layout.drawn[li][0]]
        for li, v in enumerate(shown.units)
        if v is not None
    ]
    vmax = max((float(np.max(np.abs(v))) for v in drawn_values if v.size), default=0.0) or 1.0
    label = "δ (unit's delta)" if show == "delta" else "z (unit's output)"
    return _UnitScale(Normalize(-vmax, vmax), vmax, colormaps[CMAP], label)


def _canvas(layout: Layout) -> tuple[Figure, Axes]:
    width, height = layout.width, layout.height
    fig = NotebookFigure(figsize=(width + 1.3, height + 0.7))
    # Axes placed by hand: the drawing fills the figure, the colour bar sits to its right.
    ax = fig.add_axes((0.0, 0.0, width / (width + 1.3), height / (height + 0.7)))
    ax.set_axis_off()
    ax.set_aspect("equal")
    ax.set_xlim(*layout.xlim)
    ax.set_ylim(*layout.ylim)
    return fig, ax


class _Pen(NamedTuple):
    """How edges are drawn: width ∝ |value| / ``largest``, up to ``max_width``."""

    largest: float
    max_width: float
    alpha: float


def _pen(shown: Shown, layout: Layout) -> _Pen:
    drawn = layout.drawn
    largest = [
        float(np.max(np.abs(A[np.ix_(drawn[li + 1][0], drawn[li][0])])))
        for li, A in enumerate(shown.edges)
    ]
    if layout.with_bias:
        largest += [float(np.max(np.abs(b))) for b in shown.bias_edges]
    max_width, alpha = (4.0, 0.8) if layout.n_edges <= SMALL_EDGES else (2.5, 0.55)
    return _Pen(max(largest) or 1.0, max_width, alpha)


def _edge(
    ax: Axes,
    start: tuple[float, float],
    end: tuple[float, float],
    value: float,
    text: str,
    frac: float,
    pen: _Pen,
) -> None:
    """One edge coloured by the sign of ``value``, its number written ``frac`` of the way."""
    (x0, y0), (x1, y1) = start, end
    ax.plot(
        [x0, x1],
        [y0, y1],
        color=POSITIVE if value >= 0 else NEGATIVE,
        linewidth=0.3 + pen.max_width * abs(value) / pen.largest,
        alpha=pen.alpha,
        zorder=1,
        solid_capstyle="round",
    )
    if text:
        tx, ty = x0 + (x1 - x0) * frac, y0 + (y1 - y0) * frac
        ax.text(
            tx,
            ty,
            text,
            fontsize=7,
            ha="center",
            va="center",
            zorder=4,
            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85},
        )


def _draw_edges(ax: Axes, layout: Layout, shown: Shown, style: Style) -> None:
    """Every drawn weight, layer by layer, each layer's bias unit and its edges after it."""
    pen = _pen(shown, layout)
    xs = layout.xs
    for li, A in enumerate(shown.edges):
        pos0, pos1 = layout.heights[li][0], layout.heights[li + 1][0]
        for rank, (j, yj) in enumerate(pos1.items()):
            v = rank / max(1, len(pos1) - 1)  # 0 at the top unit, 1 at the bottom one
            for source, (i, yi) in enumerate(pos0.items()):
                u = source / max(1, len(pos0) - 1)
                # Level edges are labelled in the middle; a falling edge near its source and
                # a rising one near its target, so labels of crossing edges do not meet.
                frac = min(0.8, max(0.2, 0.5 + 0.3 * (u - v)))
                value = float(A[j, i])
                text = style.num(value) if layout.write else ""
                _edge(ax, (xs[li] + RADIUS, yi), (xs[li + 1] - RADIUS, yj), value, text, frac, pen)
        if layout.with_bias:
            _draw_bias(ax, layout, li, shown.bias_edges[li], style, pen)


def _draw_bias(ax: Axes, layout: Layout, li: int, b: Array, style: Style, pen: _Pen) -> None:
    """Layer ``li``'s bias as a square unit fixed at 1, above the layer, with its edges."""
    x, y = layout.xs[li], layout.bias_y[li]
    targets = layout.heights[li + 1][0]
    for rank, (j, yj) in enumerate(targets.items()):
        value = float(b[j])
        text = style.num(value) if layout.write else ""
        frac = 0.55 + 0.25 * rank / max(1, len(targets) - 1)
        _edge(ax, (x + BIAS_HALF, y), (layout.xs[li + 1] - RADIUS, yj), value, text, frac, pen)
    ax.add_patch(
        FancyBboxPatch(
            (x - BIAS_HALF, y - BIAS_HALF),
            2 * BIAS_HALF,
            2 * BIAS_HALF,
            boxstyle="round,pad=0.02",
            fc="#eeeeee",
            ec="#555555",
            lw=1,
            zorder=3,
        )
    )
    ax.text(x, y, "1", ha="center", va="center", fontsize=8, zorder=5)


def _draw_units(
    ax: Axes, net: FeedForward, layout: Layout, shown: Shown, scale: _UnitScale, style: Style
) -> None:
    """Each layer's units coloured by their numbers, its "+N more" marker and its caption."""
    n_layers = len(net.layers)
    for li, vals in enumerate(shown.units):
        x = layout.xs[li]
        pos, marker = layout.heights[li]
        for j, y in pos.items():
            value = None if vals is None else float(vals[j])
            _draw_unit(ax, (x, y), style.unit(li, j), value, scale, style, layout.write)
        if marker is not None:
            hidden = layout.sizes[li] - len(pos)
            ax.text(
                x,
                marker,
                f"⋮\n+{hidden} more",
                ha="center",
                va="center",
                fontsize=8,
                color="#444444",
                zorder=5,
            )
        role = "input" if li == 0 else "output" if li == n_layers else "hidden"
        activation = "" if li == 0 else net.layers[li - 1].activation.name
        ax.text(
            x,
            layout.bottom,
            f"{role}, {activation}\n{layout.sizes[li]} units"
            if activation
            else f"{role}\n{layout.sizes[li]} units",
            ha="center",
            va="top",
            fontsize=8,
            color="#333333",
        )


def _draw_unit(
    ax: Axes,
    centre: tuple[float, float],
    name: str,
    value: float | None,
    scale: _UnitScale,
    style: Style,
    write: bool,
) -> None:
    """One unit: a circle coloured by ``value`` (plain for None), its name, its number below."""
    x, y = centre
    face = "#f4f4f4" if value is None else scale.cmap(scale.norm(value))
    ax.add_patch(Circle(centre, RADIUS, fc=face, ec="#333333", lw=1.2, zorder=3))
    dark = value is not None and abs(value) > 0.6 * scale.vmax
    ax.text(
        x,
        y,
        name,
        ha="center",
        va="center",
        fontsize=8,
        zorder=5,
        color="white" if dark else "black",
    )
    if write and value is not None:
        ax.text(x, y - RADIUS - 0.13, style.num(value), ha="center", va="top", fontsize=7, zorder=5)


def _title(net: FeedForward, trace: Trace | None, show: str, style: Style) -> str:
    title = f"{'-'.join(map(str, net.sizes))} network, loss {net.loss_function.name}"
    if trace is not None:
        what = "δ and Δw" if show == "delta" else "z and w"
        title += (
            f"\none step ({what}): E {style.num(trace.error_before)} → "
            f"{style.num(trace.error_after)}"
        )
    return title


def _colour_bar(fig: Figure, layout: Layout, scale: _UnitScale) -> None:
    width = layout.width
    cax = fig.add_axes(((width + 0.25) / (width + 1.3), 0.2, 0.18 / (width + 1.3), 0.55))
    fig.colorbar(ScalarMappable(norm=scale.norm, cmap=scale.cmap), cax=cax, label=scale.label)


def _edge_legend(ax: Axes, show: str, with_bias: bool) -> None:
    edge_what = "Δw" if show == "delta" else "w"
    ax.text(
        0.5,
        0.0,
        f"edges: blue {edge_what} > 0, red {edge_what} < 0, width ∝ "
        f"|{edge_what}|" + ("; squares: bias units (always 1)" if with_bias else ""),
        transform=ax.transAxes,
        ha="center",
        va="top",
        fontsize=7,
        color="#444444",
    )


def summary_html(net: FeedForward) -> str:
    """Jupyter's view of a Network: a table of its layers and its diagram (when it draws)."""
    rows = "".join(
        f"<tr><td>{i + 1}</td><td>{ly.n_in} → {ly.n_out}</td><td>{html.escape(ly.activation.name)}"
        f"</td><td>{ly.W.size + ly.b.size:,}</td></tr>"
        for i, ly in enumerate(net.layers)
    )
    table = (
        f"<table><thead><tr><th>layer</th><th>units</th><th>activation</th><th>parameters</th>"
        f"</tr></thead><tbody>{rows}</tbody></table>"
    )
    head = (
        f"<b>Network</b> {html.escape('-'.join(map(str, net.sizes)))} · loss "
        f"{html.escape(net.loss_function.name)} · {net.n_parameters:,} parameters · "
        f"{html.escape(net.dtype.name)}"
    )
    picture = ""
    try:
        fig = network(net, labels="auto")
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=72, bbox_inches="tight")
        data = base64.b64encode(buffer.getvalue()).decode("ascii")
        picture = f'<img src="data:image/png;base64,{data}" alt="network diagram"/>'
    except Exception as exc:  # noqa: BLE001 - a summary without its picture beats no summary
        picture = f"<i>(no diagram: {html.escape(str(exc))})</i>"
    return f"<div>{head}{table}{picture}</div>"
