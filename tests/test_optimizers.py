"""deltaprop.optim.optimizers against torch.optim trajectories recorded in fixtures/optimizers.npz.

The fixture is written by fixtures/make_optimizer_fixtures.py (needs torch); these tests
only read it, so they run without torch.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from deltaprop.optim.optimizers import SGD, Adagrad, Adam, AdamW, Optimizer, RMSprop, get_optimizer

FIXTURE = Path(__file__).parent / "fixtures" / "optimizers.npz"
with np.load(FIXTURE, allow_pickle=False) as _data:
    FX = {k: _data[k] for k in _data.files}
CASES = {c["id"]: c["config"] for c in json.loads(str(FX["optimizer_cases"]))}
N_STEPS = FX["traj__sgd_plain__0"].shape[0]

# One configuration per class with every option that adds state or work switched on.
FULL = {
    "SGD": {"name": "SGD", "lr": 0.05, "momentum": 0.9, "weight_decay": 0.1, "nesterov": True},
    "SGD-damp": {"name": "SGD", "lr": 0.05, "momentum": 0.9, "dampening": 0.3},
    "RMSprop": {
        "name": "RMSprop",
        "lr": 0.01,
        "weight_decay": 0.1,
        "momentum": 0.5,
        "centered": True,
    },
    "Adam": {"name": "Adam", "lr": 0.05, "weight_decay": 0.1, "amsgrad": True},
    "AdamW": {"name": "AdamW", "lr": 0.05, "amsgrad": True},
    "Adagrad": {"name": "Adagrad", "lr": 0.1, "lr_decay": 0.1, "weight_decay": 0.1},
}


def initial_params(dtype: type = np.float64) -> list[np.ndarray]:
    return [FX["init_0"].astype(dtype), FX["init_1"].astype(dtype)]


def field_grads(params: list[np.ndarray]) -> list[np.ndarray]:
    """The fixture's gradient field g = A x + 0.5 sin(2 x) + c, x = p flattened."""
    out = []
    for k, p in enumerate(params):
        A, c = FX[f"field_A{k}"].astype(p.dtype), FX[f"field_c{k}"].astype(p.dtype)
        x = p.reshape(-1)
        out.append((A @ x + 0.5 * np.sin(2 * x) + c).reshape(p.shape).astype(p.dtype))
    return out


def run(opt: Optimizer, params: list[np.ndarray], n: int) -> list[np.ndarray]:
    traj = [np.empty((n, *p.shape), p.dtype) for p in params]
    for t in range(n):
        opt.step(params, field_grads(params))
        for k, p in enumerate(params):
            traj[k][t] = p
    return traj


def test_fixture_records_torch_version() -> None:
    assert re.match(r"\d+\.\d+", str(FX["torch_version"]))
    assert FIXTURE.stat().st_size < 200_000


@pytest.mark.parametrize("case", list(CASES))
def test_trajectory_matches_torch(case: str) -> None:
    config = CASES[case]
    opt = get_optimizer(config)
    got = opt.config()
    for key, value in config.items():
        assert got[key] == value
    traj = run(opt, initial_params(), N_STEPS)
    for k in range(2):
        np.testing.assert_allclose(traj[k], FX[f"traj__{case}__{k}"], rtol=1e-9, atol=1e-12)


def test_every_optimizer_and_option_is_covered_by_the_fixture() -> None:
    names = {c["name"] for c in CASES.values()}
    assert names == {"SGD", "RMSprop", "Adam", "AdamW", "Adagrad"}
    options = {(c["name"], k) for c in CASES.values() for k in c if k not in ("name", "lr")}
    for cls in (SGD, RMSprop, Adam, Adagrad):
        for key in cls().config():
            if key not in ("name", "lr"):
                assert (cls.name, key) in options, (cls.name, key)


def test_defaults_are_torch_defaults() -> None:
    assert SGD().config() == {
        "name": "SGD",
        "lr": 1e-3,
        "momentum": 0.0,
        "dampening": 0.0,
        "weight_decay": 0.0,
        "nesterov": False,
    }
    assert RMSprop().config() == {
        "name": "RMSprop",
        "lr": 1e-2,
        "alpha": 0.99,
        "eps": 1e-8,
        "weight_decay": 0.0,
        "momentum": 0.0,
        "centered": False,
    }
    adam = {"lr": 1e-3, "betas": [0.9, 0.999], "eps": 1e-8, "amsgrad": False}
    assert Adam().config() == {"name": "Adam", **adam, "weight_decay": 0.0}
    assert AdamW().config() == {"name": "AdamW", **adam, "weight_decay": 1e-2}
    assert Adagrad().config() == {
        "name": "Adagrad",
        "lr": 1e-2,
        "lr_decay": 0.0,
        "weight_decay": 0.0,
        "initial_accumulator_value": 0.0,
        "eps": 1e-10,
    }


