"""Checkpoints: resuming in a new process is bit-identical, SIGKILL leaves a loadable file and
no temporaries, corrupt files and mismatched resumes are refused with clear messages."""

import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import deltaprop as dp
from deltaprop.errors import CheckpointError
from deltaprop.io.checkpoint_file import load_checkpoint

# The training each test runs, as a script for fresh processes. argv: mode, folder, case.
SCRIPT = r'''
import json, os, sys
import numpy as np
import deltaprop as dp

mode, folder, case = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
rng = np.random.default_rng(0)
X = rng.normal(size=(60, 4))
y = (X[:, 0] * X[:, 1] + X[:, 2] > 0).astype(int)
net = dp.Network([4, 6, 2], activation="tanh", output_activation="softmax",
                 loss="cross_entropy", seed=1)
opt = dp.get_optimizer(case["optimizer"])
scheduler = dp.StepLR(opt, step_size=2, gamma=0.5) if case.get("schedule") else None


class StopAtEpoch(dp.Callback):
    """Ends the process abruptly, as a crash would, at the end of an epoch."""

    def on_epoch_end(self, net, epoch, logs):
        if epoch == case["stop_epoch"]:
            os._exit(3)


class StopAtBatch(dp.Callback):
    """Ends the process abruptly after a batch (these runs checkpoint every few batches, so
    they run on the batch engine with or without this callback)."""

    def on_batch_end(self, net, epoch, batch, loss):
        if (epoch, batch) == (case["stop_epoch"], case["stop_batch"]):
            os._exit(3)


kwargs = dict(optimizer=opt, epochs=case["epochs"], batch_size=case["batch_size"],
              shuffle=case.get("shuffle", True), scheduler=scheduler,
              validation_split=case.get("validation_split", 0.0),
              early_stopping=case.get("early_stopping", False),
              checkpoint=os.path.join(folder, "ckpt"),
              checkpoint_every_batches=case.get("every_batches"))
stop = StopAtBatch() if case.get("stop_batch") is not None else StopAtEpoch()
callbacks = [stop] if mode == "interrupted" else []
if mode == "resume":
    kwargs["resume"] = os.path.join(folder, "ckpt")
history = net.fit(X, y, callbacks=callbacks, **kwargs)
result = history.as_dict()
result.pop("seconds")
np.savez(os.path.join(folder, "weights.npz"), *net.parameters())
with open(os.path.join(folder, "history.json"), "w") as f:
    json.dump(result, f)
'''

CASES = {
    "online-sgd-stop-after-epoch-2": {
        "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9},
        "epochs": 5,
        "batch_size": 1,
        "stop_epoch": 2,
    },
    "adam-minibatch-mid-epoch": {
        "optimizer": {"name": "adam", "lr": 0.01},
        "epochs": 6,
        "batch_size": 8,
        "every_batches": 1,
        "stop_epoch": 3,
        "stop_batch": 4,
        "schedule": True,
        "validation_split": 0.2,
        "early_stopping": 3,
    },
    "sgd-unshuffled-mid-epoch": {
        "optimizer": {"name": "sgd", "lr": 0.05, "nesterov": True, "momentum": 0.5},
        "epochs": 4,
        "batch_size": 5,
        "every_batches": 3,
        "stop_epoch": 2,
        "stop_batch": 7,
        "shuffle": False,
    },
    "rmsprop-every-second-epoch": {
        "optimizer": {"name": "rmsprop", "lr": 0.01},
        "epochs": 5,
        "batch_size": 16,
        "stop_epoch": 4,
    },
}


