"""Model files: exact round trips, atomic writes, and hostile or broken files refused safely."""

import json
import os
import pathlib
import pickle
import struct
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import safetensors.numpy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import deltaprop as dp
from deltaprop import load
from deltaprop.data.preprocessing import Scaler
from deltaprop.io.model_file import FORMAT_VERSION, ModelFileError, read_info, save

ARCHITECTURES = [
    # sizes, hidden activation(s), output activation, loss, dtype
    ([2, 3, 1], "sigmoid", "sigmoid", "mse", np.float64),
    ([4, 1], "tanh", "identity", "mse", np.float32),
    ([5, 8, 6, 3], ["relu", "elu"], "softmax", "cross_entropy", np.float32),
    ([5, 8, 6, 3], ["leaky_relu", "softplus"], "softmax", "cross_entropy", np.float64),
    ([3, 7, 2], "tanh", "sigmoid", "binary_cross_entropy", np.float64),
    ([3, 4, 4, 4, 2], "sigmoid", "identity", "mse", np.float32),
]


def make_net(
    sizes=(2, 3, 1), activation="sigmoid", output="sigmoid", loss="mse", dtype=np.float64, seed=0
):
    return dp.Network(
        list(sizes),
        activation=activation,
        output_activation=output,
        loss=loss,
        seed=seed,
        dtype=dtype,
    )


def header_of(path):
    """(safetensors header dict, deltaprop document) of a file."""
    raw = pathlib.Path(path).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    return header, json.loads(header["__metadata__"]["deltaprop"])


def write_model(path, tensors, document, **extra_metadata):
    """A safetensors file with the given tensors and deltaprop document, bypassing save()."""
    meta = {"deltaprop": document if isinstance(document, str) else json.dumps(document)}
    path.write_bytes(safetensors.numpy.save(tensors, metadata={**meta, **extra_metadata}))
    return path


@pytest.fixture
def valid(tmp_path):
    """(tensors, document) of a real saved 2-3-1 network, ready to be tampered with: without
    its digest, as a file written before digests (whose every other check still applies)."""
    path = tmp_path / "valid.dpm"
    save(make_net(), path)
    document = header_of(path)[1]
    del document["digest"]
    return safetensors.numpy.load(path.read_bytes()), document


