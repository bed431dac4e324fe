"""deltaprop train: load data, split, scale, train with a progress bar, save everything."""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import time
from pathlib import Path

import numpy as np

from deltaprop.cli import UsageError
from deltaprop.commands import _common

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

OPTIMIZERS = ("sgd", "rmsprop", "adam", "adamw", "adagrad")
SCHEDULES = ("none", "step", "exponential", "cosine", "plateau")


def add_arguments(p: argparse.ArgumentParser) -> None:
    data = p.add_argument_group("data")
    data.add_argument(
        "--data",
        default="digits",
        help="digits, iris, xor, moons, circles, spirals, or a .csv/.npy/.npz/IDX "
        "file (default: digits)",
    )
    data.add_argument("--target", help="CSV target column name (default: the last column)")
    data.add_argument(
        "--task",
        choices=("auto", "classification", "regression"),
        default="auto",
        help="what the target is (default: inferred from the data)",
    )
    data.add_argument("--labels", help="IDX labels file, for an IDX images --data file")
    data.add_argument(
        "--test-size",
        type=_common.fraction,
        default=0.2,
        help="fraction held out for the final test (default: 0.2)",
    )
    data.add_argument(
        "--scale",
        choices=("standard", "minmax", "none"),
        default="standard",
        help="input scaling fitted on the training part (default: standard)",
    )

    model = p.add_argument_group("network")
    model.add_argument(
        "--hidden",
        type=_common.sizes,
        default=[64],
        help="hidden layer widths, e.g. 64,32 (default: 64)",
    )
    model.add_argument(
        "--activation", default="sigmoid", help="hidden activation (default: sigmoid)"
    )
    model.add_argument(
        "--output-activation",
        help="default: softmax for cross_entropy, sigmoid for "
        "binary_cross_entropy, sigmoid for mse on classes, identity for regression",
    )
    model.add_argument(
        "--loss",
        choices=("cross_entropy", "mse", "binary_cross_entropy"),
        help="default: cross_entropy for classes, mse for regression",
    )
    model.add_argument("--init", default="xavier", help="weight initialiser (default: xavier)")
    model.add_argument("--dtype", choices=("float32", "float64"), default="float64")
    model.add_argument("--seed", type=int, default=0, help="seeds weights, shuffling and the split")

    opt = p.add_argument_group("optimisation")
    opt.add_argument("--optimizer", choices=OPTIMIZERS, default="adam")
    opt.add_argument(
        "--lr",
        type=_common.positive_float,
        help="learning rate (default: 0.01 for adam/adamw/rmsprop/adagrad, 0.1 sgd)",
    )
    opt.add_argument("--momentum", type=float, default=0.0, help="sgd and rmsprop momentum")
    opt.add_argument("--nesterov", action="store_true", help="sgd: Nesterov momentum")
    opt.add_argument("--weight-decay", type=float, default=None)
    opt.add_argument("--betas", type=float, nargs=2, metavar=("B1", "B2"), help="adam/adamw")
    opt.add_argument("--schedule", choices=SCHEDULES, default="none", help="learning-rate schedule")
    opt.add_argument(
        "--step-size",
        type=_common.positive_int,
        default=10,
        help="step schedule: epochs between cuts (default: 10)",
    )
    opt.add_argument(
        "--gamma",
        type=_common.positive_float,
        default=None,
        help="step/exponential factor (default: 0.1 / 0.95)",
    )
    opt.add_argument(
        "--engine",
        choices=("auto", "reference", "online", "batch"),
        default="auto",
        help="training engine: the fused Numba kernels (online, batch), the readable NumPy "
        "path (reference), or auto: the kernels unless the run is too small to repay "
        "loading them (default: auto)",
    )
    opt.add_argument("--epochs", type=_common.positive_int, default=30)
    opt.add_argument(
        "--batch-size",
        type=_common.positive_int,
        default=32,
        help="examples per update; 1 = online, the seed's loop (default: 32)",
    )
    opt.add_argument(
        "--validation-split",
        type=_common.fraction,
        default=0.1,
        help="fraction of the training part for validation (default: 0.1)",
    )
    opt.add_argument("--no-validation", action="store_true", help="no validation split")
    opt.add_argument(
        "--early-stopping",
        type=_common.positive_int,
        metavar="PATIENCE",
        help="stop after PATIENCE epochs without validation improvement",
    )

    out = p.add_argument_group("output")
    out.add_argument("--out", help="output folder (default: ./runs/<timestamp>/)")
    out.add_argument("--no-plots", action="store_true", help="skip the figures")
    out.add_argument(
        "--animate",
        metavar="GIF",
        help="2-D data: write the decision boundary and loss over the epochs",
    )
    out.add_argument("--quiet", action="store_true", help="no progress bar")
    out.add_argument(
        "--checkpoint",
        metavar="PATH",
        help="write a checkpoint (weights, optimizer, RNG, position, history) here "
        "every --checkpoint-every epochs, atomically",
    )
    out.add_argument(
        "--checkpoint-every",
        type=_common.positive_int,
        default=1,
        metavar="N",
        help="epochs between checkpoints (default: 1)",
    )
    out.add_argument(
        "--resume",
        metavar="PATH",
        help="continue the training a checkpoint was written by, with the same options, "
        "to --epochs in all; the result equals an uninterrupted run",
    )


