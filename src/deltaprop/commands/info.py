"""deltaprop info MODEL: architecture, parameter count and training metadata."""

from __future__ import annotations

import argparse
import json

from deltaprop.commands import _common
from deltaprop.io.model_file import read_info

HELP = "show a model file's architecture, parameter count and training metadata"
EXAMPLES = """examples:
  deltaprop info runs/20261129-101500/model.safetensors
  deltaprop info model.safetensors --json
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="a model file")
    p.add_argument("--json", action="store_true", help="print everything as JSON")


def run(args: argparse.Namespace) -> int:
    net = _common.load_model(args.model)
    digest = read_info(args.model).get("digest")
    if args.json:
        print(
            json.dumps(
                {
                    "config": net.config(),
                    "parameters": net.n_parameters,
                    "metadata": net.metadata,
                    "digest": digest,  # verified; None for a file written before digests
                },
                indent=2,
            )
        )
        return 0
    shown = _common.printable
    print(f"model: {shown(args.model)}")
    print(f"sizes: {' -> '.join(str(n) for n in net.sizes)}")
    for i, layer in enumerate(net.layers):
        print(
            f"  layer {i}: {layer.n_in} -> {layer.n_out}, {layer.activation.name}, "
            f"W {layer.W.shape[0]}x{layer.W.shape[1]} + b {layer.b.shape[0]}"
        )
    print(f"loss: {net.loss_function.name}")
    print(f"dtype: {net.dtype.name}")
    print(f"parameters: {net.n_parameters:,}")
    if digest:
        print(f"digest: blake2b-256, verified ({digest[:16]}…)")
    else:
        print("digest: none (written before deltaprop sealed its files: not verifiable)")
    meta = net.metadata
    _print_estimator(meta.get("sklearn"))
    for key in ("task", "dataset", "class_names", "created"):
        if meta.get(key) is not None:
            value = meta[key]
            text = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
            print(f"{key.replace('_', ' ')}: {shown(text)}")
    if meta.get("scaler"):
        print(f"input scaling: {shown(meta['scaler'].get('kind', '?'))}")
    for key, value in (meta.get("training") or {}).items():
        text = json.dumps(value) if isinstance(value, (dict, list)) else str(value)
        print(f"training {shown(key.replace('_', ' '))}: {shown(text)}")
    return 0


def _print_estimator(entry: object) -> None:
    """The scikit-learn estimator an ``est.save`` file holds (deltaprop.sklearn.load reads it)."""
    if not isinstance(entry, dict) or not isinstance(entry.get("params"), dict):
        return
    params = entry["params"]
    shown = ", ".join(
        f"{k}={params[k]!r}" for k in ("solver", "activation", "alpha", "loss") if k in params
    )
    print(f"scikit-learn estimator: deltaprop.sklearn.{entry.get('estimator')}({shown})")
    fitted = entry.get("fitted") or {}
    if "n_iter_" in fitted and "loss_" in fitted:
        print(f"fitted: {fitted['n_iter_']} iterations, loss {fitted['loss_']}")
