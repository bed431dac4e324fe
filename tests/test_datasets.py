"""Datasets: built-ins, CSV, NumPy and IDX files (good and bad), splitting, scaling, one-hot."""

import gzip
import io
import json
import os
import pathlib
import pickle
import struct
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deltaprop.data.datasets import (
    BUILTINS,
    DataError,
    Dataset,
    Scaler,
    load_dataset,
    load_features,
    one_hot,
    train_test_split,
)


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def refused(source, *fragments, **kwargs):
    """load_dataset(source) raises DataError naming the file and every fragment."""
    with pytest.raises(DataError) as info:
        load_dataset(source, **kwargs)
    message = str(info.value)
    assert message.startswith(str(source)), message
    for fragment in fragments:
        assert fragment in message, message
    return message


# ------------------------------------------------------------------------------ built-ins
def test_digits_are_sklearns_8x8_images_as_they_are():
    ds = load_dataset("digits")
    assert ds.X.shape == (1797, 64) and ds.X.dtype == np.float64
    assert ds.y.shape == (1797,) and ds.y.dtype == np.int64
    assert ds.class_names == [str(d) for d in range(10)] and ds.n_classes == 10
    assert ds.image_shape == (8, 8) and ds.feature_names[:2] == ["pixel_0_0", "pixel_0_1"]
    assert ds.X.min() == 0 and ds.X.max() == 16 and np.all(ds.X == np.round(ds.X))
    assert ds.task == "classification" and ds.name == "digits" and len(ds) == 1797


def test_iris_keeps_its_class_names():
    ds = load_dataset("iris")
    assert ds.X.shape == (150, 4) and ds.class_names == ["setosa", "versicolor", "virginica"]
    assert np.bincount(ds.y).tolist() == [50, 50, 50]
    assert ds.feature_names[0] == "sepal length (cm)"


@pytest.mark.parametrize("name", ["xor", "moons", "circles", "spirals"])
def test_synthetic_sets_are_2d_balanced_and_seeded(name):
    ds = load_dataset(name)
    assert ds.X.shape == (400, 2) and ds.X.dtype == np.float64 and ds.n_classes == 2
    assert np.bincount(ds.y).tolist() == [200, 200]
    assert np.array_equal(ds.X, load_dataset(name, seed=0).X)
    assert not np.array_equal(ds.X, load_dataset(name, seed=1).X)
    assert len(load_dataset(name, n_samples=101)) == 101


def test_xor_is_four_noisy_clusters_labelled_by_xor():
    ds = load_dataset("xor", n_samples=1000)
    corner = np.round(np.clip(ds.X, 0, 1)).astype(int)
    assert np.mean((corner[:, 0] ^ corner[:, 1]) == ds.y) > 0.97
    assert np.bincount(corner[:, 0] * 2 + corner[:, 1]).min() > 200


def test_spirals_are_two_rotated_arms():
    ds = load_dataset("spirals", n_samples=2000)
    r, angle = np.hypot(*ds.X.T), np.arctan2(ds.X[:, 1], ds.X[:, 0])

    def off_curve(k):
        # Arm k winds as angle = 3*pi*r + k*pi: the distance from it, in radians, wrapped.
        return np.abs((angle - 3 * np.pi * r - k * np.pi + np.pi) % (2 * np.pi) - np.pi)

    assert r.max() < 1.1
    assert np.median(off_curve(ds.y)) < 0.2
    assert np.median(off_curve(1 - ds.y)) > 2.5  # each point is far from the other arm


def test_a_real_dataset_can_be_subsampled_with_a_seed():
    a = load_dataset("digits", n_samples=100, seed=3)
    b = load_dataset("digits", n_samples=100, seed=3)
    assert len(a) == 100 and np.array_equal(a.X, b.X) and a.class_names == b.class_names
    assert len(load_dataset("iris", n_samples=10_000)) == 150