def run(tmp: Path, mode: str, case: dict) -> subprocess.CompletedProcess:
    script = tmp / "train.py"
    script.write_text(SCRIPT)
    return subprocess.run(
        [sys.executable, str(script), mode, str(tmp), json.dumps(case)],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize("name", sorted(CASES))
def test_resumed_run_in_a_new_process_equals_an_uninterrupted_run(tmp_path, name):
    case = CASES[name]
    straight, broken = tmp_path / "straight", tmp_path / "broken"
    straight.mkdir()
    broken.mkdir()
    assert run(straight, "straight", case).returncode == 0
    assert run(broken, "interrupted", case).returncode == 3
    _, state, _ = load_checkpoint(broken / "ckpt")
    if "stop_batch" in case:
        assert (state.epoch, state.batch) != (0, 0)
    resumed = run(broken, "resume", case)
    assert resumed.returncode == 0, resumed.stderr
    a, b = np.load(straight / "weights.npz"), np.load(broken / "weights.npz")
    for key in a.files:
        np.testing.assert_array_equal(a[key], b[key])
    assert json.loads((straight / "history.json").read_text()) == json.loads(
        (broken / "history.json").read_text()
    )


def test_sigkill_leaves_a_loadable_checkpoint_and_no_temporary_files(tmp_path):
    case = {
        "optimizer": {"name": "adam", "lr": 0.001},
        "epochs": 100000,
        "batch_size": 4,
        "every_batches": 1,
        "stop_epoch": -1,
    }
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    rng = np.random.default_rng()
    for attempt in range(3):
        folder = tmp_path / f"kill{attempt}"
        folder.mkdir()
        process = subprocess.Popen(
            [sys.executable, str(script), "straight", str(folder), json.dumps(case)]
        )
        deadline = time.monotonic() + 120
        while not (folder / "ckpt").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(rng.uniform(0.05, 0.6))  # a random moment, mostly mid-write
        process.send_signal(signal.SIGKILL)
        process.wait()
        net, state, _ = load_checkpoint(folder / "ckpt")
        assert state.epoch >= 0 and net.sizes == [4, 6, 2]
        assert sorted(os.listdir(folder)) == ["ckpt"]


def small_fit(tmp_path, **kwargs):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 3)), rng.integers(0, 2, size=20)
    net = dp.Network([3, 4, 2], output_activation="softmax", loss="cross_entropy", seed=0)
    args = dict(optimizer=dp.Adam(lr=0.01), epochs=3, batch_size=5, checkpoint=tmp_path / "ckpt")
    args.update(kwargs)
    history = net.fit(X, y, **args)
    return net, X, y, history


@pytest.mark.parametrize(
    "change, message",
    [
        ({"sizes": [3, 5, 2]}, "network sizes: checkpoint has [3, 4, 2]"),
        ({"activation": "relu"}, "network activations"),
        ({"optimizer": dp.Adam(lr=0.01, betas=(0.8, 0.999))}, "optimizer betas"),
        ({"optimizer": dp.SGD(lr=0.01)}, "optimizer name: checkpoint has 'Adam'"),
        ({"batch_size": 4}, "fit batch_size: checkpoint has 5"),
        ({"data": 1}, "fit data"),
        ({"shuffle": False}, "fit shuffle"),
    ],
)
def test_resuming_a_different_training_is_refused_naming_the_difference(tmp_path, change, message):
    _, X, y, _ = small_fit(tmp_path)
    net = dp.Network(
        change.get("sizes", [3, 4, 2]),
        activation=change.get("activation", "sigmoid"),
        output_activation="softmax",
        loss="cross_entropy",
        seed=0,
    )
    before = [p.copy() for p in net.parameters()]
    if "data" in change:
        X = X + 1.0
    with pytest.raises(ValueError, match=message.replace("[", r"\[")):
        net.fit(
            X,
            y,
            optimizer=change.get("optimizer", dp.Adam(lr=0.01)),
            epochs=5,
            batch_size=change.get("batch_size", 5),
            shuffle=change.get("shuffle", True),
            resume=tmp_path / "ckpt",
        )
    for p, q in zip(before, net.parameters()):
        np.testing.assert_array_equal(p, q)


def test_a_different_loss_is_refused(tmp_path):
    _, X, y, _ = small_fit(tmp_path)
    net = dp.Network([3, 4, 2], output_activation="sigmoid", loss="mse", seed=0)
    with pytest.raises(ValueError, match="network loss: checkpoint has 'cross_entropy'"):
        net.fit(
            X,
            np.eye(2)[y],
            optimizer=dp.Adam(lr=0.01),
            epochs=5,
            batch_size=5,
            resume=tmp_path / "ckpt",
        )


