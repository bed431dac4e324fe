"""What a network diagram shows and where it puts it, before anything is drawn (no matplotlib).

Layers stand side by side, ``LAYER_GAP`` apart, their units stacked and centred on 0; a layer
over the size limit shows its first and last units with a "+N more" marker between them. The
picture's size follows the drawing, so that a unit is the same size in every diagram.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from deltaprop.core.network import FeedForward

if TYPE_CHECKING:
    from deltaprop.explain import Trace

Array = np.ndarray

SMALL_EDGES = 12  # up to this many drawn edges, every edge and unit gets a number
LAYER_GAP = 2.6  # between the centres of neighbouring layers, in data units
RADIUS = 0.32  # of a unit's circle


def drawn_units(n: int, limit: int) -> tuple[list[int], int]:
    """Unit indices drawn for a layer of n units, and where the "+N more" marker goes."""
    if n <= limit:
        return list(range(n)), -1
    head = (limit + 1) // 2
    tail = limit - head
    return list(range(head)) + list(range(n - tail, n)), head


@dataclass
class Layout:
    """Where everything goes: the units drawn per layer and their heights, the drawing's
    limits and size, and whether numbers and bias units are drawn."""

    sizes: list[int]
    drawn: list[tuple[list[int], int]]  # per layer: unit indices drawn, the marker's slot
    heights: list[tuple[dict[int, float], float | None]]  # per layer: unit -> y, marker's y
    xs: list[float]  # per layer
    bias_y: list[float]  # per layer of weights: its bias unit's height
    bottom: float  # where the layer captions start
    xlim: tuple[float, float]
    ylim: tuple[float, float]
    width: float  # of the drawing, in inches
    height: float
    n_edges: int
    write: bool  # numbers on units and edges
    with_bias: bool


def layout_for(sizes: list[int], max_units: int, labels: bool | str, bias: bool | str) -> Layout:
    """The layout of a network of layer ``sizes``, drawing at most ``max_units`` per layer;
    ``labels`` and ``bias`` as :func:`deltaprop.plot.network` takes them."""
    n_layers = len(sizes) - 1
    drawn = [drawn_units(n, max_units) for n in sizes]
    n_edges = sum(len(drawn[li][0]) * len(drawn[li + 1][0]) for li in range(n_layers))
    write = n_edges <= SMALL_EDGES if labels == "auto" else bool(labels)
    with_bias = write if bias == "auto" else bool(bias)
    xs = [LAYER_GAP * li for li in range(n_layers + 1)]
    heights = [unit_heights(units, gap) for units, gap in drawn]
    bias_y = [max(heights[li][0].values()) + 1.1 for li in range(n_layers)]
    lowest = min(min(h.values()) for h, _ in heights)
    bottom = lowest - RADIUS - (0.5 if write else 0.25)
    top = max(bias_y) + 0.5 if with_bias else max(max(h.values()) for h, _ in heights) + 0.6
    # Text does not count for autoscaling, so the limits leave room for the captions; the
    # figure is sized to the drawing so that a unit is the same size in every diagram.
    xlim, ylim = (xs[0] - 0.9, xs[-1] + 0.9), (bottom - 0.75, top)
    inch = 0.75 if write else 0.55
    return Layout(
        sizes=list(sizes),
        drawn=drawn,
        heights=heights,
        xs=xs,
        bias_y=bias_y,
        bottom=bottom,
        xlim=xlim,
        ylim=ylim,
        width=inch * (xlim[1] - xlim[0]),
        height=inch * (ylim[1] - ylim[0]),
        n_edges=n_edges,
        write=write,
        with_bias=with_bias,
    )


def unit_heights(units: list[int], gap: int) -> tuple[dict[int, float], float | None]:
    """Each drawn unit's height, top first and centred on 0, and the "+N more" marker's."""
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


@dataclass
class Shown:
    """The numbers drawn, layer by layer: on the units (z or δ, inputs first; None: plain)
    and on the edges (w or Δw, each (n_out, n_in); and the biases' b or Δb)."""

    units: list[Array | None]
    edges: list[Array]
    bias_edges: list[Array]


def shown_numbers(net: FeedForward, trace: Trace | None, x: object, show: str) -> Shown:
    """The numbers :func:`deltaprop.plot.network` draws for these arguments."""
    if trace is not None:
        layers = trace.layers
        if show == "delta":
            return Shown(
                [None] + [ly.delta for ly in layers],
                [ly.W_change for ly in layers],
                [ly.b_change for ly in layers],
            )
        return Shown(
            [trace.x] + [ly.z for ly in layers], [ly.W for ly in layers], [ly.b for ly in layers]
        )
    units: list[Array | None] = [None] * (len(net.layers) + 1)
    if x is not None:
        fp = net.forward(net.check_inputs(np.asarray(x).reshape(1, -1), "x"))
        units = [z[0] for z in fp.z]
    return Shown(units, [ly.W for ly in net.layers], [ly.b for ly in net.layers])
