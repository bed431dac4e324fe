"""deltaprop train: load data, split, scale, train with a progress bar, save everything."""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from deltaprop.cli import UsageError
from deltaprop.commands import _common
from deltaprop.commands import _train_options as options
from deltaprop.data.datasets import Dataset, load_dataset
from deltaprop.data.preprocessing import Imputer, Scaler, one_hot, train_test_split
from deltaprop.io.atomic import write_atomically
from deltaprop.model import Network
from deltaprop.optim.optimizers import Optimizer
from deltaprop.optim.schedules import Schedule
from deltaprop.train.callbacks import History
from deltaprop.train.engines.choose import engine_for_size, forgo_kernels

if TYPE_CHECKING:
    from deltaprop.plot.animation import TrainingAnimation

HELP = "train a network on built-in or your own data and save the model, history and figures"
EXAMPLES = """examples:
  deltaprop train                                   # 8x8 digits, sensible defaults
  deltaprop train --data iris --hidden 16 --epochs 100
  deltaprop train --data moons --hidden 16,16 --activation tanh --animate moons.gif
  deltaprop train --data my.csv --target price --task regression --loss mse
  deltaprop train --data train-images-idx3-ubyte.gz --labels train-labels-idx1-ubyte.gz \\
                  --hidden 256,128 --activation relu --optimizer adam --batch-size 128
  deltaprop train --optimizer sgd --lr 0.5 --momentum 0.9 --schedule cosine --out runs/sgd
  deltaprop train --epochs 200 --checkpoint run.ckpt    # interrupted? then, same options:
  deltaprop train --epochs 200 --resume run.ckpt
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    options.add_data_options(p)
    options.add_network_options(p)
    options.add_optimisation_options(p)
    options.add_output_options(p)


def _engine(
    requested: str, net: Network, opt: Optimizer, n_examples: int, args: argparse.Namespace
) -> str:
    if requested != "auto":
        return requested
    return engine_for_size(net, opt, n_examples, args.epochs, args.batch_size)


def _output_folder(requested: str | None) -> Path:
    if requested:
        folder = Path(requested)
    else:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        folder = Path("runs") / stamp
        suffix = 1
        while folder.exists():
            suffix += 1
            folder = Path("runs") / f"{stamp}-{suffix}"
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"--out {requested}: exists and is not a folder")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@dataclass
class _Problem:
    """What a run learns: the data set, its train and test parts scaled, and the loss."""

    dataset: Dataset
    train: Dataset
    test: Dataset
    imputer: Imputer | None
    scaler: Scaler
    X_train: np.ndarray
    X_test: np.ndarray
    classify: bool
    loss: str
    output_activation: str
    n_out: int
    dtype: np.dtype

    def targets(self, part: Dataset) -> np.ndarray:
        """The network's targets for ``part``: labels for cross-entropy, else rows."""
        if not self.classify:
            return part.y
        return part.y if self.loss == "cross_entropy" else one_hot(part.y, self.n_out, self.dtype)


def _problem(args: argparse.Namespace) -> _Problem:
    """The data loaded, checked against the options, split and scaled."""
    dataset = load_dataset(
        args.data,
        target=args.target,
        task=args.task,
        labels=args.labels,
        seed=args.seed,
        delimiter=args.delimiter,
        missing="keep" if args.impute else "error",
        categorical=args.categorical,
    )
    if dataset.y is None:
        raise UsageError(f"--data {args.data}: no target column to learn from")
    _common.require_classes(dataset)
    if args.animate and dataset.n_features != 2:
        raise UsageError(
            f"--animate needs 2-D data; {dataset.name} has {dataset.n_features} features"
        )
    classify = dataset.task == "classification"
    loss = args.loss or ("cross_entropy" if classify else "mse")
    if not classify and loss != "mse":
        raise UsageError(f"--loss {loss} needs class labels; {dataset.name} is a regression task")
    output_activation = args.output_activation or {
        "cross_entropy": "softmax",
        "binary_cross_entropy": "sigmoid",
    }.get(loss, "sigmoid" if classify else "identity")

    train, test = train_test_split(dataset, test_size=args.test_size, seed=args.seed)
    # Filling and scaling are fitted on the training part only, and recorded for predict.
    imputer = Imputer(args.impute).fit(train.X) if args.impute else None
    X_train, X_test = (
        (train.X, test.X) if imputer is None else map(imputer.transform, (train.X, test.X))
    )
    scaler = Scaler(args.scale).fit(X_train)
    return _Problem(
        dataset,
        train,
        test,
        imputer,
        scaler,
        X_train=scaler.transform(X_train),
        X_test=scaler.transform(X_test),
        classify=classify,
        loss=loss,
        output_activation=output_activation,
        n_out=dataset.n_classes if classify else train.y.shape[1],
        dtype=np.dtype(args.dtype),
    )


