"""deltaprop explain: one training step with every number written into its formula."""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

from deltaprop.cli import UsageError
from deltaprop.commands import _common
from deltaprop.data.preprocessing import one_hot
from deltaprop.errors import TrainingDivergedError
from deltaprop.explain import classic_example, explain, load_example
from deltaprop.optim.optimizers import Optimizer, get_optimizer

HELP = "show one training step by backpropagation: every a, z, δ and Δw with the numbers in"
EXAMPLES = """With no options: the classic 2-2-2 sigmoid network, squared error, one example,
η = 0.5 (x = (0.05, 0.10), t = (0.01, 0.99); hidden weights .15 .20 .25 .30, biases .35;
output weights .40 .45 .50 .55, biases .60), worked step by step: a student can check
every line by hand.

examples:
  deltaprop explain                                  # the classic worked example
  deltaprop explain --steps 1000                     # ... and the error over 1000 steps
  deltaprop explain --format markdown -o step.md     # also: latex, json
  deltaprop explain --x 1,0 --t 0                    # the classic network, another example
  deltaprop explain --weights my_net.json            # your own starting weights
  deltaprop explain --optimizer adam --lr 0.01       # another optimizer's rule, in numbers
  deltaprop explain --model model.safetensors --data iris --row 7 --layer 1 --top 5
  deltaprop explain --diagram step.png               # the network, coloured by δ

--weights FILE.json (every key but "layers" optional):
  {"activation": "sigmoid", "output_activation": "sigmoid", "loss": "mse",
   "layers": [{"W": [[0.15, 0.20], [0.25, 0.30]], "b": [0.35, 0.35]},
              {"W": [[0.40, 0.45], [0.50, 0.55]], "b": [0.60, 0.60]}],
   "x": [0.05, 0.10], "t": [0.01, 0.99], "lr": 0.5}
  W[j][i] is the weight from unit i to unit j, b[j] unit j's bias.

Sign convention: δ_j = −∂E/∂a_j (the seed's), so plain SGD adds η δ_j z_i to w_ji.
Colour: with --color auto (default), only on a terminal and when NO_COLOR is not set.
"""

CLASSIC_LR = 0.5
DEFAULT_MODEL_LR = 0.1  # fit's default optimizer, SGD(lr=0.1)