def test_plain_sgd_is_the_textbook_update() -> None:
    w = np.array([[0.5, -1.0], [2.0, 0.0]])
    g = np.array([[0.25, 2.0], [-4.0, 1.0]])
    SGD(lr=0.1).step([w], [g])
    expected = np.array([[0.5 - 0.1 * 0.25, -1.0 - 0.1 * 2.0], [2.0 + 0.1 * 4.0, -0.1]])
    np.testing.assert_array_equal(w, expected)


@settings(max_examples=50, deadline=None)
@given(
    data=st.data(),
    dtype=st.sampled_from([np.float32, np.float64]),
    lr=st.floats(0, 10, allow_subnormal=False),
)
def test_plain_sgd_equals_p_minus_lr_g_bit_for_bit(data, dtype, lr) -> None:
    shape = data.draw(hnp.array_shapes(max_dims=3, max_side=5))
    elems = st.floats(-1e3, 1e3, width=np.dtype(dtype).itemsize * 8)
    p = data.draw(hnp.arrays(dtype, shape, elements=elems))
    g = data.draw(hnp.arrays(dtype, shape, elements=elems))
    expected = p - lr * g  # NumPy's own scalar rules: a Python float stays weak
    SGD(lr=lr).step([p], [g])
    assert p.dtype == dtype
    np.testing.assert_array_equal(p, expected)


@pytest.mark.parametrize("key", list(FULL))
def test_float32_stays_float32(key: str) -> None:
    opt = get_optimizer(FULL[key])
    params = initial_params(np.float32)
    traj = run(opt, params, 10)
    assert all(p.dtype == np.float32 for p in params)
    for arrays in opt.state:  # buffers and scratch alike
        assert all(a.dtype == np.float32 for a in arrays.values())
    for key_, value in opt.state_dict().items():
        if isinstance(value, list) and value and isinstance(value[0], np.ndarray):
            assert all(a.dtype == np.float32 for a in value), key_
    ref = run(get_optimizer(FULL[key]), initial_params(), 10)
    for k in range(2):
        np.testing.assert_allclose(traj[k], ref[k], rtol=1e-3, atol=1e-4)


def test_float64_lr_keeps_float32_arithmetic() -> None:
    opt = SGD(lr=np.float64(0.1))
    assert type(opt.lr) is float
    opt.lr = np.float64(0.3)
    assert type(opt.lr) is float
    p, g = np.ones(3, np.float32), np.full(3, 0.7, np.float32)
    opt.step([p], [g])
    np.testing.assert_array_equal(p, np.float32(1) - np.float32(0.3) * np.float32(0.7))


@pytest.mark.parametrize("key", list(FULL))
def test_grads_are_not_modified(key: str) -> None:
    opt = get_optimizer(FULL[key])
    params = initial_params()
    grads = field_grads(params)
    saved = [g.copy() for g in grads]
    for _ in range(4):  # the same arrays every step: nothing may alias or write them
        opt.step(params, grads)
        for g, s in zip(grads, saved, strict=True):
            np.testing.assert_array_equal(g, s)


