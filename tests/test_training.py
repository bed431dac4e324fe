"""The fit loop: learning, batching, validation, early stopping, callbacks, schedules, guards."""

import numpy as np
import pytest

import deltaprop as dp

X_XOR = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
T_XOR = np.array([[0], [1], [1], [0]], dtype=float)


def test_xor_learned_by_sigmoid_mse_network_with_online_sgd():
    net = dp.Network([2, 4, 1], activation="sigmoid", loss="mse", seed=0)
    history = net.fit(X_XOR, T_XOR, optimizer=dp.SGD(lr=2.0), epochs=2000, batch_size=1)
    outputs = net.predict(X_XOR)
    assert np.all((outputs > 0.5) == (T_XOR > 0.5)), outputs
    assert np.abs(outputs - T_XOR).max() < 0.2
    assert history.loss[-1] < 0.1 * history.loss[0]
    assert history.accuracy[-1] == 1.0  # squared error on 0/1 targets measures accuracy


def blobs(n=120, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, size=n)
    centres = np.array([[0, 3], [3, 0], [-3, -3]])
    return centres[labels] + rng.normal(size=(n, 2)), labels


def test_softmax_classifier_learns_blobs_with_adam_minibatches():
    X, y = blobs()
    net = dp.Network(
        [2, 8, 3],
        activation="relu",
        output_activation="softmax",
        loss="cross_entropy",
        init="he",
        seed=1,
    )
    history = net.fit(X, y, optimizer=dp.Adam(lr=0.05), epochs=30, batch_size=16)
    assert net.accuracy(X, y) > 0.95
    assert history.loss[-1] < history.loss[0]
    assert len(history) == 30 and history.epoch == list(range(1, 31))


def test_batch_size_none_is_one_full_batch_step_per_epoch():
    X, y = blobs(30)
    a = dp.Network([2, 3, 3], output_activation="softmax", loss="cross_entropy", seed=2)
    b = a.copy()
    a.fit(X, y, optimizer=dp.SGD(lr=0.3), epochs=2, batch_size=None)
    for _ in range(2):  # the same, by hand: one step down the full-batch gradient
        for layer, (dW, db) in zip(b.layers, b.gradients(X, y)):
            layer.W -= 0.3 * dW
            layer.b -= 0.3 * db
    for p, q in zip(a.parameters(), b.parameters()):
        np.testing.assert_allclose(p, q, rtol=1e-14)
    c = a.copy()
    a.fit(X, y, epochs=1, batch_size=None, shuffle=False)
    c.fit(X, y, epochs=1, batch_size=10_000, shuffle=False)
    for p, q in zip(a.parameters(), c.parameters()):
        np.testing.assert_array_equal(p, q)


def test_shuffle_false_walks_the_rows_in_order_and_shuffle_changes_the_result():
    X, y = blobs(20)
    base = dp.Network([2, 3, 3], output_activation="softmax", loss="cross_entropy", seed=3)
    ordered, shuffled = base.copy(), base.copy()
    ordered.fit(X, y, epochs=1, batch_size=5, shuffle=False)
    by_hand = base.copy()
    for start in range(0, 20, 5):
        for layer, (dW, db) in zip(
            by_hand.layers, by_hand.gradients(X[start : start + 5], y[start : start + 5])
        ):
            layer.W -= 0.1 * dW
            layer.b -= 0.1 * db
    for p, q in zip(ordered.parameters(), by_hand.parameters()):
        np.testing.assert_allclose(p, q, rtol=1e-14)
    shuffled.fit(X, y, epochs=1, batch_size=5, shuffle=True)
    assert not np.allclose(shuffled.layers[0].W, ordered.layers[0].W)


def test_history_records_losses_lr_and_validation():
    X, y = blobs(100)
    net = dp.Network([2, 6, 3], output_activation="softmax", loss="cross_entropy", seed=4)
    h = net.fit(X[:80], y[:80], epochs=4, validation_data=(X[80:], y[80:]))
    assert len(h.loss) == len(h.val_loss) == len(h.accuracy) == len(h.val_accuracy) == 4
    assert h.lr == [0.1] * 4
    assert h.val_loss[-1] == pytest.approx(net.loss(X[80:], y[80:]))
    assert h.val_accuracy[-1] == pytest.approx(net.accuracy(X[80:], y[80:]))
    d = h.as_dict()
    assert d["loss"] == h.loss and d["stopped_early"] is False