def assert_refused(path, *fragments):
    with pytest.raises(ModelFileError) as info:
        load(path)
    message = str(info.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message, message
    return message


# ------------------------------------------------------------------------------ round trips
@pytest.mark.parametrize("sizes, act, out, loss, dtype", ARCHITECTURES)
def test_round_trip_is_bit_identical(tmp_path, sizes, act, out, loss, dtype):
    net = make_net(sizes, act, out, loss, dtype, seed=3)
    X = np.random.default_rng(1).normal(size=(50, sizes[0])) * 3
    T = (
        (X[:, :1] > 0).astype(float)
        if sizes[-1] == 1
        else np.eye(sizes[-1])[np.arange(50) % sizes[-1]]
    )
    net.fit(X, T, optimizer=dp.Adam(lr=0.01), epochs=3, batch_size=8)
    path = tmp_path / "model.dpm"
    net.save(path)
    loaded = load(path)

    assert loaded.config() == net.config()
    assert loaded.dtype == np.dtype(dtype)
    for a, b in zip(net.layers, loaded.layers):
        assert a.W.dtype == b.W.dtype == dtype and a.W.tobytes() == b.W.tobytes()
        assert a.b.tobytes() == b.b.tobytes()
        assert b.W.flags.writeable and b.W.flags.c_contiguous
    assert net.predict(X).tobytes() == loaded.predict(X).tobytes()
    # The random generator comes back too, so training resumes exactly as it would have.
    net.fit(X, T, optimizer=dp.SGD(lr=0.1), epochs=2, batch_size=4)
    loaded.fit(X, T, optimizer=dp.SGD(lr=0.1), epochs=2, batch_size=4)
    assert net.predict(X).tobytes() == loaded.predict(X).tobytes()


def test_metadata_round_trips_exactly_and_is_merged(tmp_path):
    net = make_net()
    scaler = Scaler("standard").fit(np.random.default_rng(0).normal(size=(20, 2)) * 7 + 1)
    net.metadata = {"class_names": ["setosa", "versicolor"], "scaler": scaler.to_dict()}
    extra = {
        "training": {"epochs": 3, "loss": [0.1, 1e-300, -0.0, 2.5e300], "stopped": False},
        "unicode": "δ ✓ 漢字 \u0000",
        "big": 2**100,
        "none": None,
        "nested": [[], {}, [{"a": [1, 2.5, "x"]}]],
    }
    save(net, tmp_path / "m", metadata=extra)
    loaded = load(tmp_path / "m")
    assert loaded.metadata == {**net.metadata, **extra}
    assert net.metadata == {"class_names": ["setosa", "versicolor"], "scaler": scaler.to_dict()}
    X = np.random.default_rng(5).normal(size=(10, 2))
    restored = Scaler.from_dict(loaded.metadata["scaler"])
    assert restored.transform(X).tobytes() == scaler.transform(X).tobytes()
    info = read_info(tmp_path / "m")
    assert info["format_version"] == FORMAT_VERSION and info["library_version"] == dp.__version__
    assert info["network"] == net.config()


def test_save_writes_exactly_the_path_as_a_standard_safetensors_file(tmp_path):
    net = make_net([3, 4, 2], "tanh", "softmax", "cross_entropy", np.float32)
    net.save(tmp_path / "model")  # no extension added
    assert os.listdir(tmp_path) == ["model"]
    tensors = safetensors.numpy.load_file(tmp_path / "model")
    assert sorted(tensors) == [
        "layers.0.bias",
        "layers.0.weight",
        "layers.1.bias",
        "layers.1.weight",
    ]
    np.testing.assert_array_equal(tensors["layers.1.weight"], net.layers[1].W)
    assert tensors["layers.0.weight"].dtype == np.float32


def test_overwrite_replaces_the_file(tmp_path):
    path = tmp_path / "m.dpm"
    make_net(seed=1).save(path)
    make_net(seed=2).save(path)
    np.testing.assert_array_equal(load(path).layers[0].W, make_net(seed=2).layers[0].W)
    assert os.listdir(tmp_path) == ["m.dpm"]


# ------------------------------------------------------------------------------ refusing to save
@pytest.mark.parametrize(
    "metadata, fragment",
    [
        ({"shape": (8, 8)}, "tuple"),
        ({"acc": np.float64(0.5)}, ".item()"),
        ({"w": np.zeros(3)}, "ndarray"),
        ({"loss": [0.1, float("nan")]}, "metadata['loss'][1] is nan"),
        ({"x": {1: "a"}}, "key 1 of type int"),
        ({"s": {1, 2}}, "set"),
        ({"f": print}, "builtin_function_or_method"),
    ],
)
def test_non_json_metadata_is_refused_and_nothing_changes(tmp_path, metadata, fragment):
    path = tmp_path / "m.dpm"
    make_net(seed=1).save(path)
    before = path.read_bytes()
    with pytest.raises(ValueError) as info:
        make_net(seed=2).save(path, metadata=metadata)
    assert fragment in str(info.value)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.dpm"]


def test_networks_a_file_cannot_describe_are_refused(tmp_path):
    net = make_net()
    net.layers[0].activation = dp.Activation("sigmoid", np.tanh, np.tanh, "", "")
    with pytest.raises(ValueError, match="custom activation named 'sigmoid'"):
        net.save(tmp_path / "a")
    net = make_net()
    net.layers[1].W[0, 0] = np.nan
    with pytest.raises(ValueError, match=r"net.layers\[1\].W contains NaN"):
        net.save(tmp_path / "b")
    net = make_net(dtype=np.float32)
    net.layers[0].W = net.layers[0].W.astype(np.float64)
    with pytest.raises(ValueError, match="float32 array"):
        net.save(tmp_path / "c")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch, failing):
    path = tmp_path / "m.dpm"
    make_net(seed=1).save(path)
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, failing, boom)
    with pytest.raises(OSError, match="No space left"):
        make_net(seed=2).save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.dpm"]


