"""validation_freq, ModelCheckpoint, CSVLogger and on_batch_begin."""

import csv
import os

import numpy as np
import pytest

import deltaprop as dp
from deltaprop.train.engines.choose import choose_engine, load_kernels

FAST = load_kernels() is not None


def data(n=60, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    return X, (X[:, 0] * X[:, 1] > 0).astype(int)


def classifier(seed=0):
    return dp.Network([2, 5, 2], output_activation="softmax", loss="cross_entropy", seed=seed)


X, Y = data()
XV, YV = data(20, seed=1)


class Recorder(dp.Callback):
    def __init__(self):
        self.logs, self.weights = [], []

    def on_epoch_end(self, net, epoch, logs):
        self.logs.append(logs)
        self.weights.append([p.copy() for p in net.parameters()])


# ------------------------------------------------------------------ validation_freq
@pytest.mark.parametrize(
    "freq, validated", [(1, [1, 2, 3, 4, 5, 6]), (2, [2, 4, 6]), ([1, 5, 9], [1, 5]), ((6,), [6])]
)
def test_validation_freq_validates_those_epochs_only(freq, validated):
    every, some = Recorder(), Recorder()
    a = classifier().fit(X, Y, epochs=6, validation_data=(XV, YV), callbacks=[every], shuffle=False)
    b = classifier().fit(
        X,
        Y,
        epochs=6,
        validation_data=(XV, YV),
        validation_freq=freq,
        callbacks=[some],
        shuffle=False,
    )
    assert b.val_epoch == validated and a.val_epoch == [1, 2, 3, 4, 5, 6]
    assert b.loss == a.loss  # validating changes nothing in training
    assert b.val_loss == [a.val_loss[e - 1] for e in validated]
    assert b.val_accuracy == [a.val_accuracy[e - 1] for e in validated]
    for epoch, logs in enumerate(some.logs, 1):
        assert ("val_loss" in logs) == (epoch in validated)
        assert ("val_accuracy" in logs) == (epoch in validated)


def test_validation_freq_works_with_a_split_and_with_batches():
    h = classifier().fit(X, Y, epochs=4, validation_split=0.25, validation_freq=2)
    assert h.val_epoch == [2, 4] and len(h.val_loss) == 2
    batches = [(XV[:10], YV[:10]), (XV[10:], YV[10:])]
    h = classifier().fit(X, Y, epochs=3, validation_data=batches, validation_freq=[3])
    assert h.val_epoch == [3]


@pytest.mark.parametrize("freq", [0, -2, 1.5, "2", [], [0, 2], [1.0], True, None])
def test_bad_validation_freq_is_refused_before_any_change(freq):
    net = classifier()
    before = [p.copy() for p in net.parameters()]
    with pytest.raises(ValueError, match="validation_freq must be"):
        net.fit(X, Y, epochs=2, validation_data=(XV, YV), validation_freq=freq)
    assert all(np.array_equal(p, q) for p, q in zip(net.parameters(), before))


def test_early_stopping_counts_only_validated_epochs():
    """lr=0: the validation loss never improves after the first validation. With patience
    2 and validation every 3rd epoch, the fit stops at the third validation, epoch 9."""
    h = classifier().fit(
        X,
        Y,
        optimizer=dp.SGD(lr=0.0),
        epochs=30,
        validation_data=(XV, YV),
        validation_freq=3,
        early_stopping=2,
    )
    assert h.epoch[-1] == 9 and h.stopped_early and h.best_epoch == 3


def test_early_stopping_auto_watches_val_loss_even_on_unvalidated_epochs():
    stopper = dp.EarlyStopping(patience=1)
    classifier().fit(
        X, Y, epochs=3, validation_data=(XV, YV), validation_freq=2, early_stopping=stopper
    )
    assert stopper.watched == "val_loss" and stopper.best_epoch == 2


def test_early_stopping_on_val_loss_without_validation_is_refused_before_training():
    net = classifier()
    before = [p.copy() for p in net.parameters()]
    with pytest.raises(ValueError, match=r"EarlyStopping\(monitor='val_loss'\) needs validation"):
        net.fit(X, Y, epochs=2, early_stopping=dp.EarlyStopping(monitor="val_loss"))
    assert all(np.array_equal(p, q) for p, q in zip(net.parameters(), before))


def test_reduce_on_plateau_steps_on_validated_epochs_only():
    opt = dp.SGD(lr=0.0)
    sched = dp.ReduceLROnPlateau(opt, patience=0)
    opt.lr = 0.0
    classifier().fit(
        X,
        Y,
        optimizer=opt,
        scheduler=sched,
        epochs=6,
        validation_data=(XV, YV),
        validation_freq=3,
    )
    assert sched.last_epoch == 2  # stepped after epochs 3 and 6


# ------------------------------------------------------------------ ModelCheckpoint
def test_model_checkpoint_saves_every_epoch_with_formatted_names(tmp_path):
    pattern = str(tmp_path / "models" / "m-{epoch:02d}-{loss:.3f}.dpm")
    saver, rec = dp.ModelCheckpoint(pattern, monitor="loss"), Recorder()
    h = classifier().fit(X, Y, epochs=3, callbacks=[saver, rec])
    assert [os.path.basename(p) for p in saver.saved] == [
        f"m-{e:02d}-{loss:.3f}.dpm" for e, loss in zip(h.epoch, h.loss)
    ]
    for path, weights in zip(saver.saved, rec.weights):
        loaded = dp.load(path)
        assert all(np.array_equal(p, q) for p, q in zip(loaded.parameters(), weights))
    assert dp.load(saver.saved[1]).metadata["checkpoint"] == {"epoch": 2, "loss": h.loss[1]}
    assert sorted(os.listdir(tmp_path / "models")) == sorted(map(os.path.basename, saver.saved))


@pytest.mark.parametrize(
    "monitor, mode, pick", [("val_loss", "auto", np.argmin), ("val_accuracy", "auto", np.argmax)]
)
def test_model_checkpoint_best_only_keeps_the_best_epoch(tmp_path, monitor, mode, pick):
    path = tmp_path / "best.dpm"
    saver, rec = dp.ModelCheckpoint(path, monitor=monitor, save_best_only=True), Recorder()
    h = classifier().fit(
        X, Y, epochs=8, optimizer=dp.Adam(lr=0.05), validation_data=(XV, YV), callbacks=[saver, rec]
    )
    values = getattr(h, monitor)
    best = int(pick(values))  # the first best, as a strict improvement keeps it
    assert saver.best == values[best] and saver.best_epoch == best + 1
    loaded = dp.load(path)
    assert all(np.array_equal(p, q) for p, q in zip(loaded.parameters(), rec.weights[best]))
    assert loaded.metadata["checkpoint"] == {"epoch": best + 1, monitor: values[best]}


def test_model_checkpoint_mode_and_threshold(tmp_path):
    saver = dp.ModelCheckpoint(
        tmp_path / "m.dpm",
        monitor="loss",
        mode="max",
        save_best_only=True,
        initial_value_threshold=1e9,
    )
    classifier().fit(X, Y, epochs=3, callbacks=[saver])
    assert saver.saved == [] and not (tmp_path / "m.dpm").exists()


def test_model_checkpoint_skips_epochs_without_validation(tmp_path):
    saver = dp.ModelCheckpoint(tmp_path / "m-{epoch}-{val_loss:.2f}.dpm")
    classifier().fit(X, Y, epochs=4, validation_data=(XV, YV), validation_freq=2, callbacks=[saver])
    assert [os.path.basename(p).split("-")[1] for p in saver.saved] == ["2", "4"]


def test_model_checkpoint_after_a_resume_remembers_the_best_so_far(tmp_path):
    class StopAt(dp.Callback):
        def on_epoch_end(self, net, epoch, logs):
            if epoch == 4:
                raise KeyboardInterrupt

    def saver():
        return dp.ModelCheckpoint(tmp_path / "best.dpm", monitor="loss", save_best_only=True)

    kw = dict(epochs=6, optimizer=dp.SGD(lr=0.0), shuffle=False, checkpoint=tmp_path / "c")
    first = saver()
    with pytest.raises(KeyboardInterrupt):
        classifier().fit(X, Y, callbacks=[first, StopAt()], **kw)
    again = saver()
    classifier().fit(X, Y, callbacks=[again], resume=tmp_path / "c", **kw)
    assert first.best_epoch == 1 and again.saved == []  # lr 0: nothing beats epoch 1


@pytest.mark.parametrize(
    "kwargs, fit_kwargs, message",
    [
        (dict(monitor="val_loss", save_best_only=True), {}, "monitor is 'val_loss', which this"),
        (dict(monitor="accuracy", save_best_only=True), {"mse": 1}, "monitor is 'accuracy'"),
        (dict(filepath="m-{val_loss}.dpm"), {}, "filepath names 'val_loss'"),
        (dict(filepath="m-{nothing}.dpm"), {}, "filepath names 'nothing'"),
        (dict(filepath="m-{epoch:.2q}.dpm"), {}, "Unknown format code"),
        (dict(filepath="m-{epoch.dpm"), {}, "filepath"),
        (dict(mode="largest"), {}, "mode must be 'auto', 'min' or 'max'"),
        (dict(filepath=3), {}, "filepath must be a path"),
    ],
)
def test_model_checkpoint_bad_settings_are_refused_before_training(
    tmp_path, kwargs, fit_kwargs, message
):
    kwargs = {"filepath": "m.dpm", **kwargs}
    if isinstance(kwargs["filepath"], str):
        kwargs["filepath"] = str(tmp_path / kwargs["filepath"])
    net = classifier() if not fit_kwargs else dp.Network([2, 3, 1], seed=0)
    targets = Y if not fit_kwargs else np.linspace(0, 1, len(Y))
    before = [p.copy() for p in net.parameters()]
    with pytest.raises(ValueError, match=message):
        net.fit(X, targets, epochs=2, callbacks=[dp.ModelCheckpoint(**kwargs)])
    assert all(np.array_equal(p, q) for p, q in zip(net.parameters(), before))
    assert os.listdir(tmp_path) == []


# ------------------------------------------------------------------ CSVLogger
def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_csv_logger_writes_a_row_per_epoch_equal_to_the_history(tmp_path):
    path = tmp_path / "log.csv"
    h = classifier().fit(
        X, Y, epochs=4, validation_data=(XV, YV), validation_freq=2, callbacks=[dp.CSVLogger(path)]
    )
    rows = read_rows(path)
    assert list(rows[0]) == [
        "epoch",
        "loss",
        "accuracy",
        "val_loss",
        "val_accuracy",
        "lr",
        "seconds",
    ]
    assert [int(r["epoch"]) for r in rows] == h.epoch
    assert [float(r["loss"]) for r in rows] == h.loss  # written exactly (repr)
    assert [r["val_loss"] for r in rows] == ["", repr(h.val_loss[0]), "", repr(h.val_loss[1])]


def test_csv_logger_append_continues_and_overwrite_starts_anew(tmp_path):
    path = tmp_path / "log.csv"
    classifier().fit(X, Y, epochs=2, callbacks=[dp.CSVLogger(path)])
    classifier().fit(X, Y, epochs=3, callbacks=[dp.CSVLogger(path, append=True)])
    assert [r["epoch"] for r in read_rows(path)] == ["1", "2", "1", "2", "3"]
    classifier().fit(X, Y, epochs=1, callbacks=[dp.CSVLogger(path, separator=";")])
    assert path.read_text().splitlines()[0] == "epoch;loss;accuracy;lr;seconds"
    assert len(path.read_text().splitlines()) == 2


def test_csv_logger_refuses_to_append_other_columns(tmp_path):
    path = tmp_path / "log.csv"
    classifier().fit(X, Y, epochs=1, callbacks=[dp.CSVLogger(path)])
    before = path.read_text()
    with pytest.raises(ValueError, match="has the columns 'epoch,loss,accuracy,lr,seconds'"):
        classifier().fit(
            X, Y, epochs=1, validation_data=(XV, YV), callbacks=[dp.CSVLogger(path, append=True)]
        )
    assert path.read_text() == before


def test_csv_logger_on_a_resumed_fit_drops_the_interrupted_runs_later_rows(tmp_path):
    class StopAt(dp.Callback):
        def on_epoch_end(self, net, epoch, logs):
            if epoch == 3:
                raise KeyboardInterrupt

    path, ckpt = tmp_path / "log.csv", tmp_path / "c"
    kw = dict(epochs=5, checkpoint=ckpt, checkpoint_every=2)
    with pytest.raises(KeyboardInterrupt):  # epoch 3's row is written, its checkpoint not
        classifier().fit(X, Y, callbacks=[dp.CSVLogger(path), StopAt()], **kw)
    assert [r["epoch"] for r in read_rows(path)] == ["1", "2", "3"]
    h = classifier().fit(X, Y, callbacks=[dp.CSVLogger(path, append=True)], resume=ckpt, **kw)
    rows = read_rows(path)
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4, 5]
    assert [float(r["loss"]) for r in rows] == h.loss


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(filename=5), "filename must be a path"),
        (dict(separator=""), "separator must be one character"),
        (dict(separator="ab"), "separator must be one character"),
        (dict(filename="no/such/folder/log.csv"), "no folder"),
    ],
)
def test_csv_logger_bad_settings_are_refused(tmp_path, monkeypatch, kwargs, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=message):
        classifier().fit(
            X, Y, epochs=1, callbacks=[dp.CSVLogger(**{"filename": "l.csv", **kwargs})]
        )


