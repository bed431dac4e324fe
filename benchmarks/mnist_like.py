"""Write an MNIST-shaped CSV made from scikit-learn's real 8x8 digits (no download needed).

    python benchmarks/mnist_like.py OUT.csv [--rows 10000] [--seed 0] [--max-value 1]

There is no MNIST in the package or its test data, so the benchmarks of the defaults build
MNIST-*shaped* data instead: each row takes one of the 1797 real handwritten digits of
``sklearn.datasets.load_digits``, enlarges it to 20x20, distorts it at random (rotation, scale,
shear, an elastic warp, stroke thickness, noise) and centres it by its centre of mass in a 28x28
frame, as MNIST's own preparation does. The result has what made the default scaling fail on
real MNIST: 784 pixel columns in [0, 1] (or 0..``--max-value``), most of them zero in almost
every image, so their standard deviations are tiny. It is *not* MNIST: rows drawn from the same
base digit land on both sides of a split, so accuracies here are no estimate of MNIST's.

Columns: ``label`` first, then ``pixel0`` .. ``pixel783``, as the usual Kaggle MNIST CSV.
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy import ndimage


def images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` 28x28 images in [0, 1] and their digit labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(seed)
    base = rng.integers(0, len(digits.images), size=n)
    out = np.zeros((n, 28, 28))
    for i, k in enumerate(base):
        out[i] = _distorted(digits.images[k] / 16.0, rng)
    return out, digits.target[base]


def _distorted(small: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    img = ndimage.zoom(small, 20 / 8, order=1)  # 20x20, MNIST's digit box
    angle = np.deg2rad(rng.uniform(-7, 7))
    scale = rng.uniform(0.9, 1.1)
    shear = rng.uniform(-0.15, 0.15)
    rotate = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    matrix = rotate @ np.array([[1.0, shear], [0.0, 1.0]]) / scale
    frame = np.zeros((28, 28))
    frame[4:24, 4:24] = img
    centre = np.array([13.5, 13.5])
    frame = ndimage.affine_transform(frame, matrix, offset=centre - matrix @ centre, order=1)
    # An elastic warp (Simard et al. 2003): smoothed random displacement fields.
    dx, dy = (ndimage.gaussian_filter(rng.uniform(-1, 1, (28, 28)), 4) * 12 for _ in range(2))
    rows, cols = np.meshgrid(np.arange(28), np.arange(28), indexing="ij")
    frame = ndimage.map_coordinates(frame, [rows + dy, cols + dx], order=1)
    # Enlarged 8x8 strokes are blurred and wide; a contrast curve makes them MNIST's pen width.
    threshold = rng.uniform(0.3, 0.5)
    frame = np.clip((frame - threshold) / 0.35, 0, 1)
    frame = np.clip(frame + rng.normal(0, 0.03, frame.shape) * (frame > 0.05), 0, 1)
    # Centre by the centre of mass, as MNIST did, with a little jitter.
    cy, cx = ndimage.center_of_mass(frame)
    shift = (13.5 - cy + rng.uniform(-1, 1), 13.5 - cx + rng.uniform(-1, 1))
    frame = ndimage.shift(frame, shift, order=1)
    frame[frame < 0.02] = 0.0  # MNIST's background is exactly 0
    return np.clip(frame, 0, 1)


def write_csv(path: str, X: np.ndarray, y: np.ndarray, max_value: int) -> None:
    pixels = X.reshape(len(X), -1)
    if max_value == 1:
        body = np.round(pixels, 4)
        fmt = ["%d"] + ["%.4g"] * pixels.shape[1]
    else:
        body = np.round(pixels * max_value)
        fmt = ["%d"] * (1 + pixels.shape[1])
    header = ",".join(["label", *(f"pixel{j}" for j in range(pixels.shape[1]))])
    np.savetxt(path, np.column_stack([y, body]), fmt=fmt, delimiter=",", header=header, comments="")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--rows", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-value", type=int, default=1, help="1: pixels in [0, 1]; 255: 0..255")
    args = parser.parse_args()
    X, y = images(args.rows, args.seed)
    write_csv(args.out, X, y, args.max_value)


if __name__ == "__main__":
    main()