def test_bad_arguments_are_value_errors(tmp_path):
    with pytest.raises(ValueError, match="task must be one of"):
        load_dataset("iris", task="clustering")
    with pytest.raises(ValueError, match="iris is a classification dataset"):
        load_dataset("iris", task="regression")
    with pytest.raises(ValueError, match="n_samples must be a positive integer"):
        load_dataset("xor", n_samples=0)
    with pytest.raises(ValueError, match="seed must be"):
        load_dataset("xor", seed=-1)
    with pytest.raises(FileNotFoundError, match="built-in dataset"):
        load_dataset("digts")
    assert set(BUILTINS) == {"digits", "iris", "xor", "moons", "circles", "spirals"}


# ------------------------------------------------------------------------------ CSV
def test_csv_classification_keeps_class_names(tmp_path):
    path = write(
        tmp_path / "flowers.csv",
        "\ufeffsepal, petal ,species\r\n1.5,2,virginica\r\n3,4e-1,setosa\r\n\r\n"
        '5," 6 ",virginica\r\n\r\n',
    )
    ds = load_dataset(path)
    assert ds.feature_names == ["sepal", "petal"] and ds.task == "classification"
    assert ds.class_names == ["setosa", "virginica"] and ds.y.tolist() == [1, 0, 1]
    np.testing.assert_array_equal(ds.X, [[1.5, 2], [3, 0.4], [5, 6]])
    assert ds.name == str(path)


def test_csv_target_by_name_and_numeric_classes_sorted_by_value(tmp_path):
    rows = "".join(f"{i},{c},{i * 0.5}\n" for i, c in enumerate([10, 2, 1, 2, 10, 1] * 2))
    path = write(tmp_path / "d.csv", "a,grade,b\n" + rows)
    ds = load_dataset(path, target="grade")
    assert ds.feature_names == ["a", "b"] and ds.class_names == ["1", "2", "10"]
    assert ds.y.tolist()[:6] == [2, 1, 0, 1, 2, 0]


def test_csv_regression_is_inferred_and_can_be_forced(tmp_path):
    path = write(tmp_path / "r.csv", "x,y\n" + "".join(f"{i},{i * 1.5}\n" for i in range(10)))
    ds = load_dataset(path)
    assert ds.task == "regression" and ds.y.shape == (10, 1) and ds.class_names is None
    np.testing.assert_array_equal(ds.y[:, 0], np.arange(10) * 1.5)
    assert load_dataset(path, task="classification").class_names[:3] == ["0", "1.5", "3"]
    ints = write(tmp_path / "i.csv", "x,y\n" + "".join(f"{i},{i % 3}\n" for i in range(12)))
    assert load_dataset(ints).task == "classification"
    forced = load_dataset(ints, task="regression")
    assert forced.task == "regression" and forced.y[:, 0].tolist() == [i % 3 for i in range(12)]
    many = write(tmp_path / "m.csv", "x,y\n" + "".join(f"{i},{i}\n" for i in range(40)))
    assert load_dataset(many).task == "regression"  # 40 distinct integers: a quantity


def test_csv_without_its_target_for_prediction(tmp_path):
    path = write(tmp_path / "p.csv", "b,a\n1,2\n3,4\n")
    ds = load_dataset(path, target="label", require_target=False)
    assert ds.y is None and ds.feature_names == ["b", "a"] and ds.X.shape == (2, 2)
    refused(path, "line 1", "no column named 'label'", "['b', 'a']", target="label")


def test_load_features_picks_columns_by_name(tmp_path):
    path = write(tmp_path / "p.csv", "z,species,a,b\n9,cat,1,2\n8,dog,3,4\n")
    np.testing.assert_array_equal(load_features(path, ["b", "a"]), [[2, 1], [4, 3]])
    with pytest.raises(DataError, match="line 1: no column named 'c'"):
        load_features(path, ["a", "c"])
    np.save(tmp_path / "x.npy", np.ones((3, 4)))
    assert load_features(tmp_path / "x.npy", list("abcd")).shape == (3, 4)
    with pytest.raises(DataError, match="has 4 columns but 2 features are expected"):
        load_features(tmp_path / "x.npy", ["a", "b"])
    assert load_features("iris", list("abcd")).shape == (150, 4)


