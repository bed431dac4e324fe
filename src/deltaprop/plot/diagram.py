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
from typing import TYPE_CHECKING

import numpy as np
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Circle, FancyBboxPatch

from deltaprop.core.network import FeedForward
from deltaprop.core.notation import Style

if TYPE_CHECKING:
    from deltaprop.explain import Trace

Array = np.ndarray

SHOW = ("value", "delta")
# Negative red, positive blue, as in TensorFlow Playground's diagrams (orange/blue).
CMAP = "RdBu"
POSITIVE, NEGATIVE = colormaps[CMAP](0.9), colormaps[CMAP](0.1)
SMALL_EDGES = 12  # up to this many drawn edges, every edge and unit gets a number


def _drawn(n: int, limit: int) -> tuple[list[int], int]:
    """Unit indices drawn for a layer of n units, and where the "+N more" marker goes."""
    if n <= limit:
        return list(range(n)), -1
    head = (limit + 1) // 2
    tail = limit - head
    return list(range(head)) + list(range(n - tail, n)), head


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

    L = len(net.layers)
    sizes = net.sizes
    if trace is not None:
        Ws = [ly.W for ly in trace.layers]
        bs = [ly.b for ly in trace.layers]
        values = [trace.x] + [ly.z for ly in trace.layers]
        deltas = [None] + [ly.delta for ly in trace.layers]
        changes = [ly.W_change for ly in trace.layers]
        b_changes = [ly.b_change for ly in trace.layers]
    else:
        Ws = [ly.W for ly in net.layers]
        bs = [ly.b for ly in net.layers]
        values = None
        if x is not None:
            fp = net.forward(net.check_inputs(np.asarray(x).reshape(1, -1), "x"))
            values = [z[0] for z in fp.z]
        deltas = changes = b_changes = None

    drawn = [_drawn(n, max_units) for n in sizes]
    n_edges = sum(len(drawn[li][0]) * len(drawn[li + 1][0]) for li in range(L))
    write = n_edges <= SMALL_EDGES if labels == "auto" else bool(labels)
    with_bias = write if bias == "auto" else bool(bias)

    # ---- unit colours: one symmetric scale for the whole drawing
    unit_vals: list[Array | None]
    if show == "delta":
        unit_vals = list(deltas)  # type: ignore[arg-type]
        unit_label = "δ (unit's delta)"
    else:
        unit_vals = list(values) if values is not None else [None] * (L + 1)
        unit_label = "z (unit's output)"
    shown_vals = [
        np.asarray(v, dtype=np.float64)[drawn[li][0]]
        for li, v in enumerate(unit_vals)
        if v is not None
    ]
    vmax = max((float(np.max(np.abs(v))) for v in shown_vals if v.size), default=0.0) or 1.0
    norm = Normalize(-vmax, vmax)
    cmap = colormaps[CMAP]

    # ---- edge sizes: |w|, or |Δw| for show="delta"
    edge_arrays = changes if show == "delta" else Ws
    bias_arrays = b_changes if show == "delta" else bs
    emax = (
        max(
            [
                float(np.max(np.abs(A[np.ix_(drawn[li + 1][0], drawn[li][0])])))
                for li, A in enumerate(edge_arrays)
            ]  # type: ignore[arg-type]
            + ([float(np.max(np.abs(b))) for b in bias_arrays] if with_bias else [])  # type: ignore
        )
        or 1.0
    )

    style = Style("text", digits=3, n_layers=L)
    xs = [2.6 * li for li in range(L + 1)]
    radius = 0.32

    def ys_of(li: int) -> tuple[dict[int, float], float | None]:
        units, gap = drawn[li]
        slots = len(units) + (gap >= 0)
        top = (slots - 1) / 2
        pos: dict[int, float] = {}
        marker = None
        slot = 0
        for k, j in enumerate(units):
            if k == gap:
                marker = top - slot
                slot += 1
            pos[j] = top - slot
            slot += 1
        return pos, marker

    positions = [ys_of(li) for li in range(L + 1)]
    bias_y = [max(positions[li][0].values()) + 1.1 for li in range(L)]
    lowest = min(min(p.values()) for p, _ in positions)
    bottom = lowest - radius - (0.5 if write else 0.25)  # layer captions start here
    top = max(bias_y) + 0.5 if with_bias else max(max(p.values()) for p, _ in positions) + 0.6
    # Text does not count for autoscaling, so the limits leave room for the captions; the
    # figure is sized to the drawing so that a unit is the same size in every diagram.
    xlim, ylim = (xs[0] - 0.9, xs[-1] + 0.9), (bottom - 0.75, top)
    inch = 0.75 if write else 0.55
    width, height = inch * (xlim[1] - xlim[0]), inch * (ylim[1] - ylim[0])
    fig = Figure(figsize=(width + 1.3, height + 0.7))
    # Axes placed by hand: the drawing fills the figure, the colour bar sits to its right.
    ax = fig.add_axes((0.0, 0.0, width / (width + 1.3), height / (height + 0.7)))
    ax.set_axis_off()
    ax.set_aspect("equal")
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    max_width, alpha = (4.0, 0.8) if n_edges <= SMALL_EDGES else (2.5, 0.55)

    def edge(x0, y0, x1, y1, value, text, frac=0.28):
        width = 0.3 + max_width * abs(value) / emax
        ax.plot(
            [x0, x1],
            [y0, y1],
            color=POSITIVE if value >= 0 else NEGATIVE,
            linewidth=width,
            alpha=alpha,
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

    for li in range(L):
        pos0, pos1 = positions[li][0], positions[li + 1][0]
        A = edge_arrays[li]  # type: ignore[index]
        for rank, (j, yj) in enumerate(pos1.items()):
            v = rank / max(1, len(pos1) - 1)  # 0 at the top unit, 1 at the bottom one
            for source, (i, yi) in enumerate(pos0.items()):
                u = source / max(1, len(pos0) - 1)
                # Level edges are labelled in the middle; a falling edge near its source and
                # a rising one near its target, so labels of crossing edges do not meet.
                frac = min(0.8, max(0.2, 0.5 + 0.3 * (u - v)))
                value = float(A[j, i])
                edge(
                    xs[li] + radius,
                    yi,
                    xs[li + 1] - radius,
                    yj,
                    value,
                    style.num(value) if write else "",
                    frac,
                )
        if with_bias:
            bvals = bias_arrays[li]  # type: ignore[index]
            for rank, (j, yj) in enumerate(pos1.items()):
                value = float(bvals[j])
                edge(
                    xs[li] + 0.22,
                    bias_y[li],
                    xs[li + 1] - radius,
                    yj,
                    value,
                    style.num(value) if write else "",
                    0.55 + 0.25 * rank / max(1, len(pos1) - 1),
                )
            ax.add_patch(
                FancyBboxPatch(
                    (xs[li] - 0.22, bias_y[li] - 0.22),
                    0.44,
                    0.44,
                    boxstyle="round,pad=0.02",
                    fc="#eeeeee",
                    ec="#555555",
                    lw=1,
                    zorder=3,
                )
            )
            ax.text(xs[li], bias_y[li], "1", ha="center", va="center", fontsize=8, zorder=5)

    for li in range(L + 1):
        pos, marker = positions[li]
        vals = unit_vals[li]
        for j, y in pos.items():
            if vals is None:
                face = "#f4f4f4"
            else:
                face = cmap(norm(float(vals[j])))
            ax.add_patch(Circle((xs[li], y), radius, fc=face, ec="#333333", lw=1.2, zorder=3))
            name = style.unit(li, j)
            ax.text(
                xs[li],
                y,
                name,
                ha="center",
                va="center",
                fontsize=8,
                zorder=5,
                color="white" if vals is not None and abs(float(vals[j])) > 0.6 * vmax else "black",
            )
            if write and vals is not None:
                ax.text(
                    xs[li],
                    y - radius - 0.13,
                    style.num(float(vals[j])),
                    ha="center",
                    va="top",
                    fontsize=7,
                    zorder=5,
                )
        if marker is not None:
            hidden = sizes[li] - len(pos)
            ax.text(
                xs[li],
                marker,
                f"⋮\n+{hidden} more",
                ha="center",
                va="center",
                fontsize=8,
                color="#444444",
                zorder=5,
            )
        role = "input" if li == 0 else "output" if li == L else "hidden"
        ax.text(
            xs[li],
            bottom,
            f"{role}\n{sizes[li]} units"
            if li == 0 or not net.layers[li - 1].activation.name
            else f"{role}, {net.layers[li - 1].activation.name}\n{sizes[li]} units",
            ha="center",
            va="top",
            fontsize=8,
            color="#333333",
        )

    title = f"{'-'.join(map(str, sizes))} network, loss {net.loss_function.name}"
    if trace is not None:
        what = "δ and Δw" if show == "delta" else "z and w"
        title += (
            f"\none step ({what}): E {style.num(trace.error_before)} → "
            f"{style.num(trace.error_after)}"
        )
    ax.set_title(title, fontsize=10)
    if any(v is not None for v in unit_vals):
        left = (width + 0.25) / (width + 1.3)
        cax = fig.add_axes((left, 0.2, 0.18 / (width + 1.3), 0.55))
        fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), cax=cax, label=unit_label)
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
    _save(fig, path, dpi)
    return fig


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