def _numbers(text: str) -> list[float]:
    try:
        values = [float(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers such as 0.05,0.1; got {text!r}"
        ) from None
    if not values or not all(np.isfinite(values)):
        raise argparse.ArgumentTypeError(f"expected finite numbers; got {text!r}")
    return values


def add_arguments(p: argparse.ArgumentParser) -> None:
    _example_options(p)
    _step_options(p)
    _output_options(p)


def _example_options(p: argparse.ArgumentParser) -> None:
    """The network and the example: a model file and a data row, JSON weights, or --x --t."""
    src = p.add_argument_group("what to explain (default: the classic 2-2-2 example)")
    src.add_argument("--model", metavar="FILE", help="a model file (deltaprop train, net.save)")
    src.add_argument(
        "--data",
        metavar="SOURCE",
        help="with --model: a built-in data set name or a .csv/.npy/.npz/IDX file",
    )
    src.add_argument(
        "--row",
        type=int,
        metavar="N",
        help="with --data: the example to use, counted from 0 (default 0; "
        "negative counts from the end)",
    )
    src.add_argument(
        "--target",
        metavar="COLUMN",
        help="with --data: CSV target column (default: the model's, else the last)",
    )
    src.add_argument("--labels", metavar="FILE", help="with --data: IDX labels file")
    src.add_argument(
        "--seed",
        type=int,
        default=0,
        help="with --data: seed for generated built-in data sets (default 0)",
    )
    src.add_argument(
        "--weights",
        metavar="FILE.json",
        help="starting weights (and optionally x, t, lr) as JSON; see below",
    )
    src.add_argument(
        "--x",
        type=_numbers,
        metavar="X1,X2,...",
        help="the input (with --model: raw features; the explanation shows them scaled as "
        "the model saw them in training)",
    )
    src.add_argument(
        "--t",
        type=_numbers,
        metavar="T1,...",
        help="the target: one value per output, or a class label (cross-entropy)",
    )


def _step_options(p: argparse.ArgumentParser) -> None:
    """The optimizer, its learning rate, and how many steps to repeat."""
    step = p.add_argument_group("the step")
    step.add_argument(
        "--optimizer",
        metavar="NAME|JSON",
        help="sgd (default), adam, adamw, rmsprop, adagrad, or a config such as "
        '\'{"name": "SGD", "momentum": 0.9}\'',
    )
    step.add_argument(
        "--lr",
        type=_common.non_negative_float,
        help=f"learning rate η (default: {CLASSIC_LR} for the classic example and "
        f"--weights, the model's training optimizer's for --model, else "
        f"{DEFAULT_MODEL_LR})",
    )
    step.add_argument(
        "--steps",
        type=_common.positive_int,
        default=1,
        metavar="N",
        help="repeat the step N times on the same example and show the error "
        "falling (the details are of the first step)",
    )


def _output_options(p: argparse.ArgumentParser) -> None:
    """The format and destination, colour, what the text shows, and the diagram."""
    out = p.add_argument_group("output")
    out.add_argument(
        "--format",
        choices=("text", "markdown", "latex", "json"),
        default="text",
        help="text (default; tables for the terminal), markdown, latex (a complete "
        "document) or json (the full trace, see deltaprop.explain)",
    )
    out.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    out.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="ANSI colour for text (auto: a terminal and NO_COLOR unset)",
    )
    out.add_argument(
        "--layer", type=int, metavar="L", help="show only layer L (1 = the first after the inputs)"
    )
    out.add_argument(
        "--units",
        metavar="NAMES",
        help="show only these units: h1,o2 (h2:3 with several hidden layers); "
        "with --layer, numbers such as 1,3",
    )
    out.add_argument(
        "--top",
        type=_common.positive_int,
        default=10,
        metavar="K",
        help="weights shown per layer, the K with the largest |Δw| (default 10)",
    )
    out.add_argument(
        "--max-units",
        type=_common.positive_int,
        default=10,
        metavar="N",
        help="units shown per layer, those with the largest |δ| (default 10)",
    )
    out.add_argument(
        "--detail",
        type=_common.non_negative_int,
        default=3,
        metavar="N",
        help="weights per layer whose multi-line optimizer rule is written out "
        "(not plain SGD; default 3)",
    )
    out.add_argument(
        "--digits", type=_common.positive_int, default=4, help="significant digits (default 4)"
    )
    out.add_argument(
        "--width",
        type=_common.non_negative_int,
        default=100,
        help="break longer lines (default 100; 0: never)",
    )
    out.add_argument(
        "--diagram",
        metavar="FILE.png|svg",
        help="also draw the network, units coloured by δ, edges by Δw",
    )


def _check_options(args: argparse.Namespace) -> None:
    if args.model and args.weights:
        raise UsageError("--model and --weights both give a network; choose one")
    for option in ("data", "target", "labels"):
        if getattr(args, option) is not None and not args.model:
            raise UsageError(f"--{option} needs --model (the network to explain)")
    if args.row is not None and not args.data:
        raise UsageError("--row needs --data (the data set to take the example from)")
    if args.data and (args.x is not None or args.t is not None):
        raise UsageError("--data gives the example; drop --x and --t, or --data")
    if args.model and not args.data and (args.x is None or args.t is None):
        raise UsageError("--model needs an example: --data (with --row), or --x and --t")
    if args.units is not None and not args.units.strip(","):
        raise UsageError("--units needs unit names such as h1,o2")
    if args.diagram:
        suffix = os.path.splitext(args.diagram)[1].lower()
        if suffix not in (".png", ".svg", ".pdf"):
            raise UsageError(f"--diagram must end in .png, .svg or .pdf; got {args.diagram!r}")


def _optimizer(args: argparse.Namespace, default: dict) -> Optimizer:
    spec: object = default
    if args.optimizer:
        text = args.optimizer.strip()
        if text.startswith("{"):
            try:
                spec = json.loads(text)
            except json.JSONDecodeError as exc:
                raise UsageError(f"--optimizer: not valid JSON: {exc}") from None
            if not isinstance(spec, dict) or "name" not in spec:
                raise UsageError(f'--optimizer JSON needs a "name"; got {text!r}')
        else:
            spec = {"name": text}
        # An optimizer chosen by name starts from the lr the example would use, not torch's.
        if "lr" not in spec:
            spec = {**spec, "lr": default.get("lr", DEFAULT_MODEL_LR)}
    if args.lr is not None:
        spec = {**spec, "lr": args.lr}  # type: ignore[dict-item]
    try:
        return get_optimizer(spec)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise UsageError(f"--optimizer: {exc}") from None