def test_validation_split_holds_out_that_fraction():
    X, y = blobs(100)
    seen = []

    class CountRows(dp.Callback):
        def on_batch_end(self, net, epoch, batch, loss):
            seen.append(batch)

    net = dp.Network([2, 4, 3], output_activation="softmax", loss="cross_entropy", seed=5)
    h = net.fit(X, y, epochs=1, batch_size=1, validation_split=0.2, callbacks=[CountRows()])
    assert len(seen) == 80 and len(h.val_loss) == 1


def test_mse_on_real_valued_targets_reports_no_accuracy():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 3))
    T = X @ np.array([[1.0], [-2.0], [0.5]])
    net = dp.Network([3, 5, 1], activation="tanh", output_activation="identity", seed=0)
    h = net.fit(X, T, optimizer=dp.SGD(lr=0.05), epochs=40, batch_size=5)
    assert h.accuracy == [] and h.loss[-1] < 0.1 * h.loss[0]


def test_early_stopping_stops_and_restores_the_best_weights():
    rng = np.random.default_rng(1)
    X, T = rng.normal(size=(30, 4)), rng.normal(size=(30, 1))  # noise: validation soon worsens
    Xv, Tv = rng.normal(size=(30, 4)), rng.normal(size=(30, 1))
    snapshots = {}

    class Snapshot(dp.Callback):
        def on_epoch_end(self, net, epoch, logs):
            snapshots[epoch] = [p.copy() for p in net.parameters()]

    net = dp.Network([4, 32, 1], activation="tanh", output_activation="identity", seed=0)
    h = net.fit(
        X,
        T,
        optimizer=dp.Adam(lr=0.05),
        epochs=300,
        batch_size=5,
        validation_data=(Xv, Tv),
        early_stopping=5,
        callbacks=[Snapshot()],
    )
    assert h.stopped_early and len(h) < 300
    best = int(np.argmin(h.val_loss)) + 1
    assert h.best_epoch == best and len(h) == best + 5
    for p, q in zip(net.parameters(), snapshots[best]):
        np.testing.assert_array_equal(p, q)
    assert net.loss(Xv, Tv) == pytest.approx(min(h.val_loss))


def test_callback_can_stop_training():
    class StopAtTwo(dp.Callback):
        def on_epoch_end(self, net, epoch, logs):
            return epoch == 2

    net = dp.Network([2, 2, 1], seed=0)
    h = net.fit(X_XOR, T_XOR, epochs=10, callbacks=[StopAtTwo()])
    assert h.epoch == [1, 2] and h.stopped_early


def test_scheduler_steps_after_each_epoch():
    opt = dp.SGD(lr=0.4)
    net = dp.Network([2, 2, 1], seed=0)
    h = net.fit(
        X_XOR, T_XOR, optimizer=opt, epochs=5, scheduler=dp.StepLR(opt, step_size=2, gamma=0.5)
    )
    assert h.lr == [0.4, 0.4, 0.2, 0.2, 0.1]


def test_scheduler_is_stepped_with_the_validation_loss_or_else_the_training_loss():
    seen = []

    class Spy(dp.ReduceLROnPlateau):
        def step(self, metric=None):
            seen.append(metric)
            super().step(metric)

    opt = dp.SGD(lr=1.0)
    net = dp.Network([2, 2, 1], seed=0)
    h = net.fit(X_XOR, T_XOR, optimizer=opt, epochs=4, scheduler=Spy(opt, patience=1))
    assert seen == h.loss
    seen.clear()
    h = net.fit(
        X_XOR, T_XOR, optimizer=opt, epochs=4, scheduler=Spy(opt), validation_data=(X_XOR, T_XOR)
    )
    assert seen == h.val_loss


def test_reduce_on_plateau_cuts_the_rate_when_the_loss_is_flat():
    opt = dp.SGD(lr=1.0)
    net = dp.Network([2, 1], activation="identity", seed=0)
    X, T = np.zeros((4, 2)), np.full((4, 1), 0.5)  # zero inputs: only the bias learns
    for layer in net.layers:
        layer.b[...] = 0.5  # already optimal: the loss stays exactly 0
    h = net.fit(
        X,
        T,
        optimizer=opt,
        epochs=6,
        scheduler=dp.ReduceLROnPlateau(opt, patience=1),
        batch_size=None,
    )
    assert h.lr == pytest.approx([1.0, 1.0, 1.0, 0.1, 0.1, 0.01], rel=1e-15)


