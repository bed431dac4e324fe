"""Files are verified, never block, and never cost much more memory than they hold (issue 13).

- every single-bit flip of a model file or a checkpoint is refused: the digest covers every byte,
  so an accepted flip would have to leave the loaded content bit-identical, which is asserted
  (the sweep is bounded here; DELTAPROP_TEST_SCALE flips every header bit and more data bits);
- files written before digests still load, and say so;
- a FIFO, a device or a socket given as a model, checkpoint, data or example file is refused at
  once (each test runs under an alarm, so a regression fails instead of hanging the suite);
- temporary files a killed writer left are swept by the next read or write, a live writer's
  never;
- loading a model peaks near its file size.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pathlib
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import tracemalloc

import numpy as np
import pytest
import safetensors.numpy

import deltaprop as dp
from deltaprop.data.datasets import load_dataset
from deltaprop.io import atomic
from deltaprop.io.checkpoint_file import load_checkpoint
from deltaprop.io.model_file import read_info

SCALE = int(os.environ.get("DELTAPROP_TEST_SCALE", "1"))
OLD = pathlib.Path(__file__).parent / "fixtures" / "old_files"


@contextlib.contextmanager
def within(seconds: float):
    """Fail, rather than hang, if the block takes longer than ``seconds``."""

    def expired(signum, frame):
        raise TimeoutError(f"blocked for more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def model_file(folder: pathlib.Path) -> pathlib.Path:
    net = dp.Network([3, 4, 2], output_activation="softmax", loss="cross_entropy", seed=1)
    net.save(folder / "m.dpm", metadata={"class_names": ["a", "é"], "note": "x" * 40})
    return folder / "m.dpm"


def checkpoint_file(folder: pathlib.Path) -> pathlib.Path:
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(12, 3)), rng.integers(0, 2, size=12)
    net = dp.Network([3, 4, 2], output_activation="softmax", loss="cross_entropy", seed=0)
    net.fit(
        X,
        y,
        optimizer=dp.Adam(lr=0.01),
        epochs=2,
        batch_size=5,
        validation_split=0.25,
        early_stopping=3,
        checkpoint=folder / "run.ckpt",
        checkpoint_every_batches=1,
    )
    return folder / "run.ckpt"


def model_content(path):
    net = dp.load(path)
    return (
        [p.tobytes() for p in net.parameters()],
        net.config(),
        net.metadata,
        net.rng.bit_generator.state,
    )


def checkpoint_content(path):
    net, state, document = load_checkpoint(path)
    params = [p.tobytes() for p in net.parameters()]
    return params, document, net.rng.bit_generator.state


def flip_positions(data: bytes, rng: np.random.Generator, header_bits: int, data_bits: int):
    """Bit positions: ``header_bits`` of the prefix and header, then ``data_bits`` of the
    tensor data (all of them where there are fewer)."""
    (header_len,) = struct.unpack("<Q", data[:8])
    header_end = 8 + header_len
    header = np.arange(header_end * 8)
    if header_bits < header.size:
        header = rng.choice(header, header_bits, replace=False)
    tensor = np.arange(header_end * 8, len(data) * 8)
    if data_bits < tensor.size:
        tensor = rng.choice(tensor, data_bits, replace=False)
    return [int(b) for b in np.concatenate([header, tensor])]


@pytest.mark.parametrize("kind", ["model", "checkpoint"])
def test_every_single_bit_flip_is_refused_or_changes_nothing(tmp_path, kind):
    make, content, refused = {
        "model": (model_file, model_content, dp.ModelFileError),
        "checkpoint": (checkpoint_file, checkpoint_content, dp.CheckpointError),
    }[kind]
    original_path = make(tmp_path)
    original = original_path.read_bytes()
    expected = content(original_path)
    rng = np.random.default_rng(13)
    # The normal run: 600 header bits and 200 data bits; DELTAPROP_TEST_SCALE=20: every header
    # bit and 4,000 data bits.
    header_bits = 600 if SCALE == 1 else 10**9
    positions = flip_positions(original, rng, header_bits, 200 * SCALE)
    flipped = tmp_path / "flipped"
    silent = []
    for bit in positions:
        data = bytearray(original)
        data[bit // 8] ^= 1 << (bit % 8)
        flipped.write_bytes(data)
        try:
            loaded = content(flipped)
        except refused as exc:
            assert str(flipped) in str(exc)
            continue
        # Accepted: it must be exactly what was saved, or the flip went unnoticed.
        if loaded != expected:
            silent.append(bit)
    assert not silent, (
        f"{len(silent)} of {len(positions)} flips loaded silently: bits {silent[:10]}"
    )


def test_a_corrupt_file_is_refused_naming_the_file_and_the_digest(tmp_path):
    path = model_file(tmp_path)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01  # the last byte of the last tensor: still a finite float
    path.write_bytes(data)
    with pytest.raises(dp.ModelFileError, match="does not match its blake2b-256 digest") as info:
        dp.load(path)
    assert str(path) in str(info.value)


def test_a_file_with_a_digest_is_still_a_standard_safetensors_file(tmp_path):
    path = model_file(tmp_path)
    tensors = safetensors.numpy.load_file(path)
    assert sorted(tensors) == [
        "layers.0.bias",
        "layers.0.weight",
        "layers.1.bias",
        "layers.1.weight",
    ]
    document = read_info(path)
    assert len(document["digest"]) == 64 and list(document)[-1] == "digest"


def test_files_without_a_digest_still_load_and_info_says_so(capsys):
    for name in ("model_float32.dpm", "model_float64.dpm"):
        assert "digest" not in read_info(OLD / name)
        dp.load(OLD / name)
    load_checkpoint(OLD / "checkpoint.dpc")
    from deltaprop.cli import main

    assert main(["info", str(OLD / "model_float64.dpm")]) == 0
    assert "digest: none" in capsys.readouterr().out


def test_info_reports_a_verified_digest(tmp_path, capsys):
    from deltaprop.cli import main

    assert main(["info", str(model_file(tmp_path))]) == 0
    assert "digest: blake2b-256, verified" in capsys.readouterr().out


def test_a_renamed_digest_key_does_not_pass_the_file_off_as_an_old_one(tmp_path):
    path = model_file(tmp_path)
    data = path.read_bytes()
    # 'digest' -> 'digesu': one bit; the file would look as if written before digests.
    edited = data.replace(b'\\"digest\\"', b'\\"digesu\\"')
    assert len(edited) == len(data) and edited != data
    path.write_bytes(edited)
    with pytest.raises(dp.ModelFileError, match="unknown entries"):
        dp.load(path)


# ------------------------------------------------------------------------------ no hangs
def special_files(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    sock_path = tmp_path / "sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(sock_path))
    return {
        "a FIFO": fifo,
        "a character device": pathlib.Path("/dev/zero"),
        "a socket": sock_path,
    }, server


@pytest.mark.parametrize(
    "reader, error",
    [
        (dp.load, dp.ModelFileError),
        (read_info, dp.ModelFileError),
        (load_checkpoint, dp.CheckpointError),
        (load_dataset, dp.DataError),
        (lambda p: load_dataset(str(p) + ".csv"), dp.DataError),
        (lambda p: load_dataset(p, labels=p), dp.DataError),
    ],
)
def test_fifos_devices_and_sockets_are_refused_at_once(tmp_path, reader, error):
    files, server = special_files(tmp_path)
    os.mkfifo(tmp_path / "fifo.csv")
    os.symlink("/dev/zero", tmp_path / "/dev/zero".replace("/", "_"))
    try:
        for kind, path in files.items():
            if reader.__name__ == "<lambda>" and kind != "a FIFO":
                continue
            with within(10), pytest.raises(error) as info:
                reader(path)
            assert "not a regular file" in str(info.value) and kind in str(info.value)
    finally:
        server.close()


def test_cli_refuses_a_fifo_and_dev_zero_in_one_line(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    commands = [
        ["info", str(fifo)],
        ["predict", str(fifo), "iris"],
        ["evaluate", str(fifo), "iris"],
        ["explain", "--weights", "/dev/zero"],
        ["explain", "--weights", str(fifo)],
        ["train", "--data", str(fifo), "--epochs", "1", "--out", str(tmp_path / "out")],
        ["train", "--resume", str(fifo), "--epochs", "1", "--out", str(tmp_path / "out")],
    ]
    for command in commands:
        result = subprocess.run(
            [sys.executable, "-m", "deltaprop", *command],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 1, (command, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "not a regular file" in lines[0], (command, result.stderr)


# ------------------------------------------------------------------------------ leftovers
def test_a_leftover_of_a_dead_writer_goes_at_once_a_live_writers_never(tmp_path):
    target = tmp_path / "run.ckpt"
    target.write_bytes(b"x")
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_pid = int(dead.stdout)
    fresh_dead = tmp_path / f".run.ckpt.{dead_pid}.0123456789ab.tmp"
    fresh_dead.write_bytes(b"half")
    # A live writer: our own process holds its lock, however old the file is.
    live = tmp_path / f".run.ckpt.{os.getpid()}.ba9876543210.tmp"
    live.write_bytes(b"half")
    old = time.time() - 3600
    os.utime(live, (old, old))
    held = os.open(live, os.O_RDONLY)
    fcntl.flock(held, fcntl.LOCK_EX)
    # Another target's leftover is not this target's business.
    other = tmp_path / f".other.{dead_pid}.0123456789ab.tmp"
    other.write_bytes(b"half")
    try:
        atomic.sweep_leftovers(target)
        assert not fresh_dead.exists()
        assert live.exists() and other.exists()
    finally:
        os.close(held)
    # Unlocked, an hour old and its writer... still alive (us), yet stale by age: swept.
    atomic.sweep_leftovers(target)
    assert not live.exists()


def test_loading_a_model_or_a_checkpoint_sweeps_its_leftovers(tmp_path):
    path = model_file(tmp_path)
    ckpt = checkpoint_file(tmp_path)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    for target in (path, ckpt):
        leftover = tmp_path / f".{target.name}.{int(dead.stdout)}.0123456789ab.tmp"
        leftover.write_bytes(b"half")
    dp.load(path)
    load_checkpoint(ckpt)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.dpm", "run.ckpt"]


SCRIPT = """
import sys, numpy as np, deltaprop as dp
rng = np.random.default_rng(0)
X, y = rng.normal(size=(64, 4)), rng.integers(0, 2, size=64)
net = dp.Network([4, 32, 2], output_activation="softmax", loss="cross_entropy", seed=0)
net.fit(X, y, optimizer=dp.Adam(lr=1e-3), epochs=10**6, batch_size=4, checkpoint=sys.argv[1],
        checkpoint_every_batches=1, engine="reference")