def test_resuming_extends_a_finished_run(tmp_path):
    net, X, y, history = small_fit(tmp_path, epochs=3)
    (tmp_path / "other").mkdir()
    longer, *_ = small_fit(tmp_path / "other", epochs=5)
    resumed = dp.Network([3, 4, 2], output_activation="softmax", loss="cross_entropy", seed=0)
    h = resumed.fit(
        X, y, optimizer=dp.Adam(lr=0.01), epochs=5, batch_size=5, resume=tmp_path / "ckpt"
    )
    assert h.epoch == [1, 2, 3, 4, 5] and h.loss[:3] == history.loss
    for p, q in zip(resumed.parameters(), longer.parameters()):
        np.testing.assert_array_equal(p, q)


@pytest.mark.parametrize("cut", [0, 7, 8, 100, -1, -50])
def test_truncated_checkpoints_are_refused(tmp_path, cut):
    small_fit(tmp_path)
    data = (tmp_path / "ckpt").read_bytes()
    bad = tmp_path / "bad"
    bad.write_bytes(data[:cut] if cut >= 0 else data[: len(data) + cut])
    with pytest.raises(CheckpointError, match="bad"):
        load_checkpoint(bad)


def test_corrupt_and_foreign_files_are_refused(tmp_path):
    net, *_ = small_fit(tmp_path)
    data = bytearray((tmp_path / "ckpt").read_bytes())
    header_len = int.from_bytes(data[:8], "little")
    text = data[8 : 8 + header_len].decode()
    broken = text.replace('\\"step\\":', '\\"stpe\\":')  # inside the escaped document
    assert broken != text
    (tmp_path / "edited").write_bytes(
        len(broken).to_bytes(8, "little") + broken.encode() + data[8 + header_len :]
    )
    with pytest.raises(CheckpointError, match="does not match its blake2b-256 digest"):
        load_checkpoint(tmp_path / "edited")
    # The same edit in a file without a digest (as written before digests) is still caught.
    unsealed = re.sub(r',\\"digest\\":\\"[0-9a-f]{64}\\"(?=}")', "", broken)
    unsealed += " " * (-len(unsealed) % 8)
    (tmp_path / "edited").write_bytes(
        len(unsealed).to_bytes(8, "little") + unsealed.encode() + data[8 + header_len :]
    )
    with pytest.raises(CheckpointError, match="step"):
        load_checkpoint(tmp_path / "edited")
    (tmp_path / "random").write_bytes(np.random.default_rng(0).bytes(500))
    with pytest.raises(CheckpointError, match="random"):
        load_checkpoint(tmp_path / "random")
    net.save(tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError, match="a model file: pass it to dp.load"):
        load_checkpoint(tmp_path / "model.safetensors")


def test_cli_checkpoint_and_resume_equal_one_run(tmp_path):
    def train(*args):
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "deltaprop",
                "train",
                "--data",
                "iris",
                "--hidden",
                "8",
                "--quiet",
                "--no-plots",
                *map(str, args),
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    train("--epochs", "3", "--checkpoint", "run.ckpt", "--out", "first")
    resumed = train("--epochs", "6", "--resume", "run.ckpt", "--out", "resumed")
    straight = train("--epochs", "6", "--out", "straight")
    assert resumed.splitlines()[:2] == straight.splitlines()[:2]  # test accuracy and loss

    def history(folder):
        data = json.loads((tmp_path / folder / "history.json").read_text())
        data.pop("seconds")
        return data

    assert history("resumed") == history("straight")


FUZZ = int(os.environ.get("DELTAPROP_TEST_SCALE", "1"))