# ------------------------------------------------------------------ on_batch_begin
class Around(dp.Callback):
    def __init__(self):
        self.calls = []

    def on_batch_begin(self, net, epoch, batch):
        self.calls.append(("begin", epoch, batch))

    def on_batch_end(self, net, epoch, batch, loss):
        self.calls.append(("end", epoch, batch))


@pytest.mark.parametrize("engine", ["auto", "reference", "batch"])
def test_on_batch_begin_runs_before_every_step_and_on_batch_end_after(engine):
    hook = Around()
    classifier().fit(X, Y, epochs=2, batch_size=25, callbacks=[hook], engine=engine)
    expected = [(k, e, b) for e in (1, 2) for b in range(3) for k in ("begin", "end")]
    assert hook.calls == expected


@pytest.mark.parametrize("engine", ["reference", "batch"])
def test_an_on_batch_end_taking_logs_gets_the_batchs_size_weight_and_penalty(engine):
    class Logs(dp.Callback):
        def __init__(self):
            self.seen = []

        def on_batch_end(self, net, epoch, batch, loss, logs):
            self.seen.append((loss, logs))

    weights = np.linspace(0.5, 2.0, 60)
    net = dp.Network([2, 5, 2], output_activation="softmax", loss="cross_entropy", seed=0,
                     l2=0.1, penalty_scale="sum")  # fmt: skip
    hook = Logs()
    history = net.fit(X, Y, epochs=1, batch_size=25, shuffle=False, sample_weight=weights,
                      callbacks=[hook], engine=engine)  # fmt: skip
    sizes = [logs["size"] for _, logs in hook.seen]
    assert sizes == [25, 25, 10]
    expected = [weights[:25].sum(), weights[25:50].sum(), weights[50:].sum()]
    assert [logs["weight"] for _, logs in hook.seen] == pytest.approx(expected, rel=1e-15)
    assert all(0 < logs["penalty"] < loss for loss, logs in hook.seen)
    # Network.fit's epoch loss and penalty are the batches' means by weight.
    by_weight = sum(loss * logs["weight"] for loss, logs in hook.seen) / weights.sum()
    assert history.loss[0] == pytest.approx(by_weight, rel=1e-12)
    penalty = sum(logs["penalty"] * logs["weight"] for _, logs in hook.seen) / weights.sum()
    assert history.penalty[0] == pytest.approx(penalty, rel=1e-12)