def _optimizer(args: argparse.Namespace):
    from deltaprop.optim import optimizers

    kwargs: dict = {
        "lr": args.lr if args.lr is not None else (0.1 if args.optimizer == "sgd" else 0.01)
    }
    if args.optimizer in ("sgd", "rmsprop"):
        kwargs["momentum"] = args.momentum
    elif args.momentum:
        raise UsageError(f"--momentum applies to sgd and rmsprop, not --optimizer {args.optimizer}")
    if args.nesterov:
        if args.optimizer != "sgd":
            raise UsageError("--nesterov applies to --optimizer sgd only")
        kwargs["nesterov"] = True
    if args.betas is not None:
        if args.optimizer not in ("adam", "adamw"):
            raise UsageError("--betas applies to --optimizer adam or adamw only")
        kwargs["betas"] = tuple(args.betas)
    if args.weight_decay is not None:
        kwargs["weight_decay"] = args.weight_decay
    try:
        return optimizers.get_optimizer({"name": args.optimizer, **kwargs})
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _schedule(args: argparse.Namespace, opt):
    from deltaprop.optim import schedules

    if args.schedule == "none":
        return None
    if args.schedule == "step":
        return schedules.StepLR(opt, args.step_size, gamma=args.gamma or 0.1)
    if args.schedule == "exponential":
        return schedules.ExponentialLR(opt, gamma=args.gamma or 0.95)
    if args.schedule == "cosine":
        return schedules.CosineAnnealingLR(opt, T_max=args.epochs)
    return schedules.ReduceLROnPlateau(opt, factor=args.gamma or 0.1, patience=5)


def _engine(requested: str, net, n_examples: int, epochs: int, batch_size: int) -> str:
    if requested != "auto":
        return requested
    from deltaprop.train.engines.choose import engine_for_size

    return engine_for_size(net, n_examples, epochs, batch_size)


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