@pytest.mark.parametrize(
    "text, fragments",
    [
        ("a,b,c\n1,2,x\n3,4\n", ["line 3", "column 'c'", "missing", "2 fields"]),
        ("a,b,c\n1,2,x\n3,4,y,5\n", ["line 3", "column 4", "extra field '5'"]),
        ("a,b,c\n1,2,x\n\n3,abc,y\n", ["line 4", "column 'b'", "'abc' is not a number"]),
        ("a,b,c\n1,,x\n", ["line 2", "column 'b'", "empty cell"]),
        ("a,b,c\n1,nan,x\n", ["line 2", "column 'b'", "'nan': a missing value"]),
        ('a,b,c\n1,2,"x\ny"\n1,inf,y\n', ["line 4", "column 'b'", "inf is not a finite"]),
        ("a,b,a\n1,2,3\n", ["line 1", "column 3", "duplicate column name 'a' (also column 1)"]),
        ("a,,c\n1,2,3\n", ["line 1", "column 2", "empty column name"]),
        ("", ["empty file"]),
        ("\n\n", ["empty file"]),
        ("a,b,c\n", ["line 1", "no data rows"]),
        ("c\n1\n", ["no feature columns"]),
        ("a,b\n1,2\n3,\xff\n", []),  # encoded below as invalid UTF-8
    ],
)
def test_bad_csv_files_name_file_line_and_column(tmp_path, text, fragments):
    path = tmp_path / "bad.csv"
    if "\xff" in text:
        path.write_bytes(text.replace("\xff", "").encode() + b"\xff\xfe")
        fragments = ["not UTF-8"]
    else:
        write(path, text)
    refused(path, *fragments)


def test_csv_regression_target_must_be_numeric(tmp_path):
    path = write(tmp_path / "r.csv", "x,price\n1,2.5\n2,3.5\n3,n/a\n")
    refused(path, "line 4", "column 'price'", "'n/a' is not a finite number", task="regression")
    refused(write(tmp_path / "e.csv", "x,t\n1,a\n2,\n"), "line 3", "column 't'", "empty class")
    refused(write(tmp_path / "m.csv", "x,t\n1,a\n"), "line 1", "no column named 'q'", target="q")


def test_csv_reader_errors_are_data_errors(tmp_path):
    path = write(tmp_path / "big.csv", 'a,b\n1,"' + "x" * 200_000 + '"\n')
    refused(path, "line 2", "not valid CSV", "field larger than field limit")


# ------------------------------------------------------------------------------ NumPy files
def test_npy_memory_maps_float64_without_copying(tmp_path):
    arr = np.arange(30, dtype=np.float64).reshape(10, 3)
    arr[:, -1] = np.arange(10) % 2
    np.save(tmp_path / "d.npy", arr)
    ds = load_dataset(tmp_path / "d.npy")
    assert isinstance(ds.X, np.memmap) and not ds.X.flags.writeable
    np.testing.assert_array_equal(ds.X, arr[:, :2])
    assert ds.class_names == ["0", "1"] and ds.feature_names == ["x0", "x1"]
    first = load_dataset(tmp_path / "d.npy", target="0")
    assert first.task == "regression" and first.feature_names == ["x1", "x2"]
    with pytest.raises(ValueError, match="column index"):
        load_dataset(tmp_path / "d.npy", target="label")
    np.save(tmp_path / "i.npy", arr.astype(np.int32))
    assert load_dataset(tmp_path / "i.npy").X.dtype == np.float64


class Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def test_numpy_files_never_unpickle(tmp_path):
    marker = tmp_path / "marker"
    obj = np.array([[Payload(marker), 1]], dtype=object)
    np.save(tmp_path / "o.npy", obj, allow_pickle=True)
    np.savez(tmp_path / "o.npz", X=np.ones((1, 2)), y=obj[0])
    refused(tmp_path / "o.npy", "not a valid .npy file")
    refused(tmp_path / "o.npz", "'y' holds Python objects")
    (tmp_path / "p.npy").write_bytes(pickle.dumps(Payload(marker), protocol=4))
    refused(tmp_path / "p.npy", "pickle")
    assert not marker.exists()
    np.load(tmp_path / "o.npy", allow_pickle=True)  # the payload is live: this runs it
    assert marker.exists()