def test_verbose_shows_a_progress_bar(capsys):
    net = dp.Network([2, 2, 1], seed=0)
    net.fit(X_XOR, T_XOR, epochs=3, verbose=True)
    err = capsys.readouterr().err
    assert "3/3" in err and "loss=" in err


def test_quiet_by_default(capsys):
    dp.Network([2, 2, 1], seed=0).fit(X_XOR, T_XOR, epochs=3)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_divergence_stops_with_epoch_and_batch_and_keeps_finite_weights():
    net = dp.Network([1, 1], activation="identity", loss="mse", init="normal", seed=0)
    X = np.array([[1e3], [2e3], [3e3]])
    T = np.array([[1.0], [2.0], [3.0]])
    kept = {}

    class Keep(dp.Callback):
        def on_batch_end(self, net, epoch, batch, loss):
            kept["weights"] = [p.copy() for p in net.parameters()]

    with pytest.raises(dp.TrainingDivergedError, match=r"epoch \d+, batch \d+") as info:
        net.fit(
            X,
            T,
            optimizer=dp.SGD(lr=10.0),
            epochs=50,
            batch_size=1,
            shuffle=False,
            callbacks=[Keep()],
        )
    assert "smaller learning rate" in str(info.value)
    assert all(np.isfinite(p).all() for p in net.parameters())
    for p, q in zip(net.parameters(), kept["weights"]):
        np.testing.assert_array_equal(p, q)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"epochs": 0}, "epochs must be an integer >= 1. Received: epochs=0"),
        ({"batch_size": 0}, "batch_size=0"),
        ({"batch_size": 2.5}, "batch_size=2.5"),
        ({"validation_split": 1.5}, "validation_split=1.5"),
        ({"validation_split": 0.01}, "both need >= 1"),
        ({"validation_data": (np.zeros((2, 3)), np.zeros((2, 1)))}, "X_val has 3 columns"),
        ({"validation_data": (np.zeros((2, 2)), np.zeros((3, 1)))}, "T_val"),
        ({"validation_data": (X_XOR, T_XOR), "validation_split": 0.5}, "not both"),
        ({"optimizer": "lbfgs"}, "lbfgs"),
        ({"early_stopping": "yes"}, "early_stopping='yes'"),
        ({"callbacks": [object()]}, "Callback objects"),
        ({"scheduler": dp.StepLR(dp.SGD(lr=0.1), 2)}, "built on the optimizer"),
        ({"accuracy": "sometimes"}, "accuracy='sometimes'"),
        ({"accuracy": "sometimes", "validation_split": 0.5}, "accuracy='sometimes'"),
    ],
)
def test_bad_fit_arguments_are_refused_before_any_change(kwargs, message):
    net = dp.Network([2, 2, 1], seed=0)
    before = [p.copy() for p in net.parameters()]
    state = net.rng.bit_generator.state
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        net.fit(X_XOR, T_XOR, **kwargs)
    for p, q in zip(before, net.parameters()):
        np.testing.assert_array_equal(p, q)
    assert net.rng.bit_generator.state == state


def test_float32_network_trains_in_float32():
    X, y = blobs(60)
    net = dp.Network(
        [2, 5, 3], output_activation="softmax", loss="cross_entropy", seed=0, dtype=np.float32
    )
    grads = net.gradients(X, y)
    assert all(g.dtype == np.float32 for pair in grads for g in pair)
    net.fit(X, y, optimizer=dp.Adam(lr=0.01), epochs=3, batch_size=8)
    assert all(p.dtype == np.float32 for p in net.parameters())
    ref = dp.Network([2, 5, 3], output_activation="softmax", loss="cross_entropy", seed=0)
    ref.fit(X, y, optimizer=dp.Adam(lr=0.01), epochs=3, batch_size=8)
    for p, q in zip(net.parameters(), ref.parameters()):
        np.testing.assert_allclose(p, q, rtol=1e-3, atol=1e-4)