def _from_model(args: argparse.Namespace) -> tuple:
    """(net, x, t, default optimizer config, input names, output names) for --model."""
    net = _common.load_model(args.model)
    meta = net.metadata
    training = meta.get("training") or {}
    recorded = training.get("optimizer") if isinstance(training, dict) else None
    default = (
        dict(recorded)
        if isinstance(recorded, dict) and "name" in recorded
        else {"name": "SGD", "lr": DEFAULT_MODEL_LR}
    )
    class_names = meta.get("class_names")
    output_names = list(class_names) if class_names and len(class_names) == net.n_outputs else None
    feature_names = meta.get("feature_names")
    input_names = (
        list(feature_names) if feature_names and len(feature_names) == net.n_inputs else None
    )
    if not args.data:
        x = np.asarray(args.x, dtype=np.float64).reshape(1, -1)
        x = _common.model_inputs(net, net.check_inputs(x, name="--x"))[0]
        t = args.t[0] if len(args.t) == 1 and net.loss_function.name == "cross_entropy" else args.t
        return net, x, t, default, input_names, output_names

    dataset = _common.load_for_model(
        net, args.data, target=args.target, labels=args.labels, seed=args.seed
    )
    if dataset.y is None:
        raise UsageError(f"--data {args.data}: no target column; a training step needs targets")
    row = 0 if args.row is None else args.row
    if not -len(dataset) <= row < len(dataset):
        raise UsageError(
            f"--row {row} is outside {dataset.name}, which has {len(dataset)} "
            f"examples (rows 0..{len(dataset) - 1})"
        )
    X = net.check_inputs(dataset.X[[row]], name=f"{dataset.name} features")
    x = _common.model_inputs(net, X)[0]
    if dataset.task == "classification":
        y = _common.align_labels(dataset.subset([row]), meta.get("class_names"), "explain")
        if net.loss_function.name == "cross_entropy":
            t = int(y[0])
        elif net.n_outputs == 1:
            t = [float(y[0])]
        else:
            t = one_hot(y, net.n_outputs)[0]
    else:
        t = dataset.y[row]
    return net, x, t, default, input_names or list(dataset.feature_names), output_names


def _choose_color(args: argparse.Namespace) -> bool:
    if args.color == "always":
        return True
    if args.color == "never" or args.output:
        return False
    # https://no-color.org: any non-empty NO_COLOR turns colour off.
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def _write(text: str, path: str | None) -> None:
    if path:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
        return
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    try:
        text.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        # A terminal that cannot show δ or ← still gets every number.
        text = text.encode(encoding, "replace").decode(encoding)
    sys.stdout.write(text)


def _from_example(args: argparse.Namespace) -> tuple:
    """(net, x, t, default optimizer config, None, None): the classic example or --weights."""
    example = load_example(args.weights) if args.weights else classic_example()
    net = example.net
    x = args.x if args.x is not None else example.x
    t = args.t if args.t is not None else example.t
    if x is None or t is None:
        raise UsageError(f'{args.weights} has no "x" and "t"; give --x and --t')
    if args.t is not None and len(args.t) == 1 and net.loss_function.name == "cross_entropy":
        t = args.t[0]
    default = {"name": "SGD", "lr": example.lr if example.lr is not None else CLASSIC_LR}
    return net, x, t, default, None, None


def _render_options(args: argparse.Namespace) -> dict:
    """Trace.render's options from the output options (JSON takes none: it holds everything)."""
    if args.format == "json":
        return {}
    units = None if args.units is None else [u for u in args.units.split(",") if u.strip()]
    return {
        "digits": args.digits,
        "max_units": args.max_units,
        "top": args.top,
        "detail": args.detail,
        "layer": args.layer,
        "units": units,
        "color": _choose_color(args) if args.format == "text" else False,
        "width": args.width,
    }


def run(args: argparse.Namespace) -> int:
    _check_options(args)
    net, x, t, default, input_names, output_names = (
        _from_model(args) if args.model else _from_example(args)
    )
    optimizer = _optimizer(args, default)
    try:
        trace = explain(
            net,
            x,
            t,
            optimizer,
            steps=args.steps,
            input_names=input_names,
            output_names=output_names,
        )
    except TrainingDivergedError as exc:
        raise ValueError(str(exc)) from None
    try:
        text = trace.render(args.format, **_render_options(args))
    except ValueError as exc:  # --layer or --units that the network does not have
        raise UsageError(str(exc)) from None
    _write(text, args.output)
    if args.diagram:
        # plot.diagram imports matplotlib at its top: loaded only when a diagram is asked for.
        from deltaprop.plot.diagram import network

        network(net, trace, path=args.diagram, show="delta")
        print(f"diagram: {args.diagram}", file=sys.stderr)
    return 0
