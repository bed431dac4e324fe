"""deltaprop evaluate MODEL DATA: loss and accuracy (or R²) of a saved model on labelled data."""

from __future__ import annotations

import argparse

import numpy as np

from deltaprop.commands import _common, _train_options
from deltaprop.data.datasets import load_features
from deltaprop.data.preprocessing import one_hot

HELP = "measure a saved model on labelled data (accuracy, loss, confusion matrix)"
EXAMPLES = """examples:
  deltaprop evaluate runs/20261129-101500/model.safetensors digits
  deltaprop evaluate model.safetensors test.csv --target species
  deltaprop evaluate model.safetensors t10k-images-idx3-ubyte.gz --labels t10k-labels-idx1-ubyte.gz
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="a model file written by 'deltaprop train' or net.save()")
    p.add_argument("data", help="a built-in data set name or a .csv/.npy/.npz/IDX file")
    p.add_argument("--target", help="CSV target column (default: the model's, else the last)")
    p.add_argument("--labels", help="IDX labels file, for an IDX images data file")
    p.add_argument("--seed", type=int, default=0, help="seed for generated built-in data sets")
    _train_options.add_csv_options(p)


def run(args: argparse.Namespace) -> int:
    net = _common.load_model(args.model)
    meta = net.metadata
    task = _common.model_task(net)
    dataset = _common.load_for_model(
        net,
        args.data,
        target=args.target,
        labels=args.labels,
        seed=args.seed,
        delimiter=args.delimiter,
    )
    X = dataset.X
    if meta.get("categorical"):  # the file's categories one-hot encoded as in training
        X = load_features(
            args.data,
            meta["feature_names"],
            categorical=meta["categorical"],
            delimiter=args.delimiter,
            missing=_common.missing_policy(net),
        )
    X = _common.fill_missing(net, X)
    X = _common.model_inputs(net, net.check_inputs(X, name=f"{dataset.name} features"))
    outputs = _common.model_outputs(net, X, dataset.name)
    print(f"model: {args.model} ({net})")
    print(f"data: {dataset.name}, {len(dataset)} examples")
    if task == "classification":
        y = _common.align_labels(dataset, meta.get("class_names"), "evaluate")
        T = y if net.loss_function.name == "cross_entropy" else one_hot(y, net.n_outputs, net.dtype)
        predicted = _common.predicted_labels(outputs)
        accuracy = float(np.mean(predicted == y))
        print(f"accuracy: {accuracy:.4f}")
        print(f"loss: {net.loss(X, T):.4f}")
        names = meta.get("class_names") or [str(i) for i in range(max(net.n_outputs, 2))]
        _print_confusion(y, predicted, names)
    else:
        print(f"R^2: {_common.r2(dataset.y, outputs):.4f} (sklearn.metrics.r2_score)")
        print(f"loss: {net.loss(X, dataset.y):.4f}")
    return 0


def _print_confusion(y: np.ndarray, predicted: np.ndarray, names: list[str]) -> None:
    if len(names) > 20:
        print(f"confusion matrix: not printed for {len(names)} classes (more than 20)")
        return
    # plot.figures imports matplotlib at its top: loaded only when a confusion matrix is printed.
    from deltaprop.plot.figures import confusion_counts

    counts = confusion_counts(y, predicted, len(names))
    width = max(5, *(len(n) for n in names), len(str(counts.max())) + 1)
    print("confusion matrix (rows: true, columns: predicted)")
    print(" " * width + "".join(f"{n:>{width}}" for n in names))
    for name, row in zip(names, counts):
        print(f"{name:>{width}}" + "".join(f"{c:>{width}}" for c in row))