def _network(
    args: argparse.Namespace, problem: _Problem, opt: Optimizer
) -> tuple[Network, Schedule | None]:
    """The network to train and its learning-rate schedule (None for a constant rate)."""
    try:
        net = Network(
            [problem.dataset.n_features, *args.hidden, problem.n_out],
            activation=args.activation,
            output_activation=problem.output_activation,
            loss=problem.loss,
            init=args.init,
            seed=args.seed,
            dtype=problem.dtype,
        )
        return net, options.schedule(args, opt)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _animation(args: argparse.Namespace, problem: _Problem) -> TrainingAnimation | None:
    """The --animate recorder, or None."""
    if not args.animate:
        return None
    # plot.animation imports matplotlib at its top: loaded only when a film is asked for.
    from deltaprop.plot.animation import TrainingAnimation

    train = problem.train
    return TrainingAnimation(
        problem.X_train,
        train.y if problem.classify else train.y[:, 0],
        every=max(1, args.epochs // 100),
    )


def _train(
    args: argparse.Namespace,
    net: Network,
    problem: _Problem,
    opt: Optimizer,
    schedule: Schedule | None,
    animation: TrainingAnimation | None,
) -> History:
    n_examples = len(problem.train)
    engine = _engine(args.engine, net, opt, n_examples, args)
    history = net.fit(
        problem.X_train,
        problem.targets(problem.train),
        optimizer=opt,
        epochs=args.epochs,
        batch_size=args.batch_size,
        validation_split=0.0 if args.no_validation else args.validation_split,
        early_stopping=args.early_stopping or False,
        scheduler=schedule,
        callbacks=[] if animation is None else [animation],
        verbose=not args.quiet,
        engine=engine,
        checkpoint=args.checkpoint,
        checkpoint_every=args.checkpoint_every,
        resume=args.resume,
    )
    if engine == "reference" and args.engine == "auto":  # sent to NumPy by its size
        forgo_kernels(net, opt, n_examples, len(history.epoch), args.batch_size)
    return history


def run(args: argparse.Namespace) -> int:
    opt = options.optimizer(args)  # options first, so that a typo costs nothing
    if args.early_stopping and args.no_validation:
        raise UsageError("--early-stopping needs validation data; drop --no-validation")
    problem = _problem(args)
    net, schedule = _network(args, problem, opt)
    folder = _output_folder(args.out)
    animation = _animation(args, problem)
    if not args.quiet:
        print(
            f"training {net} on {problem.dataset.name}: {len(problem.train)} train / "
            f"{len(problem.test)} test examples"
        )
    started = time.perf_counter()
    history = _train(args, net, problem, opt, schedule, animation)
    seconds = time.perf_counter() - started

    outputs = net.predict(problem.X_test)
    summary = _summary(args, net, problem, opt, history, seconds, outputs)
    _describe_model(args, net, problem, summary)
    model_path = folder / "model.safetensors"
    net.save(model_path)
    _write_history(history, folder)
    figures = [] if args.no_plots else _figures(net, history, problem, outputs, folder)
    if animation is not None:
        frames = animation.save(args.animate)
        figures.append(f"{args.animate} ({frames} frames)")
    _report(summary, history, seconds, model_path, figures, folder)
    return 0


def _summary(
    args: argparse.Namespace,
    net: Network,
    problem: _Problem,
    opt: Optimizer,
    history: History,
    seconds: float,
    outputs: np.ndarray,
) -> dict:
    """The run in numbers, kept in the model's metadata: test loss and accuracy (or R²)."""
    test = problem.test
    summary: dict = {
        "epochs": len(history),
        "seconds": round(seconds, 3),
        "examples": len(problem.train),
        "optimizer": opt.config(),
        "batch_size": args.batch_size,
        "final_train_loss": history.loss[-1],
        "test_loss": net.loss(problem.X_test, problem.targets(test)),
        "stopped_early": history.stopped_early,
    }
    if problem.classify:
        predicted = _common.predicted_labels(outputs)
        summary["test_accuracy"] = float(np.mean(predicted == test.y))
    else:
        summary["test_r2"] = _common.r2(test.y, outputs)
    return summary


def _describe_model(
    args: argparse.Namespace, net: Network, problem: _Problem, summary: dict
) -> None:
    """What later commands need to know about the data: names, scaling, the run's numbers."""
    dataset = problem.dataset
    net.metadata.update(
        {
            "task": dataset.task,
            "dataset": str(dataset.name),
            "feature_names": list(dataset.feature_names),
            "class_names": list(dataset.class_names) if problem.classify else None,
            "target": args.target,
            "image_shape": list(dataset.image_shape) if dataset.image_shape else None,
            "scaler": problem.scaler.to_dict(),
            **({"imputer": problem.imputer.to_dict()} if problem.imputer else {}),
            **({"categorical": dataset.categorical} if dataset.categorical else {}),
            "training": summary,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }
    )


def _report(
    summary: dict,
    history: History,
    seconds: float,
    model_path: Path,
    figures: list[str],
    folder: Path,
) -> None:
    if "test_accuracy" in summary:
        print(f"test accuracy: {summary['test_accuracy']:.4f}")
    else:
        print(f"test R^2: {summary['test_r2']:.4f} (sklearn.metrics.r2_score, mean over targets)")
    print(f"test loss: {summary['test_loss']:.4f}")
    print(
        f"epochs: {len(history)}{' (stopped early)' if history.stopped_early else ''}, "
        f"{seconds:.1f} s"
    )
    print(f"model: {model_path}")
    print(f"history: {folder / 'history.csv'}, {folder / 'history.json'}")
    for figure in figures:
        print(f"figure: {figure}")
    print(f"output folder: {folder}{os.sep}")


def _write_history(history: History, folder: Path) -> None:
    data = history.as_dict()
    write_atomically(folder / "history.json", (json.dumps(data, indent=2) + "\n").encode())
    columns = [
        k
        for k in ("epoch", "loss", "val_loss", "accuracy", "val_accuracy", "lr", "seconds")
        if data[k]
    ]
    rows = [[data[k][i] for k in columns] for i in range(len(history))]
    _common.write_csv(rows, columns, str(folder / "history.csv"))


def _figures(
    net: Network, history: History, problem: _Problem, outputs: np.ndarray, folder: Path
) -> list[str]:
    # plot.figures imports matplotlib at its top: loaded only when figures are drawn.
    from deltaprop.plot import figures

    test = problem.test
    written = [folder / "training.png"]
    figures.training_curves(history, written[-1])
    if problem.classify:
        predicted = _common.predicted_labels(outputs)
        written.append(folder / "confusion_matrix.png")
        figures.confusion_matrix(test.y, predicted, test.class_names, written[-1])
        if test.image_shape:
            written.append(folder / "misclassified.png")
            figures.misclassified(
                test.X, test.y, predicted, tuple(test.image_shape), test.class_names, written[-1]
            )
        if net.n_inputs == 2:
            written.append(folder / "decision_boundary.png")
            figures.decision_boundary(
                net, problem.X_test, test.y, written[-1], class_names=test.class_names
            )
    return [str(path) for path in written]
