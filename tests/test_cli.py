"""End to end: the deltaprop command run as a subprocess in a temporary folder."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def deltaprop(*args, cwd, check_rc=0):
    result = subprocess.run(
        [sys.executable, "-m", "deltaprop", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_COLOR": "1"},
    )
    if check_rc is not None:
        assert result.returncode == check_rc, (result.stdout, result.stderr)
    return result


def assert_png(path: Path):
    assert path.read_bytes()[:8] == PNG_MAGIC, path
    image = imread(path)
    assert image.shape[0] > 50 and image.shape[1] > 50


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """`deltaprop train` with no options at all, as a newcomer types it."""
    folder = tmp_path_factory.mktemp("digits")
    result = deltaprop("train", cwd=folder)
    return folder, result


def test_train_with_no_arguments_learns_digits(digits_run):
    folder, result = digits_run
    lines = result.stdout.splitlines()
    accuracy = [line for line in lines if line.startswith("test accuracy: ")]
    assert accuracy, result.stdout
    assert float(accuracy[0].split(": ")[1]) >= 0.9
    assert accuracy[0].startswith("test accuracy: 0.9") and len(accuracy[0]) == len(
        "test accuracy: 0.9xxx"
    )
    out_line = [line for line in lines if line.startswith("output folder: ")][0]
    run_dir = folder / out_line.split(": ", 1)[1]
    assert run_dir.parent.name == "runs" and run_dir.is_dir()
    for name in ("model.safetensors", "history.csv", "history.json"):
        assert (run_dir / name).is_file()
    for name in ("training.png", "confusion_matrix.png", "misclassified.png"):
        assert_png(run_dir / name)
    # The progress bar reports per epoch on stderr, with loss and accuracy.
    assert "30/30" in result.stderr and "loss=" in result.stderr and "accuracy=" in result.stderr
    history = json.loads((run_dir / "history.json").read_text())
    assert len(history["loss"]) == 30
    with open(run_dir / "history.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 30 and float(rows[-1]["loss"]) == pytest.approx(history["loss"][-1])


def model_of(folder, result) -> Path:
    line = [ln for ln in result.stdout.splitlines() if ln.startswith("model: ")][0]
    return folder / line.split(": ", 1)[1]


def test_evaluate_predict_and_info_on_the_digits_model(digits_run):
    folder, result = digits_run
    model = model_of(folder, result)
    evaluated = deltaprop("evaluate", model, "digits", cwd=folder)
    accuracy = float(evaluated.stdout.split("accuracy: ")[1].split()[0])
    assert accuracy > 0.9
    assert "confusion matrix" in evaluated.stdout

    predicted = deltaprop("predict", model, "digits", "--proba", cwd=folder)
    rows = list(csv.reader(predicted.stdout.splitlines()))
    assert rows[0] == ["prediction"] + [f"p({d})" for d in range(10)]
    assert len(rows) == 1798
    from sklearn.datasets import load_digits

    truth = load_digits().target
    hits = np.mean([row[0] == str(t) for row, t in zip(rows[1:], truth)])
    assert hits == pytest.approx(accuracy, abs=5e-5)  # evaluate prints 4 decimals
    assert all(abs(sum(map(float, row[1:])) - 1) < 1e-4 for row in rows[1:50])

    out = folder / "pred.csv"
    deltaprop("predict", model, "digits", "-o", out, cwd=folder)
    assert out.read_text().splitlines()[1:] == [row[0] for row in rows[1:]]

    info = deltaprop("info", model, cwd=folder).stdout
    assert "sizes: 64 -> 256 -> 10" in info and "parameters: 19,210" in info
    assert "training test accuracy" in info
    meta = json.loads(deltaprop("info", model, "--json", cwd=folder).stdout)
    assert meta["metadata"]["class_names"] == [str(d) for d in range(10)]


IRIS_LIKE = [
    ("5.1", "3.5", "1.4", "0.2", "setosa"),
    ("7.0", "3.2", "4.7", "1.4", "versicolor"),
    ("6.3", "3.3", "6.0", "2.5", "virginica"),
]


def write_flowers(path: Path, n=150, with_target=True):
    rng = np.random.default_rng(0)
    centres = {name: np.array(list(map(float, vals))) for *vals, name in IRIS_LIKE}
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        header = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
        writer.writerow(["species", *header] if with_target else header[::-1])
        for i in range(n):
            name = list(centres)[i % 3]
            values = centres[name] + rng.normal(scale=0.2, size=4)
            if with_target:
                writer.writerow([name, *(f"{v:.2f}" for v in values)])
            else:  # other column order: columns are matched by name
                writer.writerow([f"{v:.2f}" for v in values[::-1]])


def test_train_evaluate_predict_on_a_csv(tmp_path):
    data = tmp_path / "flowers.csv"
    write_flowers(data)
    trained = deltaprop(
        "train",
        "--data",
        data,
        "--target",
        "species",
        "--hidden",
        "8",
        "--lr",
        "0.01",
        "--epochs",
        "40",
        "--out",
        tmp_path / "run",
        "--quiet",
        "--no-plots",
        cwd=tmp_path,
    )
    assert "test accuracy: 1.0000" in trained.stdout
    model = tmp_path / "run" / "model.safetensors"
    evaluated = deltaprop("evaluate", model, data, cwd=tmp_path)
    assert "accuracy: 1.0000" in evaluated.stdout
    new = tmp_path / "new.csv"
    write_flowers(new, n=6, with_target=False)
    predicted = deltaprop("predict", model, new, cwd=tmp_path).stdout.splitlines()
    assert predicted == ["prediction"] + ["setosa", "versicolor", "virginica"] * 2


def test_regression_csv(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.uniform(-1, 1, size=(200, 2))
    y = 3 * X[:, 0] - 2 * X[:, 1] ** 2
    data = tmp_path / "houses.csv"
    np.savetxt(data, np.column_stack([X, y]), delimiter=",", header="rooms,age,price", comments="")
    result = deltaprop(
        "train",
        "--data",
        data,
        "--target",
        "price",
        "--task",
        "regression",
        "--hidden",
        "16",
        "--activation",
        "tanh",
        "--lr",
        "0.01",
        "--epochs",
        "60",
        "--out",
        tmp_path / "run",
        "--quiet",
        cwd=tmp_path,
    )
    r2 = float(result.stdout.split("test R^2: ")[1].split()[0])
    assert r2 > 0.9
    assert_png(tmp_path / "run" / "training.png")
    predicted = deltaprop(
        "predict", tmp_path / "run" / "model.safetensors", data, cwd=tmp_path
    ).stdout.splitlines()
    assert predicted[0] == "prediction" and len(predicted) == 201


def test_two_dimensional_data_gets_a_decision_boundary(tmp_path):
    deltaprop(
        "train",
        "--data",
        "moons",
        "--hidden",
        "16",
        "--activation",
        "tanh",
        "--epochs",
        "20",
        "--out",
        tmp_path / "run",
        "--quiet",
        cwd=tmp_path,
    )
    assert_png(tmp_path / "run" / "decision_boundary.png")


def test_gradcheck_command(tmp_path):
    result = deltaprop("gradcheck", "--sizes", "3,4,2", "--activation", "tanh", cwd=tmp_path)
    assert "PASS" in result.stdout


@pytest.mark.parametrize(
    "args, rc, message",
    [
        (["train", "--hidden", "0"], 2, "--hidden: layer widths must be >= 1"),
        (["train", "--optimizer", "lbfgs"], 2, "--optimizer: invalid choice: 'lbfgs'"),
        (["train", "--epochs", "-3"], 2, "--epochs: expected a positive integer"),
        (["train", "--momentum", "0.9"], 2, "--momentum applies to sgd and rmsprop"),
        (["train", "--activation", "swish"], 2, "Unknown activation 'swish'"),
        (["train", "--data", "nosuchset"], 1, "nosuchset"),
        (["evaluate", "missing.safetensors", "digits"], 1, "missing.safetensors"),
        (["frobnicate"], 2, "invalid choice: 'frobnicate'"),
    ],
)
def test_bad_options_exit_with_one_line_and_code(tmp_path, args, rc, message):
    result = deltaprop(*args, cwd=tmp_path, check_rc=rc)
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_bad_csv_names_file_and_line(tmp_path):
    data = tmp_path / "bad.csv"
    data.write_text("a,b,label\n1,2,x\n3,oops,y\n4,5,x\n")
    result = deltaprop("train", "--data", data, "--quiet", cwd=tmp_path, check_rc=1)
    assert "bad.csv" in result.stderr and "line 3" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    debug = deltaprop("train", "--data", data, "--quiet", "--debug", cwd=tmp_path, check_rc=None)
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_not_a_model_file(tmp_path):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(os.urandom(200))
    result = deltaprop("info", junk, cwd=tmp_path, check_rc=1)
    assert "junk.safetensors" in result.stderr and "Traceback" not in result.stderr


def test_help_shows_examples_for_every_command(tmp_path):
    top = deltaprop("--help", cwd=tmp_path).stdout
    for command in ("train", "evaluate", "predict", "info", "gradcheck", "explain"):
        assert command in top
        assert "examples:" in deltaprop(command, "--help", cwd=tmp_path).stdout


@pytest.mark.parametrize("args", [["--help"], ["train", "--help"], ["explain", "--help"]])
def test_help_loads_none_of_the_heavy_dependencies(tmp_path, args):
    # Which modules a command pulls in is a deterministic proxy for how fast it starts: the
    # figures (matplotlib), the kernels (numba) and scikit-learn load only when they are used.
    code = (
        "import contextlib, io, json, sys\n"
        "from deltaprop.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        f"    main({args!r})\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    top = {name.split(".")[0] for name in json.loads(result.stdout)}
    assert "deltaprop" in top and "argparse" in top
    assert not top & {"matplotlib", "numba", "llvmlite", "sklearn", "scipy", "tqdm"}, top