@pytest.mark.parametrize(
    "arr, fragment",
    [
        (np.ones((3, 2), dtype=complex), "complex numbers"),
        (np.array([["a", "b"]]), "strings"),
        (np.ones(5), "must be 2-D"),
        (np.ones((0, 3)), "must be 2-D"),
        (np.array([[1.0, np.nan, 0]]), "nan at index (0, 1)"),
    ],
)
def test_npy_refusals(tmp_path, arr, fragment):
    np.save(tmp_path / "a.npy", arr)
    refused(tmp_path / "a.npy", fragment)


def test_truncated_npy(tmp_path):
    np.save(tmp_path / "a.npy", np.ones((100, 3)))
    raw = (tmp_path / "a.npy").read_bytes()
    for n in (10, 100, len(raw) - 1):
        (tmp_path / "t.npy").write_bytes(raw[:n])
        refused(tmp_path / "t.npy")


def test_npz_with_class_names_regression_and_no_labels(tmp_path):
    X = np.arange(12.0).reshape(6, 2)
    np.savez_compressed(tmp_path / "c.npz", X=X, y=np.array(["dog", "cat"] * 3))
    ds = load_dataset(tmp_path / "c.npz")
    assert ds.class_names == ["cat", "dog"] and ds.y.tolist() == [1, 0] * 3
    np.savez(tmp_path / "r.npz", X=X, y=X * 0.3)
    ds = load_dataset(tmp_path / "r.npz")
    assert ds.task == "regression" and ds.y.shape == (6, 2)
    np.savez(tmp_path / "u.npz", X=X)
    assert load_dataset(tmp_path / "u.npz", require_target=False).y is None
    refused(tmp_path / "u.npz", "no array named 'y'", "['X']")
    np.savez(tmp_path / "m.npz", X=X, y=np.arange(5))
    refused(tmp_path / "m.npz", "X has 6 rows but y has 5")


def test_npz_declaring_more_than_it_holds(tmp_path):
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (10**9, 10**3)}
    )
    with zipfile.ZipFile(tmp_path / "huge.npz", "w") as z:
        z.writestr("X.npy", header.getvalue() + b"\0" * 64)
        z.writestr("y.npy", b"")
    refused(tmp_path / "huge.npz", "array 'X' declares shape (1000000000, 1000)")
    (tmp_path / "broken.npz").write_bytes(b"PK\x03\x04" + b"\0" * 40)
    refused(tmp_path / "broken.npz", "not a valid .npz archive")


# ------------------------------------------------------------------------------ IDX
def idx_bytes(arr, type_code=0x08, magic=None):
    magic = magic if magic is not None else struct.pack(">HBB", 0, type_code, arr.ndim)
    return (
        magic
        + struct.pack(f">{arr.ndim}I", *arr.shape)
        + arr.astype(arr.dtype.newbyteorder(">")).tobytes()
    )


@pytest.fixture
def mnist_like(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(12, 3, 4), dtype=np.uint8)
    labels = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 9], dtype=np.uint8)
    return images, labels


@pytest.mark.parametrize("gzipped", [True, False])
def test_idx_images_and_labels(tmp_path, mnist_like, gzipped):
    images, labels = mnist_like
    pack = gzip.compress if gzipped else (lambda b: b)
    suffix = ".gz" if gzipped else ""
    img = tmp_path / f"images-idx3-ubyte{suffix}"
    lab = tmp_path / f"labels-idx1-ubyte{suffix}"
    img.write_bytes(pack(idx_bytes(images)))
    lab.write_bytes(pack(idx_bytes(labels)))
    assert (
        idx_bytes(images)[:4] == b"\x00\x00\x08\x03"
        and idx_bytes(labels)[:4] == b"\x00\x00\x08\x01"
    )
    ds = load_dataset(img, labels=lab)
    assert ds.X.shape == (12, 12) and ds.X.dtype == np.float64 and ds.image_shape == (3, 4)
    np.testing.assert_array_equal(ds.X, images.reshape(12, -1))
    assert ds.y.tolist() == labels.tolist() and ds.class_names == [str(d) for d in range(10)]
    assert ds.feature_names[4] == "pixel_1_0"
    assert load_dataset(img, require_target=False).y is None
    assert load_features(img, ds.feature_names).shape == (12, 12)