@pytest.mark.parametrize(
    ("cls", "kwargs", "received"),
    [
        (SGD, {"lr": -1}, "lr=-1"),
        (SGD, {"lr": float("nan")}, "lr=nan"),
        (SGD, {"lr": float("inf")}, "lr=inf"),
        (SGD, {"lr": "0.1"}, "lr='0.1'"),
        (SGD, {"lr": True}, "lr=True"),
        (SGD, {"lr": None}, "lr=None"),
        (SGD, {"momentum": -0.5}, "momentum=-0.5"),
        (SGD, {"dampening": float("nan")}, "dampening=nan"),
        (SGD, {"weight_decay": -1e-4}, "weight_decay=-0.0001"),
        (SGD, {"nesterov": "yes"}, "nesterov='yes'"),
        (SGD, {"nesterov": True}, "momentum=0"),
        (SGD, {"nesterov": True, "momentum": 0.9, "dampening": 0.1}, "dampening=0.1"),
        (RMSprop, {"lr": -0.01}, "lr=-0.01"),
        (RMSprop, {"alpha": -0.1}, "alpha=-0.1"),
        (RMSprop, {"alpha": 1.5}, "alpha=1.5"),
        (RMSprop, {"eps": -1e-8}, "eps=-1e-08"),
        (RMSprop, {"weight_decay": -1}, "weight_decay=-1"),
        (RMSprop, {"momentum": -0.9}, "momentum=-0.9"),
        (RMSprop, {"centered": 1}, "centered=1"),
        (Adam, {"lr": -1e-3}, "lr=-0.001"),
        (Adam, {"betas": (1.0, 0.999)}, "betas[0]=1.0"),
        (Adam, {"betas": (-0.1, 0.999)}, "betas[0]=-0.1"),
        (Adam, {"betas": (0.9, 1.0)}, "betas[1]=1.0"),
        (Adam, {"betas": 0.9}, "0.9"),
        (Adam, {"betas": (0.9, 0.99, 0.999)}, "(0.9, 0.99, 0.999)"),
        (Adam, {"eps": -1e-8}, "eps=-1e-08"),
        (Adam, {"weight_decay": -0.1}, "weight_decay=-0.1"),
        (Adam, {"amsgrad": "no"}, "amsgrad='no'"),
        (AdamW, {"weight_decay": -0.01}, "weight_decay=-0.01"),
        (AdamW, {"betas": (0.9, float("nan"))}, "betas[1]=nan"),
        (Adagrad, {"lr": -0.1}, "lr=-0.1"),
        (Adagrad, {"lr_decay": -1}, "lr_decay=-1"),
        (Adagrad, {"weight_decay": -1}, "weight_decay=-1"),
        (Adagrad, {"initial_accumulator_value": -0.1}, "initial_accumulator_value=-0.1"),
        (Adagrad, {"eps": -1e-10}, "eps=-1e-10"),
    ],
)
def test_bad_hyperparameter_raises_naming_the_value(cls, kwargs, received) -> None:
    with pytest.raises(ValueError, match=re.escape(received)) as info:
        cls(**kwargs)
    assert cls.name in str(info.value)


def test_error_message_is_keras_style() -> None:
    with pytest.raises(ValueError) as info:
        SGD(lr=-1)
    assert str(info.value) == "SGD: lr must be a finite number >= 0. Received: lr=-1"


def test_lr_setter_validates() -> None:
    opt = Adam()
    with pytest.raises(ValueError, match=re.escape("lr=-0.5")):
        opt.lr = -0.5
    opt.lr = 0.5
    assert opt.lr == 0.5 and opt.config()["lr"] == 0.5


@pytest.mark.parametrize("case", list(CASES))
def test_state_dict_round_trip_continues_the_trajectory(case: str) -> None:
    opt = get_optimizer(CASES[case])
    params = initial_params()
    run(opt, params, 12)
    saved = opt.state_dict()
    frozen = copy.deepcopy(saved)
    at_12 = [p.copy() for p in params]
    rest = run(opt, params, N_STEPS - 12)

    for key, value in saved.items():  # plain data: numbers, strings, lists of those/arrays
        assert isinstance(value, (int, float, str, bool, list)), key
        if isinstance(value, list):
            assert all(isinstance(v, (int, float, np.ndarray)) for v in value), key
            for a, b in zip(value, frozen[key], strict=True):  # copies, not live state
                np.testing.assert_array_equal(a, b)

    resumed = get_optimizer(saved["name"])  # default hyperparameters, then loaded ones
    resumed.load_state_dict(saved)
    assert resumed.config() == opt.config() and resumed.steps == 12
    rest2 = run(resumed, at_12, N_STEPS - 12)
    for k in range(2):
        np.testing.assert_array_equal(rest2[k], rest[k])


def test_load_state_dict_rejects_other_optimizers_and_missing_buffers() -> None:
    adam = Adam()
    adam.step([np.zeros(3)], [np.ones(3)])
    with pytest.raises(ValueError, match="Adam"):
        SGD().load_state_dict(adam.state_dict())
    broken = adam.state_dict()
    broken["exp_avg_sq"] = []
    with pytest.raises(ValueError, match="exp_avg_sq"):
        Adam().load_state_dict(broken)
    bad_lr = adam.state_dict() | {"lr": -1.0}
    with pytest.raises(ValueError, match=re.escape("lr=-1.0")):
        Adam().load_state_dict(bad_lr)