def test_on_batch_begin_on_batches_from_an_iterable_and_when_resuming(tmp_path):
    class Begin(dp.Callback):
        def __init__(self):
            self.calls = []

        def on_batch_begin(self, net, epoch, batch):
            self.calls.append((epoch, batch))

    batches = [(X[i : i + 20], Y[i : i + 20]) for i in range(0, 60, 20)]
    hook = Begin()
    classifier().fit(batches, epochs=2, callbacks=[hook])
    assert hook.calls == [(e, b) for e in (1, 2) for b in range(3)]


class Warmup(dp.Callback):
    """A per-batch learning-rate warm-up: the rate is set before each step."""

    def __init__(self, opt):
        self.opt = opt

    def on_batch_begin(self, net, epoch, batch):
        self.opt.lr = 0.05 * (batch + 1)


@pytest.mark.parametrize("batch_size", [1, 10])
def test_what_on_batch_begin_changes_applies_to_that_step_on_every_engine(batch_size):
    results = []
    for engine in ["reference", "batch"] if FAST else ["reference"]:
        net, opt = classifier(), dp.SGD(lr=1.0, momentum=0.5)
        net.fit(
            X,
            Y,
            epochs=2,
            batch_size=batch_size,
            optimizer=opt,
            callbacks=[Warmup(opt)],
            engine=engine,
        )
        results.append(net)
    by_hand, opt = classifier(), dp.SGD(lr=1.0, momentum=0.5)
    for _ in range(2):
        order = by_hand.rng.permutation(60)
        for b, start in enumerate(range(0, 60, batch_size)):
            rows = order[start : start + batch_size]
            opt.lr = 0.05 * (b + 1)
            grads = [g for pair in by_hand.gradients(X[rows], Y[rows]) for g in pair]
            opt.step(by_hand.parameters(), grads)
    results.append(by_hand)
    for net in results[1:]:
        for p, q in zip(net.parameters(), results[0].parameters()):
            np.testing.assert_allclose(p, q, rtol=1e-10, atol=1e-12)
    plain = classifier()
    plain.fit(X, Y, epochs=2, batch_size=batch_size, optimizer=dp.SGD(lr=1.0, momentum=0.5))
    assert not np.allclose(plain.layers[0].W, results[0].layers[0].W)


@pytest.mark.skipif(not FAST, reason="needs Numba")
def test_only_callbacks_that_override_the_batch_hooks_take_the_online_engine_away():
    class EpochsOnly(dp.Callback):
        def on_epoch_end(self, net, epoch, logs):
            return None

    class Begin(dp.Callback):
        def on_batch_begin(self, net, epoch, batch):
            pass

    net, opt = classifier(), dp.SGD(lr=0.1)
    assert choose_engine(net, opt, 1, [EpochsOnly(), dp.CSVLogger("x.csv")], "auto") == "online"
    assert choose_engine(net, opt, 1, [Begin()], "auto") == "batch"
    with pytest.raises(ValueError, match="overrides on_batch_begin"):
        choose_engine(net, opt, 1, [Begin()], "online")


def test_callbacks_are_public_names():
    assert {"ModelCheckpoint", "CSVLogger", "EarlyStopping", "History"} <= set(dp.__all__)
    assert issubclass(dp.ModelCheckpoint, dp.Callback) and issubclass(dp.CSVLogger, dp.Callback)