def test_idx_other_element_types(tmp_path):
    floats = np.linspace(0, 1, 24).reshape(2, 3, 4)
    (tmp_path / "f.idx").write_bytes(idx_bytes(floats.astype(np.float32), 0x0D))
    (tmp_path / "l.idx").write_bytes(idx_bytes(np.array([3, 1], dtype=np.int32), 0x0C))
    ds = load_dataset(tmp_path / "f.idx", labels=tmp_path / "l.idx")
    np.testing.assert_array_equal(ds.X, floats.astype(np.float32).reshape(2, -1))
    assert ds.class_names == ["0", "1", "2", "3"]


def test_bad_idx_files(tmp_path, mnist_like):
    images, labels = mnist_like
    img, lab = tmp_path / "img", tmp_path / "lab"
    lab.write_bytes(idx_bytes(labels))

    img.write_bytes(idx_bytes(images, magic=b"\x00\x01\x08\x03"))
    refused(img, "not an IDX file", "0x00010803", "0x00000803", labels=lab)
    img.write_bytes(idx_bytes(images, magic=b"\x00\x00\x07\x03"))
    refused(img, "magic number 0x00000703", labels=lab)

    raw = idx_bytes(images)
    img.write_bytes(raw[:-5])
    refused(img, "declares dimensions (12, 3, 4) (144 bytes of data) but 139 bytes", labels=lab)
    img.write_bytes(raw + b"\0")
    refused(img, "but 145 bytes follow", labels=lab)
    img.write_bytes(gzip.compress(raw[:-5]))
    refused(img, "holds only 139 bytes", labels=lab)
    img.write_bytes(gzip.compress(raw)[:-6])
    refused(img, "not a valid gzip file", labels=lab)
    img.write_bytes(gzip.compress(struct.pack(">HBBIII", 0, 8, 3, 60000, 10**4, 10**4)))
    refused(img, "more than a gzip file of", labels=lab)
    img.write_bytes(raw[:10])
    refused(img, "truncated IDX header", labels=lab)

    img.write_bytes(raw)
    lab.write_bytes(idx_bytes(labels[:10]))
    message = refused(lab, "labels file?")
    with pytest.raises(DataError) as info:
        load_dataset(img, labels=lab)
    message = str(info.value)
    assert message.startswith(str(lab)) and "10 labels" in message and f"{img} holds 12" in message
    refused(img, "need their labels file")
    with pytest.raises(FileNotFoundError):
        load_dataset(img, labels=tmp_path / "nope")


def test_unrecognised_files(tmp_path):
    (tmp_path / "x.bin").write_bytes(b"hello world")
    refused(tmp_path / "x.bin", "unrecognised data format", ".csv")
    (tmp_path / "e.bin").write_bytes(b"")
    refused(tmp_path / "e.bin", "empty")


# ------------------------------------------------------------------------------ splitting
def labelled(y, task="classification"):
    y = np.asarray(y)
    k = int(y.max()) + 1
    X = np.arange(len(y), dtype=float)[:, None]  # row i holds i, so rows can be traced
    if task == "regression":
        return Dataset(X, y[:, None].astype(float), task, None, ["i"], "t")
    return Dataset(X, y, task, [str(c) for c in range(k)], ["i"], "t")


def test_split_is_stratified_seeded_and_a_partition():
    ds = labelled([0] * 90 + [1] * 9 + [2] * 1)
    train, test = train_test_split(ds, 0.2, seed=4)
    assert np.bincount(test.y, minlength=3).tolist() == [18, 2, 0]  # the single 2 trains
    rows = np.concatenate([train.X[:, 0], test.X[:, 0]])
    assert sorted(rows) == list(range(100))
    assert np.array_equal(test.X, train_test_split(ds, 0.2, seed=4)[1].X)
    assert not np.array_equal(test.X, train_test_split(ds, 0.2, seed=5)[1].X)
    assert train.class_names == ds.class_names and test.n_classes == 3
    iris_train, iris_test = train_test_split(load_dataset("iris"), 0.2)
    assert np.bincount(iris_test.y).tolist() == [10, 10, 10] and len(iris_train) == 120