def test_an_interrupted_write_leaves_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "m.dpm"
    real_fsync = os.fsync

    def interrupt(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupt)
    with pytest.raises(KeyboardInterrupt):
        make_net().save(path)
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert os.listdir(tmp_path) == []


# Model files and checkpoints share one writer (deltaprop.io.atomic); these cover the paths the
# tests above do not reach on Linux: no unnamed temporary files, and leftovers of a killed writer.
@pytest.fixture
def without_unnamed_files(monkeypatch):
    """Write as on a system without O_TMPFILE (macOS, Windows): a named temporary file."""
    monkeypatch.delattr(os, "O_TMPFILE", raising=False)


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_without_unnamed_files_a_failed_write_still_leaves_the_old_file_alone(
    tmp_path, monkeypatch, without_unnamed_files, failing
):
    path = tmp_path / "m.dpm"
    make_net(seed=1).save(path)
    before = path.read_bytes()
    monkeypatch.setattr(os, failing, lambda *a, **k: (_ for _ in ()).throw(OSError(28, "full")))
    with pytest.raises(OSError, match="full"):
        make_net(seed=2).save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.dpm"]


@pytest.mark.parametrize("unnamed", [True, False])
def test_both_ways_of_writing_give_the_same_file_with_the_usual_permissions(
    tmp_path, monkeypatch, unnamed
):
    if not unnamed:
        monkeypatch.delattr(os, "O_TMPFILE", raising=False)
    elif not hasattr(os, "O_TMPFILE"):
        pytest.skip("no unnamed temporary files on this system")
    net = make_net(seed=3)
    net.save(tmp_path / "m")
    save(net, tmp_path / "m")  # over an existing file too
    assert os.listdir(tmp_path) == ["m"]
    umask = os.umask(0)
    os.umask(umask)
    if os.name == "posix":
        assert (tmp_path / "m").stat().st_mode & 0o777 == 0o666 & ~umask
    np.testing.assert_array_equal(load(tmp_path / "m").layers[0].W, net.layers[0].W)


def test_a_killed_writers_leftover_is_swept_by_the_next_save(tmp_path):
    stale, fresh = tmp_path / ".m.0123456789ab.tmp", tmp_path / ".m.ba9876543210.tmp"
    other = tmp_path / ".n.0123456789ab.tmp"
    for leftover in (stale, fresh, other):
        leftover.write_bytes(b"half a file")
    old = os.stat(stale).st_mtime - 60
    os.utime(stale, (old, old))
    os.utime(other, (old, old))
    make_net().save(tmp_path / "m")
    # Seconds old means its writer is gone; a newer one may belong to a writer still running.
    assert not stale.exists() and fresh.exists() and other.exists()


def test_import_deltaprop_loads_no_safetensors():
    code = "import sys, deltaprop; print(any('safetensors' in m for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ------------------------------------------------------------------------------ hostile files