def test_mutated_checkpoints_raise_only_checkpoint_error(tmp_path):
    """Flip, drop and insert bytes of a valid checkpoint: every result is either a valid
    checkpoint or a CheckpointError, never another exception."""
    small_fit(tmp_path, checkpoint_every_batches=2)
    original = (tmp_path / "ckpt").read_bytes()
    rng = np.random.default_rng(0)
    target = tmp_path / "mutant"
    outcomes = {"refused": 0, "loaded": 0}
    for _ in range(150 * FUZZ):
        data = bytearray(original)
        for _ in range(rng.integers(1, 4)):
            where = int(rng.integers(0, len(data)))
            kind = rng.integers(0, 3)
            if kind == 0:
                data[where] = int(rng.integers(0, 256))
            elif kind == 1:
                del data[where : where + int(rng.integers(1, 16))]
            else:
                data[where:where] = rng.bytes(int(rng.integers(1, 16)))
        target.write_bytes(bytes(data))
        try:
            load_checkpoint(target)
            outcomes["loaded"] += 1
        except CheckpointError:
            outcomes["refused"] += 1
    assert outcomes["refused"] > 100 * FUZZ


def test_a_leftover_temporary_file_is_swept_by_the_next_write(tmp_path):
    leftover = tmp_path / ".ckpt.0123456789ab.tmp"
    leftover.write_bytes(b"half a checkpoint")
    old = time.time() - 60
    os.utime(leftover, (old, old))
    unrelated = tmp_path / ".other.0123456789ab.tmp"
    unrelated.write_bytes(b"not ours")
    os.utime(unrelated, (old, old))
    small_fit(tmp_path)
    assert not leftover.exists() and unrelated.exists()
    load_checkpoint(tmp_path / "ckpt")


# ------------------------------------------------------------------ checkpoints from 0.1
FIXTURES = Path(__file__).parent / "fixtures"


def _old_checkpoint_maker():
    spec = importlib.util.spec_from_file_location(
        "make_old_checkpoint", FIXTURES / "make_old_checkpoint.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


old_checkpoints = _old_checkpoint_maker()


def _assert_close_history(got, want, key: str) -> None:
    """A history entry equal to rounding: numbers close, everything else (None, flags) equal."""
    if not isinstance(want, list):
        assert got == want, key
        return
    assert len(got) == len(want), key
    for a, b in zip(got, want):
        if isinstance(b, float):
            assert a == pytest.approx(b, rel=1e-10, abs=1e-12), key
        else:
            assert a == b, key


@pytest.mark.parametrize("name", sorted(old_checkpoints.CASES))
def test_a_checkpoint_written_by_deltaprop_0_1_resumes(tmp_path, name):
    """tests/fixtures/old_checkpoints/ holds checkpoints deltaprop 0.1 wrote when these fits
    were interrupted (see make_old_checkpoint.py). Today's code, interrupted at the same
    moment, writes the same state to rounding: the kernels' arithmetic may change in the last
    bits between versions (their exponential has since 0.2, train/engines/exponential.py),
    never the format or the resume. Resumed, the old checkpoint ends where the uninterrupted
    fit does, to rounding, and today's own checkpoint of that moment exactly there."""
    old = FIXTURES / "old_checkpoints" / f"{name}.dpc"
    shutil.copy(old, tmp_path / "old")
    resumed, resumed_history = old_checkpoints.train(name, tmp_path / "old", "resume")
    assert old_checkpoints.train(name, tmp_path / "today", "interrupted")[1] is None
    net_old, state_old, _ = load_checkpoint(old)
    net_today, state_today, _ = load_checkpoint(tmp_path / "today")
    assert (state_old.epoch, state_old.batch) == (state_today.epoch, state_today.batch)
    assert (state_old.epoch, state_old.batch) != (0, 0)
    for p, q in zip(net_old.parameters(), net_today.parameters()):
        np.testing.assert_allclose(p, q, rtol=1e-12, atol=1e-14)
    again, again_history = old_checkpoints.train(name, tmp_path / "today", "resume")
    straight, straight_history = old_checkpoints.train(name, tmp_path / "straight", "straight")
    for p, q in zip(again.parameters(), straight.parameters()):
        np.testing.assert_array_equal(p, q)
    assert again_history == straight_history
    for p, q in zip(resumed.parameters(), straight.parameters()):
        np.testing.assert_allclose(p, q, rtol=1e-10, atol=1e-12)
    assert resumed_history.keys() == straight_history.keys()
    for key, values in straight_history.items():
        _assert_close_history(resumed_history[key], values, key)