def run(args: argparse.Namespace) -> int:
    import deltaprop as dp
    from deltaprop.data.datasets import Scaler, load_dataset, one_hot, train_test_split

    # Options first, so that a typo costs nothing.
    opt = _optimizer(args)
    if args.early_stopping and args.no_validation:
        raise UsageError("--early-stopping needs validation data; drop --no-validation")
    dataset = load_dataset(
        args.data, target=args.target, task=args.task, labels=args.labels, seed=args.seed
    )
    if dataset.y is None:
        raise UsageError(f"--data {args.data}: no target column to learn from")
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
    scaler = Scaler(args.scale).fit(train.X)
    X_train, X_test = scaler.transform(train.X), scaler.transform(test.X)
    n_out = dataset.n_classes if classify else train.y.shape[1]
    dtype = np.dtype(args.dtype)

    def targets(part):
        if not classify:
            return part.y
        return part.y if loss == "cross_entropy" else one_hot(part.y, n_out, dtype)

    try:
        net = dp.Network(
            [dataset.n_features, *args.hidden, n_out],
            activation=args.activation,
            output_activation=output_activation,
            loss=loss,
            init=args.init,
            seed=args.seed,
            dtype=dtype,
        )
        schedule = _schedule(args, opt)
    except ValueError as exc:
        raise UsageError(str(exc)) from None

    folder = _output_folder(args.out)
    callbacks = []
    animation = None
    if args.animate:
        from deltaprop.plot.animation import TrainingAnimation

        animation = TrainingAnimation(
            X_train, train.y if classify else train.y[:, 0], every=max(1, args.epochs // 100)
        )
        callbacks.append(animation)
    if not args.quiet:
        print(f"training {net} on {dataset.name}: {len(train)} train / {len(test)} test examples")
    started = time.perf_counter()
    history = net.fit(
        X_train,
        targets(train),
        optimizer=opt,
        epochs=args.epochs,
        batch_size=args.batch_size,
        validation_split=0.0 if args.no_validation else args.validation_split,
        early_stopping=args.early_stopping or False,
        scheduler=schedule,
        callbacks=callbacks,
        verbose=not args.quiet,
        engine=_engine(args.engine, net, len(train), args.epochs, args.batch_size),
        checkpoint=args.checkpoint,
        checkpoint_every=args.checkpoint_every,
        resume=args.resume,
    )
    seconds = time.perf_counter() - started

    outputs = net.predict(X_test)
    summary: dict = {
        "epochs": len(history),
        "seconds": round(seconds, 3),
        "examples": len(train),
        "optimizer": opt.config(),
        "batch_size": args.batch_size,
        "final_train_loss": history.loss[-1],
        "test_loss": net.loss(X_test, targets(test)),
        "stopped_early": history.stopped_early,
    }
    lines = [f"test loss: {summary['test_loss']:.4f}"]
    if classify:
        predicted = _common.predicted_labels(outputs)
        summary["test_accuracy"] = float(np.mean(predicted == test.y))
        lines.insert(0, f"test accuracy: {summary['test_accuracy']:.4f}")
    else:
        residual = np.sum((test.y - outputs) ** 2)
        total = np.sum((test.y - test.y.mean(axis=0)) ** 2)
        summary["test_r2"] = float(1 - residual / total) if total > 0 else float("nan")
        lines.insert(0, f"test R^2: {summary['test_r2']:.4f}")

    net.metadata.update(
        {
            "task": dataset.task,
            "dataset": str(dataset.name),
            "feature_names": list(dataset.feature_names),
            "class_names": list(dataset.class_names) if classify else None,
            "target": args.target,
            "image_shape": list(dataset.image_shape) if dataset.image_shape else None,
            "scaler": scaler.to_dict(),
            "training": summary,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }
    )
    model_path = folder / "model.safetensors"
    net.save(model_path)
    _write_history(history, folder)
    figures = (
        [] if args.no_plots else _figures(net, history, X_test, test, outputs, classify, folder)
    )
    if animation is not None:
        frames = animation.save(args.animate)
        figures.append(f"{args.animate} ({frames} frames)")

    print("\n".join(lines))
    print(
        f"epochs: {len(history)}{' (stopped early)' if history.stopped_early else ''}, "
        f"{seconds:.1f} s"
    )
    print(f"model: {model_path}")
    print(f"history: {folder / 'history.csv'}, {folder / 'history.json'}")
    for figure in figures:
        print(f"figure: {figure}")
    print(f"output folder: {folder}{os.sep}")
    return 0


def _write_history(history, folder: Path) -> None:
    data = history.as_dict()
    (folder / "history.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    columns = [
        k
        for k in ("epoch", "loss", "val_loss", "accuracy", "val_accuracy", "lr", "seconds")
        if data[k]
    ]
    rows = [[data[k][i] for k in columns] for i in range(len(history))]
    _common.write_csv(rows, columns, str(folder / "history.csv"))


def _figures(net, history, X_test, test, outputs, classify, folder: Path) -> list[str]:
    from deltaprop.plot import figures

    written = [folder / "training.png"]
    figures.training_curves(history, written[-1])
    if classify:
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
                net, X_test, test.y, written[-1], class_names=test.class_names
            )
    return [str(path) for path in written]