class Payload:
    """Unpickling this touches a marker file: proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def test_the_pickle_payload_is_live_so_the_next_tests_mean_something(tmp_path):
    marker = tmp_path / "marker"
    pickle.loads(pickle.dumps(Payload(marker)))
    assert marker.exists()


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_a_pickle_runs_no_code(tmp_path, protocol):
    marker = tmp_path / "marker"
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(Payload(marker), protocol=protocol))
    message = assert_refused(path)
    if protocol >= 2:
        assert "pickle" in message and "never unpickles" in message
    assert not marker.exists()


def test_a_torch_style_zip_runs_no_code(tmp_path):
    marker = tmp_path / "marker"
    path = tmp_path / "model.pt"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps(Payload(marker), protocol=2))
        z.writestr("archive/version", "3\n")
    assert_refused(path, "zip archive")
    assert not marker.exists()


def test_every_truncation_is_refused(tmp_path):
    path = tmp_path / "m.dpm"
    make_net([2, 3, 1]).save(path)
    raw = path.read_bytes()
    cut = tmp_path / "cut.dpm"
    for n in range(len(raw)):
        cut.write_bytes(raw[:n])
        with pytest.raises(ModelFileError):
            load(cut)


def test_extra_bytes_at_the_end_are_refused(tmp_path):
    path = tmp_path / "m.dpm"
    make_net().save(path)
    path.write_bytes(path.read_bytes() + b"\0")
    assert_refused(path, "extra bytes")


def test_random_bytes_are_refused(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "random.dpm"
    for n in [0, 1, 7, 8, 9, 100, 5000]:
        for _ in range(5):
            path.write_bytes(rng.integers(0, 256, size=n, dtype=np.uint8).tobytes())
            with pytest.raises(ModelFileError):
                load(path)


@pytest.mark.parametrize("declared_extra", [1, 1000, 2**40, 2**64 - 1 - 0])
def test_a_header_longer_than_the_file_is_refused_before_parsing(tmp_path, declared_extra):
    path = tmp_path / "m.dpm"
    make_net().save(path)
    raw = path.read_bytes()
    declared = min(len(raw) + declared_extra, 2**64 - 1)
    path.write_bytes(struct.pack("<Q", declared) + raw[8:])
    assert_refused(path, f"header of {declared} bytes", f"has {len(raw)} bytes")


def test_shapes_that_do_not_chain(tmp_path, valid):
    tensors, doc = valid
    tensors["layers.1.weight"] = np.zeros((1, 4))
    assert_refused(
        write_model(tmp_path / "m", tensors, doc),
        "layers.1.weight",
        "[1, 4]",
        "[1, 3]",
        "do not chain",
    )
    tensors, doc = valid
    doc["network"]["sizes"] = [2, 4, 1]  # the config no longer matches the tensors either
    assert_refused(write_model(tmp_path / "m", tensors, doc), "do not chain")


def test_missing_and_extra_tensors(tmp_path, valid):
    tensors, doc = valid
    del tensors["layers.1.bias"]
    tensors["evil"] = np.zeros(1)
    assert_refused(
        write_model(tmp_path / "m", tensors, doc),
        "missing ['layers.1.bias']",
        "unexpected ['evil']",
    )


@pytest.mark.parametrize(
    "dtype, name", [(np.float16, "F16"), (np.int64, "I64"), (np.float32, "F32")]
)
def test_other_dtypes_are_refused(tmp_path, valid, dtype, name):
    tensors, doc = valid  # a float64 network
    tensors = {k: v.astype(dtype) for k, v in tensors.items()}
    assert_refused(write_model(tmp_path / "m", tensors, doc), f"dtype '{name}'", "'F64'")


@pytest.mark.parametrize("name", ["evil", "__import__('os').system('touch x')", "Sigmoid", 3])
def test_unknown_activation(tmp_path, valid, name):
    tensors, doc = valid
    doc["network"]["activations"][0] = name
    assert_refused(write_model(tmp_path / "m", tensors, doc), "unknown activation")


def test_unknown_loss_and_incompatible_pairs(tmp_path, valid):
    tensors, doc = valid
    doc["network"]["loss"] = "os.system"
    assert_refused(write_model(tmp_path / "m", tensors, doc), "unknown loss 'os.system'")
    tensors, doc = valid
    doc["network"]["loss"] = "cross_entropy"  # needs softmax outputs; these are sigmoid
    assert_refused(write_model(tmp_path / "m", tensors, doc), "expects output_activation")
    tensors, doc = valid
    doc["network"]["activations"][0] = "softmax"  # never a hidden activation
    assert_refused(write_model(tmp_path / "m", tensors, doc), "output activation")


def test_newer_format_version(tmp_path, valid):
    tensors, doc = valid
    doc["format_version"] = FORMAT_VERSION + 1
    assert_refused(
        write_model(tmp_path / "m", tensors, doc),
        f"format version {FORMAT_VERSION + 1} is newer",
        f"up to version {FORMAT_VERSION}",
    )
    doc["format_version"] = "1"
    assert_refused(write_model(tmp_path / "m", tensors, doc), "format_version must be an integer")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_weights(tmp_path, valid, bad):
    tensors, doc = valid
    tensors["layers.0.weight"][1, 0] = bad
    assert_refused(
        write_model(tmp_path / "m", tensors, doc), "layers.0.weight contains NaN or inf", "(1, 0)"
    )


def test_not_a_deltaprop_file_and_broken_documents(tmp_path, valid):
    tensors, doc = valid
    path = tmp_path / "m"
    path.write_bytes(safetensors.numpy.save(tensors))  # no deltaprop metadata at all
    assert_refused(path, "no 'deltaprop' metadata")
    for document, fragment in [
        ("{not json", "not valid JSON"),
        ('{"format": "deltaprop.model", "format": "x"}', "duplicate key 'format'"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"a": NaN}', "NaN is not valid JSON"),
        (json.dumps({**doc, "metadata": [1]}), "'metadata' entry"),
        (json.dumps({**doc, "format": "other"}), "format 'deltaprop.model'"),
        (json.dumps({**doc, "network": {**doc["network"], "sizes": [2, 0, 1]}}), "sizes"),
        (json.dumps({**doc, "network": {**doc["network"], "dtype": ["float64"]}}), "dtype"),
        (json.dumps({**doc, "network": {**doc["network"], "init": "nope"}}), "Unknown init"),
        (json.dumps({**doc, "rng_state": {"bit_generator": "MT19937"}}), "rng_state"),
    ]:
        assert_refused(write_model(path, tensors, document), fragment)


def test_files_that_cannot_be_read_raise_os_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "missing.dpm")
    with pytest.raises(IsADirectoryError):
        load(tmp_path)


@settings(
    max_examples=300 * int(os.environ.get("DELTAPROP_TEST_SCALE", "1")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_mutated_files_only_ever_raise_model_file_error(tmp_path, data):
    path = tmp_path / "m.dpm"
    make_net([2, 3, 2], "tanh", "softmax", "cross_entropy", seed=1).save(path, metadata={"k": [1]})
    raw = bytearray(path.read_bytes())
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(raw) - 1))
        op = data.draw(st.sampled_from(["set", "insert", "delete"]))
        if op == "set":
            raw[i] = data.draw(st.integers(0, 255))
        elif op == "insert":
            raw[i:i] = data.draw(st.binary(min_size=1, max_size=8))
        else:
            del raw[i : i + data.draw(st.integers(1, 8))]
    path.write_bytes(bytes(raw))
    try:
        net = load(path)
    except ModelFileError:
        return
    # A mutation in a weight's bytes can leave a valid model; it must still be a usable one.
    assert np.isfinite(net.predict(np.zeros((1, 2)))).all()


def test_a_bytes_path_loads_as_its_string_does(tmp_path):
    """dp.load takes str, bytes and path-like paths alike (os.fsdecode), as open() does."""
    path = tmp_path / "bytes.safetensors"
    net = dp.Network([2, 3, 1], seed=0)
    net.save(path)
    again = dp.load(os.fsencode(str(path)))
    np.testing.assert_array_equal(again.predict([[0.5, -1.0]]), net.predict([[0.5, -1.0]]))