def test_reset_forgets_state() -> None:
    config = FULL["Adam"]
    opt = get_optimizer(config)
    run(opt, initial_params(), 5)
    opt.reset()
    assert opt.steps == 0 and opt.state_dict()["exp_avg"] == []
    again = run(opt, initial_params(), 5)
    fresh = run(get_optimizer(config), initial_params(), 5)
    for k in range(2):
        np.testing.assert_array_equal(again[k], fresh[k])
    opt.reset()
    opt.step([np.zeros(7)], [np.ones(7)])  # new shapes are fine after a reset


@pytest.mark.parametrize("key", list(FULL))
def test_changed_parameters_raise(key: str) -> None:
    opt = get_optimizer(FULL[key])
    params = initial_params()
    opt.step(params, field_grads(params))
    extra = [*params, np.zeros(2)]
    with pytest.raises(ValueError, match="created for 2"):
        opt.step(extra, [np.zeros_like(p) for p in extra])
    with pytest.raises(ValueError, match=re.escape("shape (4, 3)")):
        opt.step([params[0].T.copy(), params[1]], [params[0].T, params[1]])
    with pytest.raises(ValueError, match="float32"):
        p32 = [p.astype(np.float32) for p in params]
        opt.step(p32, p32)
    with pytest.raises(ValueError, match=re.escape("grads[1]")):
        opt.step(params, [params[0], np.zeros(4)])
    with pytest.raises(ValueError, match="2 params but 1 grads"):
        opt.step(params, params[:1])
    assert opt.steps == 1  # nothing above took a step


def test_non_float_params_are_rejected() -> None:
    with pytest.raises(TypeError, match="params\\[0\\]"):
        SGD().step([np.zeros(3, dtype=int)], [np.ones(3)])
    with pytest.raises(TypeError, match="list"):
        SGD().step([[0.0, 1.0]], [np.ones(2)])


def test_get_optimizer() -> None:
    sgd = SGD(lr=0.3)
    assert get_optimizer(sgd) is sgd
    for name, cls in [("sgd", SGD), ("RMSprop", RMSprop), ("ADAM", Adam), ("adamw", AdamW)]:
        opt = get_optimizer(name)
        assert type(opt) is cls and opt.config() == cls().config()
    ada = get_optimizer({"name": "Adagrad", "lr": 0.5, "lr_decay": 0.1})
    assert isinstance(ada, Adagrad) and ada.lr == 0.5 and ada.lr_decay == 0.1
    for config in FULL.values():
        opt = get_optimizer(config)
        assert get_optimizer(json.loads(json.dumps(opt.config()))).config() == opt.config()
    assert repr(get_optimizer("sgd")).startswith("SGD(lr=0.001")


def test_get_optimizer_errors() -> None:
    with pytest.raises(ValueError, match="'lbfgs'.*SGD, RMSprop, Adam, AdamW, Adagrad"):
        get_optimizer("lbfgs")
    with pytest.raises(ValueError, match="None"):
        get_optimizer({"lr": 0.1})
    with pytest.raises(ValueError, match="momentum_decay"):
        get_optimizer({"name": "sgd", "momentum_decay": 0.1})
    with pytest.raises(ValueError, match=re.escape("lr=-1")):
        get_optimizer({"name": "adam", "lr": -1})
    with pytest.raises(TypeError):
        get_optimizer(0.1)


def test_load_state_dict_accepts_what_np_load_returns(tmp_path: Path) -> None:
    opt = get_optimizer(FULL["Adam"])
    params = initial_params()
    run(opt, params, 3)
    saved = opt.state_dict()
    flat = {k: v for k, v in saved.items() if not isinstance(v, list) or k == "betas"}
    for key in opt.buffer_names():
        for i, a in enumerate(saved[key]):
            flat[f"{key}__{i}"] = a
    np.savez(tmp_path / "opt.npz", **flat)
    with np.load(tmp_path / "opt.npz", allow_pickle=False) as data:
        loaded = {k: data[k] for k in data.files}  # scalars come back as 0-d arrays
    state = {k: v for k, v in loaded.items() if "__" not in k}
    for key in opt.buffer_names():
        state[key] = [loaded[f"{key}__{i}"] for i in range(2)]
    resumed = Adam()
    resumed.load_state_dict(state)
    assert resumed.config() == opt.config()
    at_3 = [p.copy() for p in params]
    expected = run(opt, params, 3)
    got = run(resumed, at_3, 3)
    for k in range(2):
        np.testing.assert_array_equal(got[k], expected[k])