"""


def test_sigkill_at_random_moments_leaves_nothing_after_the_next_load(tmp_path):
    """Killed at any moment, a writer may leave its temporary file (named for the instant
    between link and rename); the next load removes it at once, whatever its age."""
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    rng = np.random.default_rng()
    for attempt in range(3 * SCALE):
        folder = tmp_path / f"kill{attempt}"
        folder.mkdir()
        process = subprocess.Popen([sys.executable, str(script), str(folder / "ckpt")])
        deadline = time.monotonic() + 120
        while not (folder / "ckpt").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.3))
        process.send_signal(signal.SIGKILL)
        process.wait()
        net, state, _ = load_checkpoint(folder / "ckpt")
        assert net.sizes == [4, 32, 2]
        assert sorted(os.listdir(folder)) == ["ckpt"]


# ------------------------------------------------------------------------------ memory
def test_loading_a_model_peaks_near_its_size(tmp_path):
    net = dp.Network([1000, 1000, 1000, 10], seed=0)  # 2 M parameters: 16 MB
    net.save(tmp_path / "big")
    size = (tmp_path / "big").stat().st_size
    tracemalloc.start()
    try:
        loaded = dp.load(tmp_path / "big")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1.2 * size, (peak, size)
    np.testing.assert_array_equal(loaded.layers[1].W, net.layers[1].W)
    loaded.layers[1].W += 1  # the tensors are writable, for training on


def test_copying_a_file_keeps_it_loadable(tmp_path):
    """The digest is of the bytes, not of where they are: a copied file verifies."""
    path = model_file(tmp_path)
    shutil.copy(path, tmp_path / "copy")
    assert model_content(tmp_path / "copy") == model_content(path)
    assert json.loads(json.dumps(read_info(tmp_path / "copy")))["digest"]