def test_split_regression_and_bad_arguments():
    train, test = train_test_split(labelled(np.arange(10), "regression"), 0.3, seed=0)
    assert len(train) == 7 and len(test) == 3 and test.y.shape == (3, 1)
    for bad in (0, 1, 1.5, -0.1, "0.2", float("nan")):
        with pytest.raises(ValueError, match="test_size must be a number in"):
            train_test_split(labelled([0, 1, 0, 1]), bad)
    with pytest.raises(ValueError, match="at least 2 examples"):
        train_test_split(labelled([0]), 0.5)


# ------------------------------------------------------------------------------ scaling
def test_standard_scaling_with_a_constant_column():
    X = np.column_stack([np.arange(10.0), np.full(10, 7.0), np.arange(10.0) ** 2])
    with np.errstate(all="raise"):
        Z = Scaler("standard").fit_transform(X)
    np.testing.assert_allclose(Z.mean(0), 0, atol=1e-15)
    np.testing.assert_allclose(Z.std(0), [1, 0, 1])
    assert np.all(Z[:, 1] == 0)


def test_minmax_scaling_and_none():
    X = np.array([[1.0, 5.0, 3.0], [3.0, 5.0, -1.0], [2.0, 5.0, 0.0]])
    with np.errstate(all="raise"):
        Z = Scaler("minmax").fit_transform(X)
    np.testing.assert_array_equal(Z, [[0, 0, 1], [1, 0, 0], [0.5, 0, 0.25]])
    assert Scaler("none").fit(X).transform(X) is X


@pytest.mark.parametrize("kind", Scaler.KINDS)
def test_scaler_round_trips_through_json_exactly(kind):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 4)) * [1, 1e-8, 1e6, 0] + np.pi
    scaler = Scaler(kind).fit(X)
    again = Scaler.from_dict(json.loads(json.dumps(scaler.to_dict())))
    Xn = rng.normal(size=(5, 4))
    assert again.transform(Xn).tobytes() == scaler.transform(Xn).tobytes()
    np.testing.assert_allclose(
        again.inverse_transform(again.transform(Xn)), Xn, rtol=1e-9, atol=1e-9
    )
    X32 = Xn.astype(np.float32)
    assert scaler.transform(X32).dtype == np.float32


@pytest.mark.parametrize(
    "d, fragment",
    [
        ({"kind": "log"}, "'kind' in"),
        ([1, 2], "'kind' in"),
        ({"kind": "standard", "n_features": 2, "offset": [0, 0], "scale": [1, 0]}, "> 0"),
        (
            {"kind": "standard", "n_features": 2, "offset": [0], "scale": [1, 1]},
            "offset must list 2",
        ),
        ({"kind": "minmax", "n_features": 1, "offset": ["0"], "scale": [1]}, "finite numbers"),
        ({"kind": "minmax", "n_features": 1, "offset": [0], "scale": [float("inf")]}, "finite"),
        ({"kind": "standard", "n_features": True}, "positive integer"),
        ({"kind": "none", "n_features": 2, "offset": [0, 0]}, "no offset"),
        ({"kind": "none", "extra": 1}, "unknown scaler keys ['extra']"),
    ],
)
def test_scaler_from_dict_refuses_nonsense(d, fragment):
    with pytest.raises(ValueError) as info:
        Scaler.from_dict(d)
    assert fragment in str(info.value)


def test_scaler_misuse():
    with pytest.raises(ValueError, match="kind must be one of"):
        Scaler("zscore")
    with pytest.raises(ValueError, match="not fitted"):
        Scaler().transform(np.ones((2, 2)))
    with pytest.raises(ValueError, match="fitted on 2 columns"):
        Scaler().fit(np.ones((2, 2))).transform(np.ones((2, 3)))
    with pytest.raises(ValueError, match="NaN or inf"):
        Scaler().fit(np.array([[1.0], [np.nan]]))
    with pytest.raises(ValueError, match="2-D array of real numbers"):
        Scaler().fit(np.array([["a"]]))


