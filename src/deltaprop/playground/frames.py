"""What the server sends: the run's description, the frames of training and the record of a
step, as JSON-ready dicts.

Grids (each unit's output over the input plane) travel as base64 of little-endian float32,
unit after unit, row after row (y from the top of the plane down), which the page reads as a
Float32Array; everything else is plain JSON numbers.

The formula lines of a step are those ``deltaprop explain`` prints: the explanation's own
sections (:class:`deltaprop.explain.document.Builder`), each equation written on one line, as
the text renderer writes it when lines are not broken (``width=0``).
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

from deltaprop.core.init import INITIALIZERS
from deltaprop.core.notation import Style
from deltaprop.explain.document import Builder
from deltaprop.explain.formulas import Eq
from deltaprop.explain.page import Options
from deltaprop.explain.record import Trace
from deltaprop.playground.problems import Plane
from deltaprop.playground.session import Session, StepRecord
from deltaprop.playground.settings import (
    HIDDEN_ACTIVATIONS,
    MAX_HIDDEN_LAYERS,
    MAX_UNITS,
    OUTPUT_ACTIVATIONS,
    asdict_settings,
)

Array = np.ndarray
OUTPUT_GRID = 48  # cells a side of the output plane
UNIT_GRID = 20  # cells a side of each hidden unit's thumbnail (fewer where they are drawn small)
# Numbers in every explanation the page shows: as `deltaprop explain` (4 significant digits).
DIGITS = 4
# The most weights per layer written out with their formula; more are listed by number only.
MAX_FORMULA_WEIGHTS = 600


def f32(values: Array) -> str:
    with np.errstate(over="ignore", invalid="ignore"):  # a diverging unit's ±inf stays ±inf
        data = np.ascontiguousarray(values, dtype="<f4")
    return base64.b64encode(data.tobytes()).decode("ascii")


def unit_names(sizes: list[int]) -> list[list[str]]:
    """Every unit's symbol, layer by layer from the inputs: x1, h1 (or h1:1), o1."""
    style = Style("text", n_layers=len(sizes) - 1)
    return [[style.unit(layer, j) for j in range(n)] for layer, n in enumerate(sizes)]


def _plane(extent: tuple[float, float, float, float], cells: int) -> Array:
    """Cell centres of the plane, row by row from the top (largest x2) down."""
    x0, x1, y0, y1 = extent
    xs = x0 + (np.arange(cells) + 0.5) * (x1 - x0) / cells
    ys = y1 - (np.arange(cells) + 0.5) * (y1 - y0) / cells
    gx, gy = np.meshgrid(xs, ys)
    return np.column_stack([gx.ravel(), gy.ravel()])


def grids(session: Session) -> dict[str, Any] | None:
    """Each input's and hidden unit's value over the plane (small grids) and the outputs'
    (larger)."""
    plane, extent = session.problem.plane, session.problem.extent
    if plane is None or extent is None:
        return None
    net = session.net
    widest = max(net.sizes[1:-1], default=0)
    cells = UNIT_GRID if widest <= 8 else 14 if widest <= 16 else 10 if widest <= 32 else 8
    with np.errstate(all="ignore"):
        inputs = plane.inputs(_plane(extent, cells))
        small = net.forward(inputs)
        large = net.forward(plane.inputs(_plane(extent, OUTPUT_GRID)))
    hidden = [f32(z.T) for z in small.z[1:-1]]
    return {
        "unit_cells": cells,
        "output_cells": OUTPUT_GRID,
        "inputs": f32(inputs.T),
        "hidden": hidden,
        "output": f32(large.output.T),
    }


def _points(plane: Plane | None, X: Array, labels: Array | None, T: Array) -> dict[str, Any]:
    return {
        "x": [] if plane is None else np.round(plane.coordinates(X), 5).tolist(),
        "label": None if labels is None else labels.tolist(),
        "target": None if labels is not None else np.round(T, 5).tolist(),
    }


def description(session: Session) -> dict[str, Any]:
    """The "state" message: settings, data, the network's structure; sent after each change."""
    problem, net = session.problem, session.net
    plane = problem.plane
    return {
        "type": "state",
        "settings": asdict_settings(session.settings),
        "hash": session.hash(),
        "data": {
            "name": problem.name,
            "task": problem.task,
            "n_inputs": problem.n_inputs,
            "n_train": session.n_train,
            "n_test": int(problem.X_test.shape[0]),
            "class_names": problem.class_names,
            "feature_names": problem.feature_names,
            "extent": problem.extent,
            "train": _points(plane, problem.X_train, problem.labels_train, problem.T_train),
            "test": _points(plane, problem.X_test, problem.labels_test, problem.T_test),
            "projected": plane is not None and plane.projected,
            "projected_variance": None if plane is None else plane.variance,
        },
        "network": {
            "sizes": net.sizes,
            "activations": [layer.activation.name for layer in net.layers],
            "loss": net.loss_function.name,
            "loss_formula": net.loss_function.formula,
            "units": unit_names(net.sizes),
            "parameters": net.n_parameters,
        },
        "batches_per_epoch": session.batches_per_epoch,
        "choices": {
            "hidden_activations": list(HIDDEN_ACTIVATIONS),
            "output_activations": list(OUTPUT_ACTIVATIONS),
            "inits": list(INITIALIZERS),
            "max_units": MAX_UNITS,
            "max_hidden_layers": MAX_HIDDEN_LAYERS,
        },
        "frame": frame(session),
    }


