"""One playground run, independent of the web page: the data, the network, its optimizer,
where training stands, and the steps it takes.

- :meth:`Session.train_for` is Play: whole epochs on the fast engine deltaprop's ``fit`` would
  choose (online or batch, via :func:`~deltaprop.train.engines.choose.choose_engine`), each
  in a new shuffled order drawn from the network's generator, as ``fit(shuffle=True)`` draws
  it, for at most a given time;
- :meth:`Session.step` is Step: one example (batch size 1, through
  :func:`deltaprop.explain.explain`, so the record is exactly what ``deltaprop explain``
  prints) or one batch (the reference engine's step), on the reference path;
- :meth:`Session.reset` rebuilds everything from the same settings and seed: the same data
  and the same initial weights, so a run can be rewound and replayed.

A step or an epoch that diverges leaves the last finite weights in place (the engines' own
divergence guard) and reports the library's TrainingDivergedError message.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

import numpy as np

from deltaprop.core.losses import accuracy_rule, fraction_right
from deltaprop.data.datasets import Dataset
from deltaprop.errors import TrainingDivergedError
from deltaprop.explain.example import classic_example
from deltaprop.explain.record import Trace
from deltaprop.explain.trace import explain
from deltaprop.model import Network
from deltaprop.optim.optimizers import get_optimizer
from deltaprop.playground import problems
from deltaprop.playground.problems import Problem
from deltaprop.playground.settings import MAX_UNITS, Settings, parse_settings
from deltaprop.train.engines.base import (
    ArraySource,
    Batch,
    Engine,
    EpochResult,
    Step,
    Workload,
    raise_if_diverged,
)
from deltaprop.train.engines.choose import choose_engine, make_engine
from deltaprop.train.engines.reference import ReferenceEngine

Array = np.ndarray
MAX_CURVE_POINTS = 1000


@dataclass
class StepRecord:
    """The last Step: ``trace`` for one example (None for a batch), else the batch's mean
    deltas per layer, its gradients and the change of every parameter."""

    epoch: int
    batch: int
    rows: list[int]
    loss: float
    deltas: list[Array]
    gradients: list[tuple[Array, Array]]
    changes: list[tuple[Array, Array]]
    trace: Trace | None


class Session:
    """The state of one page's run; see the module docstring. Every method that fails with a
    ValueError changes nothing."""

    def __init__(self, settings: Settings | None = None, upload: Dataset | None = None) -> None:
        self.upload = upload
        self.settings = Settings()
        self.configure(settings or Settings(dataset="csv" if upload else "circles"))

    # ---------------------------------------------------------------- building
    def configure(self, settings: Settings, upload: Dataset | None = None) -> None:
        """Start over with ``settings`` (and, if given, a newly uploaded data set)."""
        upload = upload if upload is not None else self.upload
        if settings.example == "classic":
            problem, net = problems.classic_problem(), classic_example(Network).net
            settings = replace(
                settings, hidden=(2,), activation=("sigmoid",), output="sigmoid", loss="mse"
            )
            opt = get_optimizer(settings.optimizer_config())
        else:
            problem = self._problem(settings, upload)
            n_out = self._outputs(settings, problem)
            problem = problems.with_outputs(problem, n_out, settings.loss)
            net = self._network(settings, problem, n_out)
            opt = get_optimizer(settings.optimizer_config())
        self.settings, self.problem, self.net, self.optimizer = settings, problem, net, opt
        if upload is not None:
            self.upload = upload
        self.engine: Engine | None = None
        self.engine_name = ""
        self.epoch = 0
        self.batch = 0  # the next batch of the current epoch (0: a new epoch starts)
        self.order: Array | None = None
        self.epoch_sums = (0.0, 0.0)  # loss and right answers so far in a stepped epoch
        self.last_epoch_loss: float | None = None
        self.last_step: StepRecord | None = None
        self.steps_taken = 0
        self.curve: list[tuple[float, float | None, float | None]] = []
        self.curve_version = 0  # counts the times the curve was thinned (its indices moved)
        self.record_point()

    def change(self, values: dict) -> None:
        """Apply changed settings (a dict of hash keys) and start over."""
        settings = parse_settings(values, self.settings)
        if settings.dataset == "csv" and self.upload is None and not settings.example:
            raise ValueError("dataset=csv needs a CSV file: upload one first")
        self.configure(settings)

    def reset(self) -> None:
        """The same settings and seed again: the same data and the same initial weights."""
        self.configure(self.settings)

    def load_csv(self, name: str, content: bytes) -> None:
        """Train on an uploaded CSV (read as ``deltaprop train --data`` reads it)."""
        dataset = problems.read_csv_upload(name, content)
        base = replace(self.settings, example=None, dataset="csv", extra={})
        if dataset.task == "regression":
            base = replace(base, loss="mse", output="identity")
        elif base.loss == "mse" and base.output == "identity":
            base = replace(base, output="sigmoid")
        self.configure(base, upload=dataset)

    @staticmethod
    def _problem(settings: Settings, upload: Dataset | None) -> Problem:
        if settings.dataset == "csv":
            if upload is None:
                raise ValueError("dataset=csv needs a CSV file: upload one first")
            return problems.problem_from(upload, settings, scale=True)
        return problems.problem_from(problems.generated(settings), settings, scale=False)

    @staticmethod
    def _outputs(settings: Settings, problem: Problem) -> int:
        """Output units: one per class (or target), or one for two classes when the shape
        asks for it and the loss allows it; ValueError when the shape does not fit the data."""
        first, last = settings.extra.get("shape_ends", (None, None))
        if first is not None and first != problem.n_inputs:
            raise ValueError(
                f"shape: {problem.name} has {problem.n_inputs} inputs, so the shape starts with "
                f"{problem.n_inputs}. Received: a shape starting with {first}"
            )
        natural = problem.n_classes or problem.T_train.shape[1]
        if last is None or last == natural:
            return natural
        if last == 1 and problem.n_classes == 2 and settings.loss != "cross_entropy":
            return 1
        raise ValueError(
            f"shape: {problem.name} needs {natural} outputs (one per "
            f"{'class' if problem.n_classes else 'target'}"
            f"{'; or 1 for two classes without cross_entropy' if problem.n_classes == 2 else ''}"
            f"). Received: a shape ending with {last}"
        )

    @staticmethod
    def _network(settings: Settings, problem: Problem, n_out: int) -> Network:
        if problem.task == "regression" and settings.loss != "mse":
            raise ValueError(
                f"loss: {problem.name} is a regression task; only mse fits it. "
                f"Received: loss={settings.loss!r}"
            )
        if n_out > MAX_UNITS or problem.n_inputs > 256:
            raise ValueError(
                f"{problem.name}: {problem.n_inputs} inputs and {n_out} outputs are more than "
                f"the playground draws (at most 256 inputs and {MAX_UNITS} outputs)"
            )
        return Network(
            [problem.n_inputs, *settings.hidden, n_out],
            activation=list(settings.activation),
            output_activation=settings.output,
            loss=settings.loss,
            init=settings.init,
            seed=settings.seed,
        )

    # ---------------------------------------------------------------- where training is
    @property
    def n_train(self) -> int:
        return self.problem.X_train.shape[0]

    @property
    def batch_size(self) -> int:
        return min(self.settings.batch, self.n_train)

    @property
    def batches_per_epoch(self) -> int:
        return -(-self.n_train // self.batch_size)

    @property
    def accuracy_rule(self) -> str | None:
        if self.problem.task != "classification":
            return None
        return accuracy_rule(self.net.loss_function.name, self.net.n_outputs)

    def evaluate(self) -> dict[str, float | None]:
        """Loss and accuracy of both parts at the current weights."""
        out: dict[str, float | None] = {}
        for part, X, T in (
            ("train", self.problem.X_train, self.problem.T_train),
            ("test", self.problem.X_test, self.problem.T_test),
        ):
            if X.shape[0] == 0:
                out[f"{part}_loss"] = out[f"{part}_accuracy"] = None
                continue
            with np.errstate(all="ignore"):
                outputs = self.net.forward(X)
                loss = self.net.loss_of(outputs, T)
            rule = self.accuracy_rule
            out[f"{part}_loss"] = loss if math.isfinite(loss) else None
            out[f"{part}_accuracy"] = (
                None if rule is None else fraction_right(rule, outputs.output, T)
            )
        return out

    def record_point(self) -> None:
        """A point of the loss curves at the current epoch (and fraction of one)."""
        scores = self.evaluate()
        at = self.epoch + self.batch / self.batches_per_epoch
        if self.curve and self.curve[-1][0] == at:
            return
        self.curve.append((at, scores["train_loss"], scores["test_loss"]))
        if len(self.curve) > MAX_CURVE_POINTS:
            # Thin out evenly, keeping the first and the latest points.
            self.curve = self.curve[:-1:2] + [self.curve[-1]]
            self.curve_version += 1

    # ---------------------------------------------------------------- Play
    def _workload(self) -> Workload:
        source = ArraySource(self.problem.X_train, self.problem.T_train)
        return Workload(self.net, source, self.optimizer, self.batch_size, self.accuracy_rule)

    def _fast_engine(self) -> Engine:
        if self.engine is None:
            name = choose_engine(self.net, self.optimizer, self.batch_size, (), "auto")
            self.engine, self.engine_name = make_engine(name, self._workload()), name
        return self.engine

    def _new_order(self) -> Array:
        return self.net.rng.permutation(self.n_train)

    def _epoch_done(self, result: EpochResult) -> None:
        self.epoch += 1
        self.batch, self.order, self.epoch_sums = 0, None, (0.0, 0.0)
        self.last_epoch_loss = result.loss_sum / self.n_train

    def _check(self, result: EpochResult) -> None:
        """TrainingDivergedError (the library's message) if the epoch diverged."""
        raise_if_diverged(result, self.epoch + 1, float(self.optimizer.lr))

    def train_for(self, seconds: float, max_epochs: int = 0) -> int:
        """Train whole epochs for about ``seconds`` (at least one, at most ``max_epochs``
        when > 0) and return how many; an epoch begun by Step is finished first, on the
        reference engine, from where Step left it."""
        start, done = time.perf_counter(), 0
        if self.batch:
            engine = ReferenceEngine(self._workload())
            result = engine.run_epoch(self.order, None, self.batch, *self.epoch_sums)
            self._check(result)
            self._epoch_done(result)
            done += 1
        engine = self._fast_engine()
        while (not max_epochs or done < max_epochs) and (
            done == 0 or time.perf_counter() - start < seconds
        ):
            result = engine.run_epoch(self._new_order())
            self._check(result)
            self._epoch_done(result)
            done += 1
        self.last_step = None
        return done

    # ---------------------------------------------------------------- Step
    def step(self) -> StepRecord:
        """One step on the reference path: the next example (batch size 1) or batch of the
        epoch's shuffled order. TrainingDivergedError leaves the weights as they were."""
        if self.batch == 0:
            self.order = self._new_order()
        size, order = self.batch_size, self.order
        rows = order[self.batch * size : (self.batch + 1) * size]
        X, T = self.problem.X_train[rows], self.problem.T_train[rows]
        before = [p.copy() for p in self.net.parameters()]
        if size == 1:
            record = self._example_step(X, T)
        else:
            record = self._batch_step(X, T)
        params = self.net.parameters()
        record.changes = [
            (params[2 * li] - before[2 * li], params[2 * li + 1] - before[2 * li + 1])
            for li in range(len(self.net.layers))
        ]
        record.rows = [int(r) for r in rows]
        self.engine = None  # the fast engine is rebuilt on the state Step leaves
        loss_sum, right = self.epoch_sums
        m = len(rows)
        loss_sum += record.loss * m
        rule = self.accuracy_rule
        if rule is not None:
            right += fraction_right(rule, self.net.forward(X).output, T) * m
        self.epoch_sums = (loss_sum, right)
        self.batch += 1
        self.steps_taken += 1
        if self.batch >= self.batches_per_epoch:
            self._epoch_done(EpochResult(loss_sum, right))
        self.last_step = record
        return record

    def _example_step(self, X: Array, T: Array) -> StepRecord:
        names = self.problem.feature_names
        if names == [f"x{i + 1}" for i in range(X.shape[1])]:
            names = None  # the symbols already: `deltaprop explain` names no inputs then
        trace = explain(self.net, X[0], T[0], self.optimizer, apply=True, input_names=names)
        return StepRecord(
            epoch=self.epoch,
            batch=self.batch,
            rows=[],
            loss=trace.error_before,
            deltas=[ly.delta.copy() for ly in trace.layers],
            gradients=[(ly.W_grad, ly.b_grad) for ly in trace.layers],
            changes=[],
            trace=trace,
        )

    def _batch_step(self, X: Array, T: Array) -> StepRecord:
        seen: list[Step] = []
        engine = ReferenceEngine(self._workload(), step_observers=[seen.append])
        loss, _penalty, _outputs, what = engine.step(self.batch, Batch(X, T), self.net.parameters())
        if what:
            raise TrainingDivergedError(
                f"training diverged at epoch {self.epoch + 1}, batch {self.batch}: {what}. "
                f"The network keeps its weights from before this step. Try a smaller learning "
                f"rate (lr={float(self.optimizer.lr):g})."
            )
        (step,) = seen
        return StepRecord(
            epoch=self.epoch,
            batch=self.batch,
            rows=[],
            loss=loss,
            deltas=[d.mean(axis=0) for d in step.deltas],
            gradients=[(gW.copy(), gb.copy()) for gW, gb in step.gradients],
            changes=[],
            trace=None,
        )

    def current_deltas(self) -> list[Array]:
        """δ of every unit, mean over the training set at the current weights (what Play
        shows between steps: the direction the next epoch starts from)."""
        X, T = self.problem.X_train, self.problem.T_train
        with np.errstate(all="ignore"):
            fp = self.net.forward(X)
            return [d.mean(axis=0) for d in self.net.backward(fp, T)]

    # ---------------------------------------------------------------- a loaded model
    def adopt(self, net: Network, epoch: int = 0) -> None:
        """Continue with ``net`` (its architecture becomes the settings') from ``epoch``, on
        the current data; :func:`deltaprop.playground.files.load_model` checks it fits."""
        acts = [layer.activation.name for layer in net.layers]
        settings = replace(
            self.settings,
            hidden=tuple(net.sizes[1:-1]),
            activation=tuple(acts[:-1]),
            output=acts[-1],
            loss=net.loss_function.name,
            extra={},
        )
        self.configure(settings)
        self.problem = problems.with_outputs(self.problem, net.n_outputs, settings.loss)
        self.net, self.epoch = net, epoch
        self.curve = []
        self.curve_version += 1
        self.record_point()

    def hash(self) -> dict[str, str]:
        return self.settings.as_hash(self.net.n_inputs, self.net.n_outputs)
