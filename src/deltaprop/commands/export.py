"""deltaprop export MODEL --format onnx|torch -o OUT: a model file as ONNX or a PyTorch state
dict (safetensors, with the Python that builds the matching torch.nn.Sequential printed)."""

from __future__ import annotations

import argparse
import sys

from deltaprop.cli import UsageError
from deltaprop.commands import _common
from deltaprop.data.preprocessing import Scaler
from deltaprop.export import onnx as onnx_export
from deltaprop.export import torch as torch_export
from deltaprop.export.equivalents import OPSET
from deltaprop.model import Network

HELP = "export a model file to ONNX, or to a PyTorch state dict (safetensors)"
EXAMPLES = f"""examples:
  deltaprop export model.safetensors --format onnx -o model.onnx
  deltaprop export model.safetensors --format onnx -o model32.onnx --dtype float32
  deltaprop export model.safetensors --format torch -o state_dict.safetensors

ONNX: one input 'input' [N, n_inputs], one output 'output' [N, n_outputs], opset {OPSET} unless
--opset says otherwise (needs pip install 'deltaprop[onnx]'); a model trained with input
scaling scales its inputs in the graph first, so it takes raw features (--no-scaling: not).
torch: a state dict with
torch.nn.Sequential's names (0.weight, 0.bias, 2.weight, ...); the command prints the Python
that builds the module and loads it (writing it needs no PyTorch).
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="a model file written by 'deltaprop train' or net.save()")
    p.add_argument("--format", required=True, choices=("onnx", "torch"), help="what to write")
    p.add_argument("-o", "--output", required=True, help="the file to write (atomically)")
    p.add_argument(
        "--opset", type=_common.positive_int, help=f"onnx: the ONNX opset (default {OPSET})"
    )
    p.add_argument(
        "--dtype",
        choices=("float32", "float64"),
        help="onnx: the graph's input and weight type (default: the model's)",
    )
    p.add_argument(
        "--no-scaling",
        action="store_true",
        help="onnx: leave out the input scaling the model was trained with (the graph then "
        "takes inputs already scaled)",
    )


def run(args: argparse.Namespace) -> int:
    if args.format == "torch" and (args.opset is not None or args.dtype is not None):
        raise UsageError("--opset and --dtype apply to --format onnx only")
    net = _common.load_model(args.model)
    scaler = _scaler(net)
    try:
        if args.format == "onnx":
            _export_onnx(net, scaler, args)
        else:
            torch_export.save_state_dict(net, args.output)
            print(f"wrote {args.output}: a state dict for this torch.nn.Sequential:\n")
            print(torch_export.module_source(net, args.output), end="")
    except ModuleNotFoundError as exc:  # an optional extra not installed: say which, no traceback
        if args.debug:
            raise
        print(f"deltaprop export: error: {exc}", file=sys.stderr)
        return 1
    if scaler is not None and (args.format == "torch" or args.no_scaling):
        print(
            f"note: this model scales its inputs ({scaler.kind}, as in training); this export "
            "is the network alone, so give it inputs already scaled: (x - offset) / scale, "
            "with the offset and scale in the model's metadata 'scaler'",
            file=sys.stderr,
        )
    return 0


def _scaler(net: Network) -> Scaler | None:
    """The input scaling the model was trained with, or None."""
    state = net.metadata.get("scaler")
    if not state:
        return None
    scaler = Scaler.from_dict(state)
    return None if scaler.kind == "none" else scaler


def _export_onnx(net: Network, scaler: Scaler | None, args: argparse.Namespace) -> None:
    scaling = None if scaler is None or args.no_scaling else (scaler.offset, scaler.scale)
    model = onnx_export.network_to_onnx(
        net, args.output, opset=args.opset, dtype=args.dtype, input_scaling=scaling
    )
    dtype = args.dtype or net.dtype.name
    print(
        f"wrote {args.output}: ONNX opset {model.opset_import[0].version}, input "
        f"'input' [N, {net.n_inputs}] {dtype} -> output 'output' [N, {net.n_outputs}]"
    )
    if scaling is not None:
        print(
            f"the graph scales its inputs first ({scaler.kind}, as in training): give it raw "
            "features, as to 'deltaprop predict'"
        )