def frame(session: Session, running: bool = False, since: int = 0) -> dict[str, Any]:
    """The "frame" message: where training is, the scores, the weights, every unit's δ, the
    grids and the loss-curve points from index ``since`` on."""
    step = session.last_step
    deltas = step.deltas if step is not None else session.current_deltas()
    scores = session.evaluate()
    return {
        "type": "frame",
        "running": running,
        "epoch": session.epoch,
        "batch": session.batch,
        "steps": session.steps_taken,
        "engine": session.engine_name or "reference",
        **scores,
        "weights": [{"W": ly.W.tolist(), "b": ly.b.tolist()} for ly in session.net.layers],
        "deltas": [np.asarray(d).tolist() for d in deltas],
        "delta_source": "step" if step is not None else "mean",
        "grids": grids(session),
        "curve_from": since,
        "curve": [list(p) for p in session.curve[since:]],
    }


# ------------------------------------------------------------------------ a step's record
def eq_line(eq: Eq) -> str:
    """One equation as ``deltaprop explain`` prints it on one line."""
    line = f"{eq.lhs} {eq.op} " + " = ".join([c for c in eq.chain if c] + [eq.result])
    return f"{line}   {eq.note}" if eq.note else line


def _options(trace: Trace) -> Options:
    largest = max(ly.W.size + ly.b.size for ly in trace.layers)
    return Options(
        digits=DIGITS,
        max_units=max(ly.size for ly in trace.layers),
        top=min(largest, MAX_FORMULA_WEIGHTS),
        detail=min(largest, MAX_FORMULA_WEIGHTS),
        width=0,
    )


def formula_lines(trace: Trace) -> dict[str, Any]:
    """The explanation's lines, grouped: per unit (its forward lines and its δ line, each
    under its section's title and rule), per weight (its update's lines) and the error's
    (E before, and E and o after the step)."""
    style = Style("text", digits=DIGITS, n_layers=len(trace.layers))
    sections = Builder(trace, style, _options(trace)).build()
    units: dict[str, list[dict[str, Any]]] = {}
    weights: dict[str, list[dict[str, Any]]] = {}
    error: dict[str, list[dict[str, Any]]] = {}
    names = {name for layer in unit_names(trace.sizes) for name in layer}
    for section in sections:
        updates = section.title.startswith("Weight updates")
        label = ""
        for eq in section.eqs:
            if updates:
                label = eq.label or label
                key, into = label or eq.lhs, weights
            else:
                key = eq.lhs.removeprefix("a_").removeprefix("δ_")
                into = units if key in names else error
            blocks = into.setdefault(key, [])
            if not blocks or blocks[-1]["title"] != section.title:
                blocks.append({"title": section.title, "rule": section.rule, "lines": []})
            blocks[-1]["lines"].append(eq_line(eq))
    return {"units": units, "weights": weights, "error": error}


def step_record(session: Session, record: StepRecord) -> dict[str, Any]:
    """The "step" message: every δ and Δw of the step (and, for one example, every line of
    its explanation)."""
    layers = []
    for li, (delta, (gW, gb), (dW, db)) in enumerate(
        zip(record.deltas, record.gradients, record.changes)
    ):
        entry: dict[str, Any] = {
            "delta": np.asarray(delta).tolist(),
            "W_grad": gW.tolist(),
            "b_grad": gb.tolist(),
            "W_change": dW.tolist(),
            "b_change": db.tolist(),
        }
        if record.trace is not None:
            ly = record.trace.layers[li]
            entry.update(
                a=ly.a.tolist(),
                z=ly.z.tolist(),
                h_prime=None if ly.h_prime is None else ly.h_prime.tolist(),
                W=ly.W.tolist(),
                b=ly.b.tolist(),
                delta_rule=ly.delta_rule,
            )
        layers.append(entry)
    out: dict[str, Any] = {
        "type": "step",
        "epoch": record.epoch,
        "batch": record.batch,
        "rows": record.rows,
        "loss": record.loss,
        "layers": layers,
        "example": record.trace is not None,
    }
    if record.trace is not None:
        trace = record.trace
        out.update(
            x=trace.x.tolist(),
            t=trace.t.tolist(),
            error_before=trace.error_before,
            error_after=trace.error_after,
            optimizer=trace.optimizer,
            formulas=formula_lines(trace),
        )
    return out
