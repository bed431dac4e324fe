"""CSV reading: both readers agree, delimiters, .tsv and gzip, missing values, categories.

The fast reader (numpy.loadtxt) and the reference reader (the csv module, used for any file the
fast one will not decide) must give the same table. A line of spaces is something only the
reference reader skips, so appending one to a clean file sends that same table down the other
path; every table here is read both ways and compared.
"""

import gzip

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deltaprop.data import DataError, load_dataset, load_features
from deltaprop.data.csvfile import MAX_AUTO_CATEGORIES, MISSING, delimiter_for
from deltaprop.data.preprocessing import Imputer, Scaler
from deltaprop.data.readers import sniff


def write(path, text, gz=False):
    data = text.encode("utf-8")
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def both_ways(tmp_path, text, name="t.csv", **kwargs):
    """load_dataset on ``text`` by the fast reader and by the reference one, checked equal."""
    fast = load_dataset(write(tmp_path / name, text), **kwargs)
    slow = load_dataset(write(tmp_path / f"slow-{name}", text + "   \n"), **kwargs)
    np.testing.assert_array_equal(fast.X, slow.X)
    assert fast.feature_names == slow.feature_names and fast.categorical == slow.categorical
    if fast.y is not None:
        np.testing.assert_array_equal(fast.y, slow.y)
        assert fast.class_names == slow.class_names and fast.task == slow.task
    return fast


def refused(path, *fragments, **kwargs):
    with pytest.raises(DataError) as info:
        load_dataset(path, **kwargs)
    message = str(info.value)
    assert message.startswith(str(path)), message
    for fragment in fragments:
        assert fragment in message, message
    return message


# ------------------------------------------------------------------------------ both readers
def test_numbers_quotes_spaces_and_blank_lines_read_alike(tmp_path):
    text = 'a,"b",c\n1, 2.5 ,x\n\n"-3",4e2,"y"\n5,6,x\n'
    ds = both_ways(tmp_path, text)
    np.testing.assert_array_equal(ds.X, [[1, 2.5], [-3, 400], [5, 6]])
    assert ds.class_names == ["x", "y"] and ds.y.tolist() == [0, 1, 0]


@settings(max_examples=40, deadline=None)
@given(
    numbers=st.lists(
        st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=2, max_size=2),
        min_size=1,
        max_size=12,
    ),
    colors=st.data(),
)
def test_random_tables_read_alike(tmp_path_factory, numbers, colors):
    tmp_path = tmp_path_factory.mktemp("t")
    cats = colors.draw(
        st.lists(
            st.sampled_from(["red", "green", "blue"]), min_size=len(numbers), max_size=len(numbers)
        )
    )
    rows = [f"{a!r},{c},{b!r},{i % 2}" for i, ((a, b), c) in enumerate(zip(numbers, cats))]
    ds = both_ways(tmp_path, "a,color,b,label\n" + "\n".join(rows) + "\n", task="classification")
    expected = sorted(set(cats))
    assert ds.feature_names == ["a", *(f"color={c}" for c in expected), "b"]
    np.testing.assert_array_equal(ds.X[:, 0], [a for a, _ in numbers])
    np.testing.assert_array_equal(ds.X[:, -1], [b for _, b in numbers])
    onehot = ds.X[:, 1:-1]
    assert (onehot.sum(axis=1) == 1).all()
    assert [expected[k] for k in onehot.argmax(axis=1)] == cats


def test_numeric_regression_target_reads_alike(tmp_path):
    text = "x,y\n" + "".join(f"{i},{i * 0.37}\n" for i in range(30))
    ds = both_ways(tmp_path, text)
    assert ds.task == "regression" and ds.y[:, 0].tolist() == [i * 0.37 for i in range(30)]


# ------------------------------------------------------------------------------ delimiters
@pytest.mark.parametrize("sep", [";", "\t", "|", ","])
def test_the_delimiter_is_sniffed(tmp_path, sep):
    text = (
        sep.join(["a", "b", "label"])
        + "\n"
        + "".join(
            sep.join([str(i), str(i * 2.5), "yes" if i % 2 else "no"]) + "\n" for i in range(6)
        )
    )
    ds = both_ways(tmp_path, text)
    assert ds.feature_names == ["a", "b"] and ds.X[3].tolist() == [3, 7.5]
    assert delimiter_for(tmp_path / "t.csv", None) == sep


