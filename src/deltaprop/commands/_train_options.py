"""The options of ``deltaprop train``, one builder per group of its --help, and what they make.

Kept apart from :mod:`deltaprop.commands.train` so that the command reads as its steps.
"""

from __future__ import annotations

import argparse

from deltaprop.cli import UsageError
from deltaprop.commands import _common
from deltaprop.optim import schedules
from deltaprop.optim.optimizers import Optimizer, get_optimizer
from deltaprop.train.engines.choose import ENGINES

OPTIMIZERS = ("sgd", "rmsprop", "adam", "adamw", "adagrad")
SCHEDULES = ("none", "step", "exponential", "cosine", "plateau")
# PyTorch's defaults for the adaptive optimizers; sgd's 0.1 suits the standardised inputs.
DEFAULT_LR = {"sgd": 0.1, "rmsprop": 0.01, "adam": 0.001, "adamw": 0.001, "adagrad": 0.01}


def column_names(text: str) -> list[str]:
    """argparse type for 'zip,grade': column names."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected comma-separated column names; got {text!r}")
    return names


def delimiter(text: str) -> str:
    """argparse type for a field separator: one character, or \\t (or 'tab') for tab."""
    value = {"\\t": "\t", "tab": "\t"}.get(text, text)
    if len(value) != 1 or value in '"\r\n':
        raise argparse.ArgumentTypeError(
            f"expected one character (or \\t for tab) other than a quote; got {text!r}"
        )
    return value


def add_data_options(p: argparse.ArgumentParser) -> None:
    """What to learn from and how it is split and scaled."""
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
    add_csv_options(data)
    data.add_argument(
        "--impute",
        choices=("mean", "median"),
        help="CSV: fill missing cells (empty, NA, N/A, NaN, null, None, ?) with the training "
        "part's column mean or median, recorded in the model for predict (default: a missing "
        "cell is an error naming it)",
    )
    data.add_argument(
        "--categorical",
        type=column_names,
        metavar="COLUMNS",
        default=[],
        help="CSV: feature columns to one-hot encode although their values are numbers, e.g. "
        "zip,grade (columns of text are one-hot encoded anyway)",
    )
    data.add_argument(
        "--test-size",
        type=_common.fraction,
        default=0.2,
        help="fraction held out for the final test (default: 0.2)",
    )
    data.add_argument(
        "--scale",
        choices=("auto", "standard", "minmax", "none"),
        default="auto",
        help="input scaling fitted on the training part; auto leaves columns already in "
        "[0, 1] as they are and standardises the others with a floor on the divisor "
        "(default: auto)",
    )


def add_csv_options(group: argparse._ArgumentGroup | argparse.ArgumentParser) -> None:
    """How a CSV file is split into fields (train, evaluate and predict)."""
    group.add_argument(
        "--delimiter",
        type=delimiter,
        help="CSV field separator, e.g. ';' or '\\t' for tab (default: found from the file's "
        "first lines; tab for .tsv)",
    )


def add_network_options(p: argparse.ArgumentParser) -> None:
    """The network's shape, activations, loss, initialisation and dtype."""
    model = p.add_argument_group("network")
    model.add_argument(
        "--hidden",
        type=_common.sizes,
        default=[256],
        help="hidden layer widths, e.g. 64,32 (default: 256)",
    )
    model.add_argument("--activation", default="relu", help="hidden activation (default: relu)")
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


def add_optimisation_options(p: argparse.ArgumentParser) -> None:
    """The optimizer, its schedule, the engine, epochs, batches and validation."""
    opt = p.add_argument_group("optimisation")
    opt.add_argument("--optimizer", choices=OPTIMIZERS, default="adam")
    opt.add_argument(
        "--lr",
        type=_common.positive_float,
        help="learning rate (default: 0.001 for adam/adamw, 0.01 for rmsprop/adagrad, 0.1 sgd)",
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
        choices=ENGINES,
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


def add_output_options(p: argparse.ArgumentParser) -> None:
    """Where the results go: folder, figures, animation, progress, checkpoints."""
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


def optimizer(args: argparse.Namespace) -> Optimizer:
    """The optimizer the options ask for; a UsageError for options of another optimizer."""
    kwargs: dict = {"lr": args.lr if args.lr is not None else DEFAULT_LR[args.optimizer]}
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
        return get_optimizer({"name": args.optimizer, **kwargs})
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def schedule(args: argparse.Namespace, opt: Optimizer) -> schedules.Schedule | None:
    """The learning-rate schedule the options ask for, driving ``opt``; None for "none"."""
    if args.schedule == "none":
        return None
    if args.schedule == "step":
        return schedules.StepLR(opt, args.step_size, gamma=args.gamma or 0.1)
    if args.schedule == "exponential":
        return schedules.ExponentialLR(opt, gamma=args.gamma or 0.95)
    if args.schedule == "cosine":
        return schedules.CosineAnnealingLR(opt, T_max=args.epochs)
    return schedules.ReduceLROnPlateau(opt, factor=args.gamma or 0.1, patience=5)
