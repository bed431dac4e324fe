"""Files written by deltaprop 0.1 load today exactly as 0.1 read them, and today's writers
produce the same bytes 0.1 did: the file formats did not move when the code did.

The files and what they hold are in tests/fixtures/old_files/, written by
tests/fixtures/make_old_files.py against the 0.1 code (see its docstring to regenerate).
"""

from __future__ import annotations

import importlib.util
import json
import re
import struct
from pathlib import Path

import pytest

import deltaprop as dp
from deltaprop.io.checkpoint_file import TrainingState, load_checkpoint, save_checkpoint
from deltaprop.io.model_file import read_info

FIXTURES = Path(__file__).parent / "fixtures"
OLD = FIXTURES / "old_files"
EXPECTED = json.loads((OLD / "expected.json").read_text(encoding="utf-8"))
MODELS = sorted(EXPECTED["models"])


def _script():
    spec = importlib.util.spec_from_file_location("make_old_files", FIXTURES / "make_old_files.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_old_files = _script()


def as_today(data: bytes) -> bytes:
    """An old file's bytes with its library_version replaced by today's: the one thing in a
    file that is meant to change between versions (the same string while this is 0.1.0)."""

    def entry(version: str) -> bytes:  # as it appears: a JSON string inside the JSON header
        return json.dumps(f'"library_version":"{version}"')[1:-1].encode()

    (header_len,) = struct.unpack("<Q", data[:8])
    header = data[8 : 8 + header_len].rstrip(b" ")
    assert header.count(entry(EXPECTED["library_version"])) == 1
    header = header.replace(entry(EXPECTED["library_version"]), entry(dp.__version__))
    header += b" " * (-len(header) % 8)  # safetensors pads the header to 8-byte alignment
    return struct.pack("<Q", len(header)) + header + data[8 + header_len :]


def without_digest(data: bytes) -> bytes:
    """Today's file with its digest entry taken out: the bytes it would have without one (the
    entry closes the document, a JSON string inside the JSON header, so its quotes are escaped)."""
    (header_len,) = struct.unpack("<Q", data[:8])
    header = data[8 : 8 + header_len].rstrip(b" ")
    entries = re.findall(rb',\\"digest\\":\\"[0-9a-f]{64}\\"(?=}")', header)
    assert len(entries) == 1, entries
    header = header.replace(entries[0], b"")
    header += b" " * (-len(header) % 8)
    return struct.pack("<Q", len(header)) + header + data[8 + header_len :]


def test_the_fixtures_are_the_files_described():
    assert MODELS == ["model_float32.dpm", "model_float64.dpm"]
    assert sorted(p.name for p in OLD.iterdir()) == [
        "checkpoint.dpc",
        "expected.json",
        *MODELS,
    ]
    assert all((OLD / name).stat().st_size < 16_000 for name in [*MODELS, "checkpoint.dpc"])


# --------------------------------------------------------------------------------- model files
@pytest.mark.parametrize("name", MODELS)
def test_an_old_model_file_loads_bit_for_bit(name):
    net = dp.load(OLD / name)
    assert isinstance(net, dp.Network)
    assert make_old_files.network_record(net) == EXPECTED["models"][name]
    info = read_info(OLD / name)
    assert info["library_version"] == EXPECTED["library_version"]
    assert make_old_files.plain(info["network"]) == EXPECTED["models"][name]["config"]


def test_an_old_model_file_reads_through_the_old_module_path():
    import deltaprop.persistence

    info = deltaprop.persistence.read_info(OLD / "model_float64.dpm")
    assert info["metadata"] == {"task": "regression", "trained_on": "nothing", "ratio": 1 / 3}


@pytest.mark.parametrize("name", MODELS)
def test_saving_the_same_network_today_writes_the_old_bytes(tmp_path, name):
    net, metadata = make_old_files.build_models()[name]
    dp.save(net, tmp_path / name, metadata=metadata)
    assert without_digest((tmp_path / name).read_bytes()) == as_today((OLD / name).read_bytes())


@pytest.mark.parametrize("name", MODELS)
def test_an_old_model_file_loaded_and_saved_again_is_the_same_bytes(tmp_path, name):
    dp.load(OLD / name).save(tmp_path / name)
    assert without_digest((tmp_path / name).read_bytes()) == as_today((OLD / name).read_bytes())


# --------------------------------------------------------------------------------- checkpoints
def test_an_old_checkpoint_loads_with_every_field_as_0_1_read_it():
    net, state, document = load_checkpoint(OLD / "checkpoint.dpc")
    assert isinstance(state, TrainingState) and isinstance(state.optimizer, dp.Adam)
    assert make_old_files.describe_checkpoint(net, state, document) == EXPECTED["checkpoint.dpc"]


def test_an_old_checkpoint_is_what_the_fit_that_wrote_it_held():
    recorded = EXPECTED["checkpoint.dpc"]
    assert (recorded["epoch"], recorded["batch"]) == (2, 2)  # stopped mid-epoch 3
    assert recorded["optimizer"]["step"] > 0 and len(recorded["optimizer"]["exp_avg_sq"]) == 4
    assert len(recorded["best_weights"]) == 4 and recorded["early_stopping"]["best_epoch"] == 2
    assert recorded["split"]["shape"] == [30] and recorded["order"]["shape"] == [24]
    assert recorded["scheduler_state"] is not None


def test_an_old_checkpoint_loaded_and_saved_again_is_the_same_bytes(tmp_path):
    net, state, _ = load_checkpoint(OLD / "checkpoint.dpc")
    save_checkpoint(tmp_path / "ckpt", net, state)
    today = without_digest((tmp_path / "ckpt").read_bytes())
    assert today == as_today((OLD / "checkpoint.dpc").read_bytes())