def test_tsv_is_tab_separated_and_an_explicit_delimiter_wins(tmp_path):
    path = write(tmp_path / "d.tsv", "a,b\tc\n1\t3\n4\t6\n")  # a comma in a name
    assert load_dataset(path, task="regression").feature_names == ["a,b"]
    path = write(tmp_path / "d.csv", "a;b|c\n1;2|3\n4;5|6\n7;8|9\n")
    assert load_dataset(path, delimiter="|", categorical=["a;b"]).feature_names[0] == "a;b=1;2"
    with pytest.raises(ValueError, match="delimiter must be one character"):
        load_dataset(path, delimiter=";;")


def test_decimal_commas_are_named_not_misread(tmp_path):
    path = write(tmp_path / "eu.csv", "a;b;label\n1,5;2;x\n3,25;4;y\n")
    refused(path, "line 2", "column 'a'", "'1,5' looks like a number with a decimal comma")


# ------------------------------------------------------------------------------ gzip
def test_gzipped_csv_is_read_by_its_magic_bytes_not_taken_for_idx(tmp_path):
    text = "a,b,label\n1,2,x\n3,4,y\n"
    for name in ("d.csv.gz", "d.tsv.gz", "d.gz", "d.data"):
        path = write(tmp_path / name, text.replace(",", "\t") if "tsv" in name else text, gz=True)
        assert sniff(path) == "csv", name
        ds = load_dataset(path)
        assert ds.X.tolist() == [[1, 2], [3, 4]] and ds.class_names == ["x", "y"]
    idx = tmp_path / "labels.gz"
    idx.write_bytes(gzip.compress(b"\0\0\x08\x01\0\0\0\x02\x01\x02"))
    assert sniff(idx) == "idx"


def test_a_broken_gzipped_csv_is_a_data_error(tmp_path):
    path = tmp_path / "d.csv.gz"
    path.write_bytes(gzip.compress(b"a,b\n1,2\n3,4\n" * 100)[:-30])
    refused(path, "not a valid gzip file")


# ------------------------------------------------------------------------------ missing values
@pytest.mark.parametrize("marker", sorted(MISSING) + ["  ", " NA "])
def test_a_missing_cell_is_refused_by_name(tmp_path, marker):
    path = write(tmp_path / "m.csv", f"a,b,label\n1,2,x\n3,{marker},y\n")
    refused(path, "line 3", "column 'b'", "a missing value", "--impute")


def test_missing_cells_can_be_kept_as_nan(tmp_path):
    text = "a,color,label\n1,red,x\n,blue,y\n3,?,x\n4,red,y\n"
    ds = both_ways(tmp_path, text, missing="keep")
    assert ds.feature_names == ["a", "color=blue", "color=red"]
    assert np.isnan(ds.X[1, 0]) and np.isnan(ds.X[2, 1:]).all() and not np.isnan(ds.X[0]).any()
    # A missing class label is never filled in.
    refused(
        write(tmp_path / "t.csv", "a,label\n1,x\n2,\n"),
        "line 3",
        "empty class label",
        missing="keep",
    )


def test_imputer_fills_from_training_values_and_survives_json():
    X = np.array([[1.0, np.nan], [np.nan, 0.0], [3.0, 1.0], [8.0, 1.0]])
    mean, median = Imputer("mean").fit(X), Imputer("median").fit(X)
    np.testing.assert_allclose(mean.fill, [4.0, 2 / 3])
    np.testing.assert_allclose(median.fill, [3.0, 1.0])
    filled = mean.transform(X)
    assert filled[1, 0] == 4.0 and filled[0, 1] == 2 / 3 and np.isnan(X[1, 0])
    again = Imputer.from_dict(mean.to_dict())
    np.testing.assert_array_equal(again.transform(X), filled)
    assert Imputer("mean").fit(np.full((2, 1), np.nan)).fill.tolist() == [0.0]
    with pytest.raises(ValueError, match="strategy must be one of"):
        Imputer("mode")
    with pytest.raises(ValueError, match="not fitted yet"):
        Imputer().transform(X)
    with pytest.raises(ValueError, match="fitted on 2 columns"):
        mean.transform(np.ones((2, 3)))
    for bad in ({"strategy": "mean"}, {"strategy": "mean", "fill": [1.0, float("inf")]}, []):
        with pytest.raises(ValueError):
            Imputer.from_dict(bad)


