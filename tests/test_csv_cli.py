"""The command line on real-world CSV: delimiters, missing cells, categories, R².

Each run is the deltaprop command in a subprocess; what predict and evaluate print is checked
against the model applied by hand (its recorded encoding, filling and scaling).
"""

import csv
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from sklearn.metrics import r2_score

import deltaprop as dp
from deltaprop.data.preprocessing import Imputer, Scaler


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


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """A ';'-separated table with a text column, missing cells, trained with --impute."""
    folder = tmp_path_factory.mktemp("shop")
    rng = np.random.default_rng(0)
    lines = ["colour;size;weight;bought"]
    for i in range(240):
        colour = ["red", "green", "blue"][i % 3]
        size = rng.normal(5, 2)
        bought = "yes" if (colour == "red") != (size > 5) else "no"
        size_cell = "" if i % 17 == 0 else f"{size:.3f}"
        lines.append(f"{'NA' if i % 23 == 0 else colour};{size_cell};{rng.uniform():.3f};{bought}")
    (folder / "shop.csv").write_text("\n".join(lines) + "\n")
    refused = deltaprop(
        "train", "--data", "shop.csv", "--out", "r0", "--quiet", cwd=folder, check_rc=1
    )
    deltaprop(
        "train",
        "--data",
        "shop.csv",
        "--impute",
        "mean",
        "--delimiter",
        ";",
        "--epochs",
        "40",
        "--hidden",
        "16",
        "--out",
        "run",
        "--quiet",
        "--no-plots",
        cwd=folder,
    )
    return folder, refused


def test_a_missing_cell_is_refused_in_one_line_naming_it(shop):
    _, refused = shop
    assert refused.stderr.count("\n") == 1, refused.stderr
    for fragment in ("shop.csv, line 2", "column 'size'", "a missing value", "--impute"):
        assert fragment in refused.stderr, refused.stderr


def test_the_model_records_its_encoding_and_filling(shop):
    folder, _ = shop
    meta = dp.load(folder / "run" / "model.safetensors").metadata
    assert meta["feature_names"] == ["colour=blue", "colour=green", "colour=red", "size", "weight"]
    assert meta["categorical"] == {
        "columns": ["colour", "size", "weight"],
        "categories": {"colour": ["blue", "green", "red"]},
    }
    assert meta["imputer"]["strategy"] == "mean" and len(meta["imputer"]["fill"]) == 5
    assert meta["scaler"]["kind"] == "auto"


def test_predict_applies_the_recorded_encoding_filling_and_scaling(shop):
    folder, _ = shop
    # Columns in another order, a comma this time, a missing size and a missing colour.
    (folder / "new.csv").write_text("weight,size,colour\n0.5,7.5,red\n0.2,,blue\n0.9,2,?\n")
    out = deltaprop("predict", "run/model.safetensors", "new.csv", "--proba", cwd=folder).stdout
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["prediction", "p(no)", "p(yes)"]
    net = dp.load(folder / "run" / "model.safetensors")
    nan = np.nan
    X = np.array([[0, 0, 1, 7.5, 0.5], [1, 0, 0, nan, 0.2], [nan, nan, nan, 2, 0.9]])
    X = Imputer.from_dict(net.metadata["imputer"]).transform(X)
    expected = net.predict(Scaler.from_dict(net.metadata["scaler"]).transform(X))
    printed = np.array([[float(p) for p in row[1:]] for row in rows[1:]])
    np.testing.assert_allclose(printed, expected, rtol=1e-5)
    assert [row[0] for row in rows[1:]] == [["no", "yes"][k] for k in expected.argmax(axis=1)]


def test_predict_refuses_a_category_it_never_saw(shop):
    folder, _ = shop
    (folder / "odd.csv").write_text("colour;size;weight\nred;1;0.5\npurple;2;0.5\n")
    result = deltaprop("predict", "run/model.safetensors", "odd.csv", cwd=folder, check_rc=1)
    assert "odd.csv, line 3, column 'colour': 'purple' is not a category" in result.stderr


def test_evaluate_reads_the_data_as_the_model_was_trained(shop):
    folder, _ = shop
    out = deltaprop("evaluate", "run/model.safetensors", "shop.csv", cwd=folder).stdout
    accuracy = float(out.split("accuracy: ")[1].split()[0])
    assert accuracy > 0.8, out


def test_r2_is_sklearns_uniform_average_over_targets(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 3))
    # Two targets of very different spread: a pooled R² would weigh the wide one only.
    y = np.column_stack([X @ [1.0, -2.0, 0.5] * 10, np.sin(X[:, 0]) + 0.3 * rng.normal(size=200)])
    np.savez(tmp_path / "two.npz", X=X, y=y)
    train = deltaprop(
        "train",
        "--data",
        "two.npz",
        "--task",
        "regression",
        "--epochs",
        "20",
        "--out",
        "run",
        "--quiet",
        "--no-plots",
        cwd=tmp_path,
    ).stdout
    evaluated = deltaprop("evaluate", "run/model.safetensors", "two.npz", cwd=tmp_path).stdout
    net = dp.load(tmp_path / "run" / "model.safetensors")
    outputs = net.predict(Scaler.from_dict(net.metadata["scaler"]).transform(X))
    uniform = r2_score(y, outputs)
    pooled = 1 - ((y - outputs) ** 2).sum() / ((y - y.mean(axis=0)) ** 2).sum()
    assert abs(uniform - pooled) > 0.01  # the two differ here, so the check below can fail
    assert f"R^2: {uniform:.4f}" in evaluated, evaluated
    summary = json.loads(json.dumps(net.metadata["training"]))
    assert "test_r2" in summary and f"test R^2: {summary['test_r2']:.4f}" in train


def test_a_model_whose_recorded_encoding_was_altered_is_refused(shop, tmp_path):
    folder, _ = shop
    net = dp.load(folder / "run" / "model.safetensors")
    net.metadata["categorical"]["categories"]["colour"] = ["blue", "red"]  # one fewer
    net.save(tmp_path / "altered.safetensors")
    result = deltaprop(
        "predict", tmp_path / "altered.safetensors", "new.csv", cwd=folder, check_rc=1
    )
    assert "metadata 'categorical' must be" in result.stderr, result.stderr
