"""deltaprop.optim.schedules against torch.optim.lr_scheduler sequences in fixtures/optimizers.npz.

The fixture is written by fixtures/make_optimizer_fixtures.py (needs torch); these tests
only read it, so they run without torch.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from deltaprop.optim.optimizers import SGD, Adam
from deltaprop.optim.schedules import (
    CosineAnnealingLR,
    ExponentialLR,
    ReduceLROnPlateau,
    Schedule,
    StepLR,
)

FIXTURE = Path(__file__).parent / "fixtures" / "optimizers.npz"
with np.load(FIXTURE, allow_pickle=False) as _data:
    FX = {k: _data[k] for k in _data.files}
CASES = {c["id"]: c for c in json.loads(str(FX["schedule_cases"]))}
CLASSES: dict[str, type[Schedule]] = {
    c.name: c for c in (StepLR, ExponentialLR, CosineAnnealingLR, ReduceLROnPlateau)
}


def build(case: dict, opt: SGD) -> Schedule:
    config = case["config"]
    return CLASSES[config["name"]](opt, **{k: v for k, v in config.items() if k != "name"})


def lr_sequence(sched: Schedule, metrics: list[float] | None, epochs: range) -> list[float]:
    lrs = []
    for epoch in epochs:
        sched.step(None if metrics is None else metrics[epoch])
        assert sched.get_last_lr() == sched.optimizer.lr
        lrs.append(sched.get_last_lr())
    return lrs


@pytest.mark.parametrize("case", list(CASES))
def test_lr_sequence_matches_torch(case: str) -> None:
    c = CASES[case]
    opt = SGD(lr=c["base_lr"])
    sched = build(c, opt)
    assert opt.lr == c["base_lr"] and sched.get_last_lr() == c["base_lr"]
    expected = FX[f"lrs__{case}"]
    got = np.array([c["base_lr"], *lr_sequence(sched, c["metrics"], range(len(expected) - 1))])
    if c["config"]["name"] == "CosineAnnealingLR":
        # Closed form here, torch's recursive update there: equal to rounding.
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)
    else:
        np.testing.assert_array_equal(got, expected)


def test_fixture_covers_every_schedule() -> None:
    assert {c["config"]["name"] for c in CASES.values()} == set(CLASSES)


@pytest.mark.parametrize("case", list(CASES))
def test_state_dict_round_trip_continues_the_sequence(case: str) -> None:
    c = CASES[case]
    opt = SGD(lr=c["base_lr"], momentum=0.9)
    sched = build(c, opt)
    lr_sequence(sched, c["metrics"], range(15))
    opt_state, sched_state = opt.state_dict(), sched.state_dict()
    json.dumps(sched.config())
    rest = lr_sequence(sched, c["metrics"], range(15, 40))

    opt2 = SGD(lr=1.0)
    sched2 = type(sched)(opt2, **{k: v for k, v in sched.config().items() if k != "name"})
    opt2.load_state_dict(opt_state)
    sched2.load_state_dict(sched_state)
    assert sched2.state_dict() == sched_state and opt2.lr == opt_state["lr"]
    assert lr_sequence(sched2, c["metrics"], range(15, 40)) == rest


def test_load_state_dict_rejects_another_schedule() -> None:
    opt = SGD(lr=0.1)
    with pytest.raises(ValueError, match="StepLR"):
        ExponentialLR(opt, 0.9).load_state_dict(StepLR(opt, 3).state_dict())


def test_metric_is_ignored_except_by_plateau() -> None:
    a, b = SGD(lr=0.1), SGD(lr=0.1)
    sa, sb = CosineAnnealingLR(a, T_max=10), CosineAnnealingLR(b, T_max=10)
    for epoch in range(12):
        sa.step()
        sb.step(float(epoch))
        assert a.lr == b.lr


def test_plateau_requires_a_metric() -> None:
    sched = ReduceLROnPlateau(SGD(lr=0.1))
    with pytest.raises(ValueError, match="metric=None"):
        sched.step()
    assert sched.last_epoch == 0


def test_plateau_counts_nan_as_a_bad_epoch() -> None:
    opt = SGD(lr=0.1)
    sched = ReduceLROnPlateau(opt, patience=1, factor=0.5)
    for metric in [1.0, math.nan, math.nan]:
        sched.step(metric)
    assert opt.lr == 0.05 and sched.best == 1.0


def test_schedule_drives_the_optimizer() -> None:
    opt = SGD(lr=1.0)
    sched = StepLR(opt, step_size=1, gamma=0.5)
    p = np.zeros(1)
    for _ in range(3):
        opt.step([p], [np.ones(1)])
        sched.step()
    np.testing.assert_array_equal(p, [-(1.0 + 0.5 + 0.25)])
    assert opt.lr == 0.125


def test_works_with_any_optimizer_and_reads_its_lr() -> None:
    opt = Adam(lr=0.02)
    sched = ExponentialLR(opt, gamma=0.5)
    assert sched.base_lr == 0.02
    sched.step()
    assert opt.lr == 0.01
    with pytest.raises(TypeError, match="lr attribute"):
        StepLR(object(), step_size=2)


@pytest.mark.parametrize(
    ("cls", "kwargs", "received"),
    [
        (StepLR, {"step_size": 0}, "step_size=0"),
        (StepLR, {"step_size": 2.5}, "step_size=2.5"),
        (StepLR, {"step_size": True}, "step_size=True"),
        (StepLR, {"step_size": 3, "gamma": 0}, "gamma=0"),
        (StepLR, {"step_size": 3, "gamma": -0.1}, "gamma=-0.1"),
        (StepLR, {"step_size": 3, "gamma": float("nan")}, "gamma=nan"),
        (ExponentialLR, {"gamma": -0.5}, "gamma=-0.5"),
        (ExponentialLR, {"gamma": float("inf")}, "gamma=inf"),
        (ExponentialLR, {"gamma": "0.9"}, "gamma='0.9'"),
        (CosineAnnealingLR, {"T_max": 0}, "T_max=0"),
        (CosineAnnealingLR, {"T_max": 10, "eta_min": -1e-3}, "eta_min=-0.001"),
        (ReduceLROnPlateau, {"mode": "mean"}, "mode='mean'"),
        (ReduceLROnPlateau, {"factor": 1.0}, "factor=1.0"),
        (ReduceLROnPlateau, {"factor": -0.1}, "factor=-0.1"),
        (ReduceLROnPlateau, {"patience": -1}, "patience=-1"),
        (ReduceLROnPlateau, {"threshold": -1e-4}, "threshold=-0.0001"),
        (ReduceLROnPlateau, {"threshold_mode": "percent"}, "threshold_mode='percent'"),
        (ReduceLROnPlateau, {"cooldown": 1.5}, "cooldown=1.5"),
        (ReduceLROnPlateau, {"min_lr": -0.1}, "min_lr=-0.1"),
        (ReduceLROnPlateau, {"eps": -1e-8}, "eps=-1e-08"),
    ],
)
def test_bad_hyperparameter_raises_naming_the_value(cls, kwargs, received) -> None:
    with pytest.raises(ValueError, match=re.escape(received)) as info:
        cls(SGD(lr=0.1), **kwargs)
    assert cls.name in str(info.value)


def test_config_and_defaults() -> None:
    opt = SGD(lr=0.1)
    assert StepLR(opt, 5).config() == {"name": "StepLR", "step_size": 5, "gamma": 0.1}
    assert CosineAnnealingLR(opt, 8).config() == {
        "name": "CosineAnnealingLR",
        "T_max": 8,
        "eta_min": 0.0,
    }
    assert ReduceLROnPlateau(opt).config() == {
        "name": "ReduceLROnPlateau",
        "mode": "min",
        "factor": 0.1,
        "patience": 10,
        "threshold": 1e-4,
        "threshold_mode": "rel",
        "cooldown": 0,
        "min_lr": 0.0,
        "eps": 1e-8,
    }
    assert opt.lr == 0.1  # building schedules leaves the lr alone


def test_load_state_dict_accepts_zero_d_arrays() -> None:
    opt = SGD(lr=0.1)
    sched = ReduceLROnPlateau(opt, mode="max", patience=1, cooldown=2)
    for metric in [0.5, 0.6, 0.6, 0.6]:
        sched.step(metric)
    state = sched.state_dict()
    restored = ReduceLROnPlateau(SGD(lr=0.1))
    restored.load_state_dict({k: np.asarray(v) for k, v in state.items()})  # as np.load gives
    assert restored.state_dict() == state
