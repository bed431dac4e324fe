"""Training controls: sample and class weights, dropout, L1/L2 penalties, gradient clipping.

Each is checked against an independent statement of what it must compute (repeated rows,
finite differences, a fixed mask, PyTorch's clipping on a committed fixture), on every engine.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import deltaprop as dp
from deltaprop.train.engines import choose

FIXTURES = Path(__file__).resolve().parent / "fixtures"
FAST = ["batch"] if choose.load_kernels() is not None else []


def _data(n=30, n_in=3, n_out=3, seed=0, labels=True):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_in))
    y = rng.integers(0, n_out, size=n)
    return X, (y if labels else np.eye(n_out)[y])


def _net(seed=1, **kw):
    sizes = kw.pop("sizes", [3, 5, 4, 3])
    return dp.Network(
        sizes,
        activation="tanh",
        output_activation="softmax",
        loss="cross_entropy",
        seed=seed,
        **kw,
    )


def _same(a, b, rtol=1e-12, atol=1e-14):
    for p, q in zip(a.parameters(), b.parameters()):
        assert_allclose(p, q, rtol=rtol, atol=atol)


# ------------------------------------------------------------------ sample weights
@pytest.mark.parametrize("engine", ["reference", *FAST])
def test_integer_weights_are_repeated_rows_in_full_batch_descent(engine):
    X, y = _data()
    w = np.random.default_rng(3).integers(0, 4, size=len(y))
    w[0] = 2
    weighted, repeated = _net(), _net()
    h_w = weighted.fit(
        X,
        y,
        sample_weight=w,
        batch_size=None,
        epochs=5,
        optimizer=dp.SGD(lr=0.5),
        engine=engine,
        shuffle=False,
    )
    rows = np.repeat(np.arange(len(y)), w)
    h_r = repeated.fit(
        X[rows],
        y[rows],
        batch_size=None,
        epochs=5,
        optimizer=dp.SGD(lr=0.5),
        engine=engine,
        shuffle=False,
    )
    _same(weighted, repeated, rtol=1e-10, atol=1e-12)
    assert_allclose(h_w.loss, h_r.loss, rtol=1e-10)
    # The loss is Σ w E / Σ w, the gradient its gradient.
    assert weighted.loss(X, y, w) == pytest.approx(repeated.loss(X[rows], y[rows]), rel=1e-12)


def test_weights_scale_free_and_one_example_batches_ignore_them():
    X, y = _data()
    w = np.random.default_rng(1).uniform(0.1, 3.0, size=len(y))
    a, b = _net(), _net()
    a.fit(X, y, sample_weight=w, batch_size=8, epochs=2, engine="reference")
    b.fit(X, y, sample_weight=7.5 * w, batch_size=8, epochs=2, engine="reference")
    _same(a, b, rtol=1e-11, atol=1e-13)
    # With one example per batch, Σ w E / Σ w is E (scikit-learn's meaning, not Keras's).
    c, d = _net(), _net()
    c.fit(X, y, sample_weight=w, batch_size=1, epochs=1)
    d.fit(X, y, batch_size=1, epochs=1, engine="reference")
    _same(c, d, rtol=1e-10, atol=1e-12)


def test_class_weight_is_exactly_the_matching_sample_weight():
    X, y = _data()
    table = {0: 0.5, 1: 2.0, 2: 1.25}
    a, b = _net(), _net()
    h_a = a.fit(X, y, class_weight=table, epochs=3, batch_size=7)
    h_b = b.fit(X, y, sample_weight=np.array([table[c] for c in y]), epochs=3, batch_size=7)
    assert h_a.loss == h_b.loss
    for p, q in zip(a.parameters(), b.parameters()):
        assert_array_equal(p, q)
    # "balanced": n / (k · count_c), scikit-learn's compute_class_weight.
    from sklearn.utils.class_weight import compute_class_weight

    sk = compute_class_weight("balanced", classes=np.unique(y), y=y)
    c, d = _net(), _net()
    c.fit(X, y, class_weight="balanced", epochs=2)
    d.fit(X, y, sample_weight=sk[y], epochs=2)
    _same(c, d)


def test_class_weight_for_one_sigmoid_output_reads_the_0_1_targets():
    X, y = _data(n_out=2)
    net = dp.Network([3, 4, 1], output_activation="sigmoid", loss="binary_cross_entropy", seed=0)
    other = net.copy()
    net.fit(X, y, class_weight={1: 3.0}, epochs=2)
    other.fit(X, y, sample_weight=np.where(y == 1, 3.0, 1.0), epochs=2)
    _same(net, other, rtol=0, atol=0)


def test_validation_weights_weight_val_loss():
    X, y = _data()
    Xv, yv = _data(n=12, seed=5)
    wv = np.linspace(0.0, 2.0, 12)
    net = _net()
    h = net.fit(X, y, epochs=1, validation_data=(Xv, yv, wv))
    assert h.val_loss[0] == pytest.approx(net.loss(Xv, yv, wv), rel=1e-14)
    per = -np.log(net.predict(Xv)[np.arange(12), yv])
    assert h.val_loss[0] == pytest.approx(np.dot(wv, per) / wv.sum(), rel=1e-12)


def test_validation_split_splits_the_weights_too():
    X, y = _data(n=40)
    w = np.linspace(0.5, 2.0, 40)
    a = _net()
    b = a.copy()
    a.fit(X, y, sample_weight=w, validation_split=0.25, epochs=2, engine="reference")
    order = b.rng.permutation(40)  # the split a drew, from the same generator state
    Xv, yv, wv = X[order[:10]], y[order[:10]], w[order[:10]]
    h = b.fit(
        X[order[10:]],
        y[order[10:]],
        sample_weight=w[order[10:]],
        epochs=2,
        validation_data=(Xv, yv, wv),
        engine="reference",
    )
    _same(a, b, rtol=0, atol=0)
    assert h.val_loss[-1] == pytest.approx(b.loss(Xv, yv, wv), rel=1e-14)


# ------------------------------------------------------------------ bad input
BAD = [
    (dict(sample_weight=-np.ones(30)), "sample_weight must be >= 0; received -1.0 at index 0"),
    (dict(sample_weight=np.r_[np.nan, np.ones(29)]), "must be finite; received nan"),
    (dict(sample_weight=np.r_[np.inf, np.ones(29)]), "must be finite; received inf"),
    (dict(sample_weight=np.ones(29)), r"one weight per example: shape \(30,\)"),
    (dict(sample_weight=np.zeros(30)), "all zero"),
    (dict(sample_weight="heavy"), "sample_weight must be numbers"),
    (dict(class_weight={7: 2.0}), "class_weight has class 7, which the targets lack"),
    (dict(class_weight={0: -1.0}), "class_weight values must be finite numbers >= 0"),
    (dict(class_weight="even"), "class_weight must be a dict"),
    (dict(class_weight={0: 0.0, 1: 0.0, 2: 0.0}), "every example weight 0"),
    (
        dict(clip_norm=-1.0),
        r"clip_norm must be a finite number > 0 or None. Received: clip_norm=-1.0",
    ),
    (dict(clip_value=0), "clip_value must be a finite number > 0"),
    (dict(clip_value=float("nan")), "clip_value must be a finite number > 0"),
    (
        dict(validation_data=(np.ones((4, 3)), np.zeros(4), -np.ones(4))),
        "validation sample weights",
    ),
]


@pytest.mark.parametrize("kwargs, message", BAD)
def test_bad_controls_are_refused_before_anything_changes(kwargs, message):
    X, y = _data()
    net = _net()
    before = [p.copy() for p in net.parameters()]
    state = net.rng.bit_generator.state
    with pytest.raises(ValueError, match=message):
        net.fit(X, y, epochs=1, **kwargs)
    for p, q in zip(net.parameters(), before):
        assert_array_equal(p, q)
    assert net.rng.bit_generator.state == state


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(dropout=1.0), r"dropout values must be rates in \[0, 1\)"),
        (dict(dropout=-0.1), r"rates in \[0, 1\)"),
        (dict(dropout=[0.5]), "dropout lists one value per hidden layer: 2"),
        (dict(l2=-1e-3), r"l2 values must be finite numbers >= 0"),
        (dict(l1=[0.1, 0.1]), "l1 lists one value per layer of weights: 3"),
        (dict(l1=float("inf")), "l1 values must be finite numbers >= 0"),
        (dict(penalty_scale="batch"), "penalty_scale must be one of"),
    ],
)
def test_bad_network_controls_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        _net(**kwargs)


def test_class_weight_needs_class_targets():
    X = np.random.default_rng(0).normal(size=(10, 3))
    net = dp.Network([3, 2, 1], output_activation="identity", seed=0)
    with pytest.raises(ValueError, match="class_weight needs class targets"):
        net.fit(X, X[:, 0], class_weight="balanced")


# ------------------------------------------------------------------ dropout
def test_predict_never_drops_and_equals_the_same_weights_without_dropout():
    X, y = _data()
    net = _net(dropout=0.5)
    net.fit(X, y, epochs=2)
    plain = _net()
    for p, q in zip(plain.parameters(), net.parameters()):
        p[...] = q
    state = net.rng.bit_generator.state
    assert_array_equal(net.predict(X), plain.predict(X))
    assert net.loss(X, y) == plain.loss(X, y)
    assert net.rng.bit_generator.state == state  # nothing drawn


def test_dropout_training_is_repeatable_and_differs_from_none():
    X, y = _data()
    runs = []
    for rate in (0.3, 0.3, 0.0):
        net = _net(dropout=[rate, rate])
        net.fit(X, y, epochs=3, batch_size=8)
        runs.append(net)
    for p, q in zip(runs[0].parameters(), runs[1].parameters()):
        assert_array_equal(p, q)
    assert not np.array_equal(runs[0].layers[0].W, runs[2].layers[0].W)


def test_masks_are_inverted_dropout_from_the_networks_generator():
    net = _net(dropout=[0.25, 0.0])
    rng = np.random.default_rng(1)
    rng.bit_generator.state = net.rng.bit_generator.state
    masks = net.dropout_masks(1000)
    assert masks[1] is None
    expected = (rng.random((1000, 5)) >= 0.25) / 0.75
    assert_array_equal(masks[0], expected)
    assert abs(np.mean(masks[0] > 0) - 0.75) < 0.02


def test_dropout_gradients_with_a_fixed_mask_match_finite_differences():
    X, y = _data(n=6)
    net = _net(dropout=[0.4, 0.2])
    masks = net.dropout_masks(6)
    assert dp.gradcheck(net, X, y, masks=masks) < 1e-6
    # The delta rule with the mask: δ_j = m_j h'(a_j) Σ_k δ_k w_kj / (1 − p).
    T = net.check_targets(y, 6)
    fp = net.forward(X, masks)
    deltas = net.backward(fp, T)
    h = 1.0 - fp.undropped[1] ** 2
    assert_allclose(deltas[1], h * (deltas[2] @ net.layers[2].W) * masks[1], rtol=1e-14)
    assert np.all(deltas[0][masks[0] == 0] == 0)


def test_dropout_is_saved_and_files_without_it_still_load(tmp_path):
    net = _net(dropout=[0.5, 0.1], l2=[0.0, 1e-3, 0.0], l1=1e-4, penalty_scale="sum")
    net.save(tmp_path / "net.model")
    back = dp.load(tmp_path / "net.model")
    assert back.dropout == (0.5, 0.1) and back.l2 == (0.0, 1e-3, 0.0)
    assert back.l1 == (1e-4,) * 3 and back.penalty_scale == "sum"
    old = {
        k: v for k, v in net.config().items() if k not in ("dropout", "l1", "l2", "penalty_scale")
    }
    plain = dp.Network.from_config(old)
    assert plain.dropout == (0.0, 0.0) and not plain.has_penalty


# ------------------------------------------------------------------ penalties
@pytest.mark.parametrize("scale", ["mean", "sum"])
def test_l1_and_l2_gradients_match_finite_differences(scale):
    X, y = _data(n=8)
    w = np.linspace(0.2, 1.5, 8)
    net = _net(l2=[0.3, 0.0, 0.1], l1=[0.0, 0.05, 0.02], penalty_scale=scale)
    assert dp.gradcheck(net, X, y) < 1e-6
    assert dp.gradcheck(net, X, y, sample_weight=w) < 1e-6


def test_the_penalty_is_on_the_weights_only_and_part_of_the_loss():
    X, y = _data(n=8)
    net = _net(l2=0.2, l1=0.1)
    plain = net.copy()
    plain.l1 = plain.l2 = (0.0, 0.0, 0.0)
    P = sum(0.1 * np.abs(ly.W).sum() + 0.1 * np.sum(ly.W**2) for ly in net.layers)
    assert net.penalty() == pytest.approx(P, rel=1e-14)
    assert net.loss(X, y) == pytest.approx(plain.loss(X, y) + P, rel=1e-14)
    for (gW, gb), (pW, pb), ly in zip(net.gradients(X, y), plain.gradients(X, y), net.layers):
        assert_array_equal(gb, pb)
        assert_allclose(gW, pW + 0.2 * ly.W + 0.1 * np.sign(ly.W), rtol=1e-13, atol=1e-15)
    # "sum": P joins the summed loss before dividing by the batch's weight.
    net.penalty_scale = "sum"
    assert net.loss(X, y) == pytest.approx(plain.loss(X, y) + P / 8, rel=1e-14)


def test_history_records_the_penalty_part_of_the_loss():
    X, y = _data()
    net = _net(l2=1e-2)
    h = net.fit(X, y, epochs=2, batch_size=None, optimizer=dp.SGD(lr=0.0))
    assert h.penalty[0] == pytest.approx(net.penalty(), rel=1e-14)
    assert h.loss[0] == pytest.approx(net.loss(X, y), rel=1e-14)


# ------------------------------------------------------------------ clipping
def test_clipping_matches_torch_on_the_committed_fixture():
    data = np.load(FIXTURES / "clipping.npz")
    for case in ("norm", "value"):
        net = dp.Network(
            [4, 6, 3], activation="tanh", output_activation="identity", loss="mse", seed=0
        )
        for i, layer in enumerate(net.layers):
            layer.W[...] = data[f"W{i}"]
            layer.b[...] = data[f"b{i}"]
        kwargs = {"clip_norm": float(data["max_norm"])} if case == "norm" else {}
        if case == "value":
            kwargs["clip_value"] = float(data["clip_value"])
        h = net.fit(
            data["X"],
            data["T"],
            optimizer=dp.SGD(lr=float(data["lr"]), momentum=0.9),
            epochs=int(data["epochs"]),
            batch_size=int(data["batch_size"]),
            shuffle=False,
            engine="reference",
            **kwargs,
        )
        for i, layer in enumerate(net.layers):
            assert_allclose(layer.W, data[f"{case}_W{i}"], rtol=1e-10, atol=1e-12)
            assert_allclose(layer.b, data[f"{case}_b{i}"], rtol=1e-10, atol=1e-12)
        assert h.clipped == data[f"{case}_clipped"].tolist()


def test_clip_norm_is_the_global_norm_of_all_gradients():
    from deltaprop.train.engines.base import Clipping

    grads = [np.array([[3.0, 0.0]]), np.array([4.0])]
    assert Clipping(norm=1.0).apply(grads)
    assert_allclose(np.concatenate([g.ravel() for g in grads]), [0.6, 0.0, 0.8], rtol=1e-6)
    small = [np.array([0.1]), np.array([0.2])]
    assert not Clipping(norm=1.0).apply(small) and small[0][0] == 0.1
    values = [np.array([-3.0, 0.5]), np.array([2.0])]
    assert Clipping(value=1.0).apply(values)
    assert values[0].tolist() == [-1.0, 0.5] and values[1].tolist() == [1.0]


# ------------------------------------------------------------------ every engine
CONTROLS = {
    "weights": (dict(), dict(sample_weight=np.linspace(0.0, 2.0, 30))),
    "class_weight": (dict(), dict(class_weight="balanced")),
    "dropout": (dict(dropout=[0.3, 0.1]), dict()),
    "l2_mean": (dict(l2=[0.1, 0.0, 0.05]), dict()),
    "l2_sum": (dict(l2=0.5, penalty_scale="sum"), dict()),
    "l1": (dict(l1=0.01), dict()),
    "clip_norm": (dict(), dict(clip_norm=0.05)),
    "clip_value": (dict(), dict(clip_value=0.01)),
    "all": (
        dict(dropout=0.2, l2=0.01, l1=0.001),
        dict(sample_weight=np.linspace(0.5, 1.5, 30), clip_norm=0.1),
    ),
}
OPTIMIZERS = {
    "sgd": lambda: dp.SGD(lr=0.1, momentum=0.9),
    "adam": lambda: dp.Adam(lr=0.01),
    "rmsprop": lambda: dp.RMSprop(lr=0.01),
}


@pytest.mark.skipif(not FAST, reason="Numba is not available")
@pytest.mark.parametrize("opt", sorted(OPTIMIZERS))
@pytest.mark.parametrize("batch_size", [1, 7])
@pytest.mark.parametrize("control", sorted(CONTROLS))
def test_every_engine_equals_the_reference_with_each_control(control, batch_size, opt):
    X, y = _data()
    net_kw, fit_kw = CONTROLS[control]
    fast, ref = _net(**net_kw), _net(**net_kw)
    kw = dict(epochs=3, batch_size=batch_size, **fit_kw)
    h_fast = fast.fit(X, y, optimizer=OPTIMIZERS[opt](), engine="auto", **kw)
    h_ref = ref.fit(X, y, optimizer=OPTIMIZERS[opt](), engine="reference", **kw)
    _same(fast, ref, rtol=1e-10, atol=1e-12)
    assert fast.rng.bit_generator.state == ref.rng.bit_generator.state
    assert_allclose(h_fast.loss, h_ref.loss, rtol=1e-10)
    assert h_fast.clipped == h_ref.clipped
    assert_allclose(h_fast.penalty, h_ref.penalty, rtol=1e-10)
    if control.startswith("clip"):
        assert sum(h_ref.clipped) > 0


@pytest.mark.parametrize("control", sorted(CONTROLS))
def test_online_engine_refuses_controls_and_auto_chooses_another(control):
    X, y = _data()
    net_kw, fit_kw = CONTROLS[control]
    net = _net(**net_kw)
    with pytest.raises(
        ValueError, match="engine='online' cannot run this training: its kernel has no"
    ):
        net.fit(X, y, batch_size=1, optimizer=dp.SGD(lr=0.1), engine="online", **fit_kw)
    plan_engine = choose.choose_engine(
        net,
        dp.SGD(lr=0.1),
        1,
        [],
        "auto",
        controls=["gradient clipping"] if "clip" in control else [],
    )
    assert plan_engine != "online" or not (net.has_dropout or net.has_penalty or "clip" in control)


# ------------------------------------------------------------------ resume
def test_resume_is_bit_identical_with_dropout_weights_and_penalties(tmp_path):
    X, y = _data(n=40)
    w = np.linspace(0.1, 2.0, 40)
    kw = dict(epochs=4, batch_size=6, sample_weight=w, clip_norm=1.0)
    whole = _net(dropout=0.3, l2=0.01)
    h_whole = whole.fit(X, y, optimizer=dp.Adam(lr=0.01), **kw)
    path = tmp_path / "ckpt"

    class Stop(dp.Callback):
        def on_batch_end(self, net, epoch, batch, loss):
            if epoch == 2 and batch == 3:
                raise KeyboardInterrupt

    part = _net(dropout=0.3, l2=0.01)
    with pytest.raises(KeyboardInterrupt):
        part.fit(
            X,
            y,
            optimizer=dp.Adam(lr=0.01),
            checkpoint=path,
            checkpoint_every_batches=2,
            callbacks=[Stop()],
            **kw,
        )
    resumed = _net(dropout=0.3, l2=0.01)
    h = resumed.fit(X, y, optimizer=dp.Adam(lr=0.01), resume=path, checkpoint_every_batches=2, **kw)
    for p, q in zip(resumed.parameters(), whole.parameters()):
        assert_array_equal(p, q)
    assert resumed.rng.bit_generator.state == whole.rng.bit_generator.state
    assert h.loss == h_whole.loss
    assert h.penalty == h_whole.penalty and h.clipped == h_whole.clipped
    # Other weights are another training: refused, naming the difference.
    with pytest.raises(ValueError, match="sample_weight"):
        _net(dropout=0.3, l2=0.01).fit(
            X,
            y,
            optimizer=dp.Adam(lr=0.01),
            resume=path,
            checkpoint_every_batches=2,
            **{**kw, "sample_weight": w[::-1]},
        )
