"""deltaprop export MODEL --format onnx|torch -o OUT: a model file as ONNX or a PyTorch state
dict (safetensors, with the Python that builds the matching torch.nn.Sequential printed)."""

from __future__ import annotations

import argparse
import sys

from deltaprop.cli import UsageError
from deltaprop.commands import _common
from deltaprop.export import torch as torch_export
from deltaprop.export.equivalents import OPSET

HELP = "export a model file to ONNX, or to a PyTorch state dict (safetensors)"
EXAMPLES = f"""examples:
  deltaprop export model.safetensors --format onnx -o model.onnx
  deltaprop export model.safetensors --format onnx -o model32.onnx --dtype float32
  deltaprop export model.safetensors --format torch -o state_dict.safetensors

ONNX: one input 'input' [N, n_inputs], one output 'output' [N, n_outputs], opset {OPSET} unless
--opset says otherwise (needs pip install 'deltaprop[onnx]'). torch: a state dict with
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


def run(args: argparse.Namespace) -> int:
    if args.format == "torch" and (args.opset is not None or args.dtype is not None):
        raise UsageError("--opset and --dtype apply to --format onnx only")
    net = _common.load_model(args.model)
    try:
        if args.format == "onnx":
            model = net.to_onnx(args.output, opset=args.opset, dtype=args.dtype)
            dtype = args.dtype or net.dtype.name
            print(
                f"wrote {args.output}: ONNX opset {model.opset_import[0].version}, input "
                f"'input' [N, {net.n_inputs}] {dtype} -> output 'output' [N, {net.n_outputs}]"
            )
        else:
            torch_export.save_state_dict(net, args.output)
            print(f"wrote {args.output}: a state dict for this torch.nn.Sequential:\n")
            print(torch_export.module_source(net, args.output), end="")
    except ModuleNotFoundError as exc:  # an optional extra not installed: say which, no traceback
        if args.debug:
            raise
        print(f"deltaprop export: error: {exc}", file=sys.stderr)
        return 1
    scaler = net.metadata.get("scaler")
    if scaler and scaler.get("kind", "none") != "none":
        print(
            f"note: this model scales its inputs ({scaler['kind']}, stored in its metadata "
            "'scaler'); the export takes inputs already scaled so",
            file=sys.stderr,
        )
    return 0