# ------------------------------------------------------------------------------ categories
def test_a_named_numeric_column_is_one_hot_encoded(tmp_path):
    text = "grade,x,y\n1,0.5,a\n3,0.25,b\n1,1.5,a\n"
    ds = both_ways(tmp_path, text, categorical=["grade"])
    assert ds.feature_names == ["grade=1", "grade=3", "x"]
    np.testing.assert_array_equal(ds.X, [[1, 0, 0.5], [0, 1, 0.25], [1, 0, 1.5]])
    assert ds.categorical == {"columns": ["grade", "x"], "categories": {"grade": ["1", "3"]}}
    path = write(tmp_path / "t.csv", text)
    refused(path, "'y' is the target", categorical=["y"])
    refused(path, "no column named 'zip'", categorical=["zip"])


def test_a_column_of_text_with_numbers_in_it_is_refused(tmp_path):
    path = write(tmp_path / "t.csv", "a,b,label\nred,1,x\nblue,2,y\n7,3,x\n")
    refused(path, "line 4", "column 'a'", "'7' is a number in a column that starts with text")
    assert load_dataset(path, categorical=["a"]).feature_names == ["a=7", "a=blue", "a=red", "b"]


def test_a_column_of_many_distinct_texts_is_taken_for_an_identifier(tmp_path):
    rows = "".join(f"id{i},{i},{i % 2}\n" for i in range(MAX_AUTO_CATEGORIES + 1))
    path = write(tmp_path / "t.csv", "name,a,label\n" + rows)
    refused(path, "column 'name'", f"{MAX_AUTO_CATEGORIES + 1} distinct values", "identifier")


def test_prediction_inputs_are_encoded_as_in_training(tmp_path):
    train = load_dataset(write(tmp_path / "train.csv", "color,x,label\nred,1,a\nblue,2,b\n"))
    new = write(tmp_path / "new.csv", "x,label,color\n5,?,blue\n6,?,blue\n7,?,red\n")
    X = load_features(new, train.feature_names, categorical=train.categorical)
    np.testing.assert_array_equal(X, [[1, 0, 5], [1, 0, 6], [0, 1, 7]])
    bad = write(tmp_path / "bad.csv", "x,color\n5,blue\n6,green\n")
    with pytest.raises(DataError, match=r"line 3, column 'color': 'green' is not a category"):
        load_features(bad, train.feature_names, categorical=train.categorical)
    gap = write(tmp_path / "gap.csv", "x,color\n5,\n")
    with pytest.raises(DataError, match="a missing value"):
        load_features(gap, train.feature_names, categorical=train.categorical)
    kept = load_features(gap, train.feature_names, categorical=train.categorical, missing="keep")
    assert np.isnan(kept[0, :2]).all() and kept[0, 2] == 5
    np.save(tmp_path / "x.npy", np.ones((2, 3)))
    with pytest.raises(DataError, match="give its inputs as a CSV"):
        load_features(tmp_path / "x.npy", train.feature_names, categorical=train.categorical)


# ------------------------------------------------------------------------------ scaling
def test_auto_scaling_keeps_unit_columns_and_floors_the_divisor():
    rng = np.random.default_rng(0)
    train = np.zeros((1000, 3))
    train[:, 0] = rng.uniform(0, 1, 1000)  # a pixel-like column, already in [0, 1]
    train[:3, 1] = 0.2  # a border pixel: almost always 0
    train[:, 2] = rng.normal(50, 10, 1000)  # an ordinary column
    auto, standard = Scaler("auto").fit(train), Scaler("standard").fit(train)
    assert auto.offset[:2].tolist() == [0, 0] and auto.scale[:2].tolist() == [1, 1]
    np.testing.assert_allclose(auto.scale[2], standard.scale[2])  # std >= range / 10 here
    ink = np.array([[0.5, 1.0, 50.0]])  # a test image with ink on the border pixel
    assert abs(standard.transform(ink)[0, 1]) > 90 and auto.transform(ink)[0, 1] == 1.0
    outlier = train.copy()
    outlier[:, 2] = 0.0
    outlier[0, 2] = 1000.0  # a concentrated column outside [0, 1]
    scaled = Scaler("auto").fit_transform(outlier)
    assert np.abs(scaled).max() <= Scaler.RANGE_FLOOR + 1e-9
    again = Scaler.from_dict(Scaler("auto").fit(outlier).to_dict())
    np.testing.assert_array_equal(again.transform(outlier), scaled)
    assert Scaler().kind == "auto"
