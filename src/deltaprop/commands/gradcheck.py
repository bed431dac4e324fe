"""deltaprop gradcheck: backpropagation's gradients against finite differences."""

from __future__ import annotations

import argparse

import numpy as np

from deltaprop.cli import UsageError
from deltaprop.commands import _common
from deltaprop.core.gradcheck import gradcheck
from deltaprop.model import Network

HELP = "check backpropagation's gradients against central finite differences"
EXAMPLES = """examples:
  deltaprop gradcheck                                   # a small default network
  deltaprop gradcheck --sizes 4,8,8,3 --activation tanh --loss cross_entropy
  deltaprop gradcheck --model model.safetensors --examples 5
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="check a saved model (on random inputs) instead")
    p.add_argument(
        "--sizes",
        type=_common.sizes,
        default=[4, 5, 3],
        help="layer widths, inputs first (default: 4,5,3)",
    )
    p.add_argument("--activation", default="sigmoid")
    p.add_argument("--output-activation")
    p.add_argument(
        "--loss", default="mse", choices=("mse", "cross_entropy", "binary_cross_entropy")
    )
    p.add_argument(
        "--examples",
        type=_common.positive_int,
        default=8,
        help="random examples in the batch (default: 8)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--tolerance",
        type=_common.positive_float,
        default=1e-6,
        help="largest relative error that passes (default: 1e-6)",
    )


def run(args: argparse.Namespace) -> int:
    if args.model:
        net = _common.load_model(args.model)
    else:
        if len(args.sizes) < 2:
            raise UsageError("--sizes needs at least 2 widths (inputs, outputs)")
        output = args.output_activation or {
            "cross_entropy": "softmax",
            "binary_cross_entropy": "sigmoid",
        }.get(args.loss)
        try:
            net = Network(
                args.sizes,
                activation=args.activation,
                output_activation=output,
                loss=args.loss,
                seed=args.seed,
            )
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    rng = np.random.default_rng(args.seed)
    X = rng.normal(size=(args.examples, net.n_inputs))
    if net.loss_function.name == "cross_entropy":
        T = rng.integers(0, net.n_outputs, size=args.examples)
    else:
        T = rng.uniform(size=(args.examples, net.n_outputs))
    error = gradcheck(net, X, T)
    verdict = "PASS" if error < args.tolerance else "FAIL"
    print(f"network: {net}")
    print(f"max relative error: {error:.3e} (tolerance {args.tolerance:g}): {verdict}")
    return 0 if verdict == "PASS" else 1
