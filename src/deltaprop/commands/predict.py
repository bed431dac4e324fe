"""deltaprop predict MODEL DATA: predictions as CSV, with class names."""

from __future__ import annotations

import argparse

import numpy as np

from deltaprop.commands import _common, _train_options
from deltaprop.data.datasets import BUILTINS, load_dataset, load_features

HELP = "predict with a saved model; writes CSV to a file or stdout"
EXAMPLES = """examples:
  deltaprop predict model.safetensors new_flowers.csv               # CSV to stdout
  deltaprop predict model.safetensors new_flowers.csv -o predictions.csv --proba
  deltaprop predict model.safetensors digits --proba | head
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="a model file written by 'deltaprop train' or net.save()")
    p.add_argument(
        "data",
        help="a .csv (feature columns by the model's names), .npy/.npz, IDX "
        "images file, or a built-in data set name",
    )
    p.add_argument("-o", "--output", help="CSV file to write (default: stdout)")
    p.add_argument(
        "--proba", action="store_true", help="classification: add one probability column per class"
    )
    p.add_argument("--seed", type=int, default=0, help="seed for generated built-in data sets")
    _train_options.add_csv_options(p)


def run(args: argparse.Namespace) -> int:
    net = _common.load_model(args.model)
    meta = net.metadata
    if args.data in BUILTINS:
        X = load_dataset(args.data, seed=args.seed).X
    elif meta.get("feature_names"):
        X = load_features(
            args.data,
            meta["feature_names"],
            categorical=meta.get("categorical"),
            delimiter=args.delimiter,
            missing=_common.missing_policy(net),
        )
    else:
        X = load_dataset(
            args.data,
            require_target=False,
            delimiter=args.delimiter,
            missing=_common.missing_policy(net),
        ).X
    X = _common.fill_missing(net, X)
    X = _common.model_inputs(net, net.check_inputs(X, name=f"{args.data} features"))
    outputs = _common.model_outputs(net, X, args.data)
    names = meta.get("class_names")
    if meta.get("task", "classification") == "classification" and names is not None:
        labels = _common.predicted_labels(outputs)
        header = ["prediction"]
        rows = [[names[label]] for label in labels]
        if args.proba:
            probabilities = outputs if outputs.shape[1] > 1 else None
            if probabilities is None:  # one sigmoid output: P(class 1)
                probabilities = np.column_stack([1 - outputs[:, 0], outputs[:, 0]])
            header += [f"p({name})" for name in names]
            rows = [row + [f"{p:.6g}" for p in probs] for row, probs in zip(rows, probabilities)]
    else:
        header = (
            ["prediction"]
            if outputs.shape[1] == 1
            else [f"prediction_{i}" for i in range(outputs.shape[1])]
        )
        rows = [[f"{v:.8g}" for v in row] for row in outputs]
    _common.write_csv(rows, header, args.output)
    return 0