def test_one_hot():
    np.testing.assert_array_equal(one_hot(np.array([2, 0, 1]), 3), np.eye(3)[[2, 0, 1]])
    assert one_hot([1.0, 0.0], 2, dtype=np.float32).dtype == np.float32
    with pytest.raises(ValueError, match=r"lie in \[0, 2\]. Received: 3"):
        one_hot([0, 3], 3)
    with pytest.raises(ValueError, match="whole numbers"):
        one_hot([0.5], 3)
    with pytest.raises(ValueError, match="n_classes must be a positive integer"):
        one_hot([0], 0)


def test_dataset_checks_itself_and_subsets_keep_names():
    ds = labelled([0, 1, 2, 1])
    sub = ds.subset([1, 3])
    assert sub.class_names == ["0", "1", "2"] and sub.n_classes == 3 and sub.y.tolist() == [1, 1]
    assert repr(ds) == "Dataset('t': 4 x 1, 3 classes)"
    with pytest.raises(ValueError, match="labels must lie in"):
        Dataset(np.ones((2, 1)), np.array([0, 2]), "classification", ["a", "b"], ["x"], "d")
    with pytest.raises(ValueError, match="feature_names"):
        Dataset(np.ones((2, 2)), None, "regression", None, ["x"], "d")
    with pytest.raises(ValueError, match="X has 2 rows but y has 1"):
        Dataset(np.ones((2, 1)), np.ones((1, 1)), "regression", None, ["x"], "d")


# ------------------------------------------------------------------------------ robustness
def mutate(data, raw):
    raw = bytearray(raw)
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, max(len(raw) - 1, 0)))
        op = data.draw(st.sampled_from(["set", "insert", "delete"]))
        if op == "set" and raw:
            raw[i] = data.draw(st.sampled_from([0, 10, 13, 34, 44, 48, 97, 128, 255]))
        elif op == "insert":
            raw[i:i] = data.draw(st.binary(min_size=1, max_size=6))
        else:
            del raw[i : i + data.draw(st.integers(1, 6))]
    return bytes(raw)


FUZZ = settings(
    max_examples=150 * int(os.environ.get("DELTAPROP_TEST_SCALE", "1")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@FUZZ
@given(data=st.data())
def test_mutated_csv_files_only_raise_data_error(tmp_path, data):
    path = tmp_path / "f.csv"
    path.write_bytes(mutate(data, b'a,b,"c d"\n1,2.5,x\n-3,4e2,"y,z"\n5,6,x\n'))
    try:
        load_dataset(path, task=data.draw(st.sampled_from(["auto", "classification"])))
    except DataError:
        pass


@FUZZ
@given(data=st.data(), gzipped=st.booleans())
def test_mutated_idx_files_only_raise_data_error(tmp_path, data, gzipped):
    images = np.arange(2 * 3 * 2, dtype=np.uint8).reshape(2, 3, 2)
    raw = idx_bytes(images)
    img = tmp_path / "img"
    img.write_bytes(mutate(data, gzip.compress(raw) if gzipped else raw))
    (tmp_path / "lab").write_bytes(idx_bytes(np.array([0, 1], dtype=np.uint8)))
    try:
        load_dataset(img, labels=tmp_path / "lab")
    except DataError:
        pass


@FUZZ
@given(data=st.data())
@pytest.mark.filterwarnings("ignore:Reading `.npy` or `.npz` file required additional header")
def test_mutated_numpy_files_only_raise_data_error(tmp_path, data):
    buffer = io.BytesIO()
    np.savez(buffer, X=np.ones((3, 2)), y=np.array([0, 1, 0]))
    for name, raw in (("f.npz", buffer.getvalue()), ("f.npy", None)):
        if raw is None:
            one = io.BytesIO()
            np.save(one, np.ones((3, 3)))
            raw = one.getvalue()
        (tmp_path / name).write_bytes(mutate(data, raw))
        try:
            load_dataset(tmp_path / name)
        except DataError:
            pass
