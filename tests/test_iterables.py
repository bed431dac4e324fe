"""fit(data) on batches from an iterable: equal to arrays, checked batch by batch, O(batch)
memory, one-shot iterators refused, exact resume for an iterable that repeats its batches."""

import weakref

import numpy as np
import pytest

import deltaprop as dp
from deltaprop.train.engines.choose import load_kernels

FAST = load_kernels() is not None
ENGINES = ["reference", "batch"]


def data(n=70, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int) + (X[:, 2] > 1).astype(int)
    return X, y


def classifier(seed=0, dtype=np.float64):
    return dp.Network(
        [3, 6, 3], output_activation="softmax", loss="cross_entropy", seed=seed, dtype=dtype
    )


def batches_of(X, y, size):
    return [(X[i : i + size], y[i : i + size]) for i in range(0, len(X), size)]


def same_weights(a, b):
    return all(np.array_equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


class Batches:
    """A re-iterable over (X, T) batches made on the fly by a generator function, with an
    optional seeded shuffle of the batch order drawn from (seed, epoch) via set_epoch."""

    def __init__(self, X, y, size, seed=None):
        self.X, self.y, self.size, self.seed, self.epoch = X, y, size, seed, 0
        self.passes = 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __iter__(self):
        self.passes += 1
        starts = np.arange(0, len(self.X), self.size)
        if self.seed is not None:
            starts = np.random.default_rng([self.seed, self.epoch]).permutation(starts)
        for s in starts:
            yield self.X[s : s + self.size].copy(), self.y[s : s + self.size].copy()


# ------------------------------------------------------------------ equal to arrays
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    "make_opt, size",
    [
        (lambda: dp.SGD(lr=0.2, momentum=0.9), 16),
        (lambda: dp.Adam(lr=0.01), 7),
        (lambda: dp.RMSprop(lr=0.01), 70),
        (lambda: dp.SGD(lr=0.1), 1),
    ],
)
def test_an_iterable_trains_bit_for_bit_as_the_same_arrays_unshuffled(engine, make_opt, size):
    X, y = data()
    a, b = classifier(), classifier()
    Xv, yv = data(20, seed=5)
    kwargs = dict(epochs=3, engine=engine, validation_data=(Xv, yv))
    ha = a.fit(X, y, batch_size=size, shuffle=False, optimizer=make_opt(), **kwargs)
    hb = b.fit(batches_of(X, y, size), optimizer=make_opt(), **kwargs)
    assert same_weights(a, b)
    assert ha.loss == hb.loss and ha.accuracy == hb.accuracy and ha.val_loss == hb.val_loss


@pytest.mark.skipif(not FAST, reason="needs Numba")
def test_the_batch_engine_takes_batches_of_any_size_in_any_order_of_sizes():
    X, y = data(60)
    sizes = [3, 20, 1, 30, 6]  # grows its buffers twice, then reuses them
    cuts = np.cumsum([0, *sizes])
    stream = [(X[s:e], y[s:e]) for s, e in zip(cuts[:-1], cuts[1:])]
    a, b = classifier(), classifier()
    ha = a.fit(stream, epochs=2, engine="batch", optimizer=dp.Adam(lr=0.01))
    hb = b.fit(stream, epochs=2, engine="reference", optimizer=dp.Adam(lr=0.01))
    for p, q in zip(a.parameters(), b.parameters()):
        np.testing.assert_allclose(p, q, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(ha.loss, hb.loss, rtol=1e-12)


def test_float32_batches_train_a_float32_network_as_float32_arrays_do():
    X, y = data()
    X32 = X.astype(np.float32)
    a, b = classifier(dtype=np.float32), classifier(dtype=np.float32)
    a.fit(X32, y, batch_size=10, shuffle=False, epochs=2)
    b.fit(batches_of(X32, y, 10), epochs=2)
    assert same_weights(a, b) and b.layers[0].W.dtype == np.float32


class FakeTensor:
    """What deltaprop asks of a tensor (torch's names), without torch."""

    def __init__(self, array, on_gpu=True):
        self.array, self.on_gpu, self.grad = array, on_gpu, True

    def detach(self):
        return FakeTensor(self.array, self.on_gpu)

    def cpu(self):
        return FakeTensor(self.array, on_gpu=False)

    def numpy(self):
        assert not self.on_gpu, "numpy() of a tensor on a GPU"
        return self.array


def test_tensors_are_read_through_detach_cpu_numpy():
    X, y = data(40)
    stream = [(FakeTensor(Xb), FakeTensor(yb)) for Xb, yb in batches_of(X, y, 8)]
    a, b = classifier(), classifier()
    a.fit(X, y, batch_size=8, shuffle=False, epochs=2)
    b.fit(stream, epochs=2)
    assert same_weights(a, b)


def test_a_torch_dataloader_trains_as_its_arrays():
    torch = pytest.importorskip("torch")
    from torch.utils.data import DataLoader, TensorDataset

    X, y = data()
    loader = DataLoader(TensorDataset(torch.tensor(X), torch.tensor(y)), batch_size=16)
    a, b = classifier(), classifier()
    ha = a.fit(X, y, batch_size=16, shuffle=False, epochs=3, optimizer="adam")
    hb = b.fit(loader, epochs=3, optimizer="adam", validation_data=loader)
    assert same_weights(a, b) and ha.loss == hb.loss
    np.testing.assert_allclose(hb.val_loss[-1], b.loss(X, y), rtol=1e-12)


# ------------------------------------------------------------------ what an iterable may be
def test_a_reiterable_is_read_once_per_epoch_and_its_batch_count_learnt():
    X, y = data()
    stream = Batches(X, y, 16)
    history = classifier().fit(stream, epochs=4)
    assert stream.passes == 4 and len(history) == 4


def test_a_one_shot_iterator_is_refused_for_several_epochs_and_taken_for_one():
    X, y = data()
    net = classifier()
    before = [p.copy() for p in net.parameters()]
    state = net.rng.bit_generator.state
    with pytest.raises(ValueError, match=r"iterator \(generator\).*read only once.*epochs=3"):
        net.fit((b for b in batches_of(X, y, 10)), epochs=3)
    assert all(np.array_equal(p, q) for p, q in zip(net.parameters(), before))
    assert net.rng.bit_generator.state == state
    a = classifier()
    a.fit(iter(batches_of(X, y, 10)), epochs=1)
    b = classifier()
    b.fit(X, y, batch_size=10, shuffle=False, epochs=1)
    assert same_weights(a, b)


def test_a_one_shot_validation_iterator_is_refused_when_validated_twice():
    X, y = data()
    with pytest.raises(ValueError, match="validation_data is an iterator"):
        classifier().fit(X, y, epochs=2, validation_data=iter(batches_of(X, y, 10)))
    history = classifier().fit(
        X, y, epochs=2, validation_data=iter(batches_of(X, y, 10)), validation_freq=[2]
    )
    assert history.val_epoch == [2]


def test_an_iterable_exhausted_after_one_pass_is_caught_in_the_next_epoch():
    X, y = data()

    class Once:
        def __init__(self):
            self.it = iter(batches_of(X, y, 10))

        def __iter__(self):
            return self.it  # not an Iterator itself, but its __iter__ gives the same one

    with pytest.raises(ValueError, match="yielded no batches in epoch 2"):
        classifier().fit(Once(), epochs=2)


@pytest.mark.parametrize(
    "data_arg, message",
    [
        (np.zeros((4, 3)), "fit needs targets"),
        (42, "fit needs targets"),
        ([], "yielded no batches in epoch 1"),
    ],
)
def test_data_that_is_not_batches_is_refused(data_arg, message):
    with pytest.raises(ValueError, match=message):
        classifier().fit(data_arg, epochs=1)


def test_validation_split_needs_arrays():
    X, y = data()
    with pytest.raises(ValueError, match="validation_split sets examples of arrays aside"):
        classifier().fit(batches_of(X, y, 10), validation_split=0.2)


def test_accuracy_of_squared_error_on_batches_is_measured_when_asked():
    X, y = data()
    T = np.eye(3)[y]
    net = dp.Network([3, 4, 3], seed=0)
    assert net.fit(batches_of(X, T, 10), epochs=1).accuracy == []
    assert len(net.fit(batches_of(X, T, 10), epochs=1, accuracy=True).accuracy) == 1


def test_an_iterable_never_runs_on_the_online_engine():
    X, y = data(20)
    with pytest.raises(ValueError, match="not on batches from an iterable"):
        classifier().fit(batches_of(X, y, 1), engine="online")


def test_verbose_shows_a_bar_over_the_batches(capsys):
    X, y = data()
    classifier().fit(Batches(X, y, 10), epochs=2, verbose=True)
    err = capsys.readouterr().err
    assert "epoch 1" in err and "batch" in err and "2/2" in err


# ------------------------------------------------------------------ memory
def test_memory_stays_one_batch_the_source_keeps_no_batch_alive():
    X, y = data(200)
    alive = []

    class Fresh:
        def __iter__(self):
            for s in range(0, 200, 5):
                Xb = X[s : s + 5].copy()
                alive.append(weakref.ref(Xb))
                assert sum(r() is not None for r in alive) <= 2  # this batch and the last
                yield Xb, y[s : s + 5].copy()

    classifier().fit(Fresh(), epochs=2, engine="reference")
    assert len(alive) == 80


# ------------------------------------------------------------------ bad batches
def bad_at_2(bad):
    X, y = data(50)
    good = batches_of(X, y, 10)
    return good[:2] + [bad] + good[3:], good[:2]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    "bad, message",
    [
        ((np.zeros((10, 4)), np.zeros(10, dtype=int)), "batch 2 of epoch 1: X has 4 columns"),
        ((np.zeros((10, 3), np.float32), np.zeros(10, dtype=int)), "X has dtype float32"),
        ((np.zeros((10, 3)), np.zeros(9, dtype=int)), "X has 10 rows but the targets have 9"),
        ((np.zeros((10, 3)), np.full(10, 7)), "batch 2 of epoch 1: T"),
        ((np.full((10, 3), np.nan), np.zeros(10, dtype=int)), "X contains NaN"),
        ((np.zeros((10, 3)),), r"must be \(X, T\) or \(X, T, w\). Received: 1 items"),
        (np.zeros((10, 3)), "Received: ndarray"),
        ((np.zeros((10, 3)), np.zeros(10, dtype=int), np.ones(10)), "has weights w, unlike"),
    ],
)
def test_a_bad_batch_stops_the_fit_before_its_step(engine, bad, message):
    stream, before_bad = bad_at_2(bad)
    net, expected = classifier(), classifier()
    expected.fit(before_bad, epochs=1, engine=engine)
    with pytest.raises(ValueError, match=message):
        net.fit(stream, epochs=1, engine=engine)
    assert same_weights(net, expected)  # the weights of the batches before the bad one


@pytest.mark.parametrize(
    "w, message",
    [
        (np.ones(9), "must be 10 numbers"),
        (-np.ones(10), r"must be finite numbers >= 0. Received: -1.0 at 0"),
        (np.full(10, np.nan), "must be finite numbers >= 0. Received: nan"),
        (np.zeros(10), "are all 0"),
        (np.ones((10, 1)), "must be 10 numbers"),
    ],
)
def test_bad_weights_in_a_batch_are_refused_naming_it(w, message):
    X, y = data(30)
    stream = [(X[:10], y[:10], np.ones(10)), (X[10:20], y[10:20], w)]
    net, expected = classifier(), classifier()
    with pytest.raises(ValueError, match="batch 1 of epoch 1: w " + message):
        net.fit(stream, epochs=1, engine="reference")
    expected.fit(stream[:1], epochs=1, engine="reference")
    assert same_weights(net, expected)


# ------------------------------------------------------------------ checkpoint and resume
class Interrupt(dp.Callback):
    def __init__(self, epoch, batch):
        self.at = (epoch, batch)

    def on_batch_end(self, net, epoch, batch, loss):
        if (epoch, batch) == self.at:
            raise KeyboardInterrupt


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("stop", [(2, 3), (3, 0)])
def test_resume_is_exact_when_the_iterable_yields_the_same_batches_again(tmp_path, engine, stop):
    """A seeded order drawn from (seed, epoch) through set_epoch: a new process's iterable
    repeats each epoch's batches, so the resumed fit equals the uninterrupted one."""
    X, y = data(64)
    Xv, yv = data(16, seed=3)

    def run(callbacks=(), **kw):
        net = classifier()
        history = net.fit(
            Batches(X, y, 8, seed=11),
            epochs=4,
            optimizer=dp.Adam(lr=0.01),
            validation_data=Batches(Xv, yv, 4),
            engine=engine,
            callbacks=list(callbacks),
            **kw,
        )
        return net, history

    straight, straight_history = run()
    ckpt = tmp_path / "run.ckpt"
    with pytest.raises(KeyboardInterrupt):
        run([Interrupt(*stop)], checkpoint=ckpt, checkpoint_every_batches=2)
    resumed, resumed_history = run(resume=ckpt, checkpoint_every_batches=2)
    assert same_weights(resumed, straight)
    a, b = straight_history.as_dict(), resumed_history.as_dict()
    a.pop("seconds"), b.pop("seconds")
    assert a == b


def test_resuming_on_other_batches_than_the_checkpoints_is_caught_if_they_are_fewer(tmp_path):
    X, y = data(64)
    ckpt = tmp_path / "run.ckpt"
    with pytest.raises(KeyboardInterrupt):
        classifier().fit(
            Batches(X, y, 8),
            epochs=2,
            callbacks=[Interrupt(1, 5)],
            checkpoint=ckpt,
            checkpoint_every_batches=3,
        )
    with pytest.raises(ValueError, match="yielded 2 batches in epoch 1.*after 3 batches of it"):
        classifier().fit(
            Batches(X[:16], y[:16], 8), epochs=2, resume=ckpt, checkpoint_every_batches=3
        )


def test_a_checkpoint_of_arrays_does_not_resume_a_fit_on_batches(tmp_path):
    X, y = data(40)
    ckpt = tmp_path / "run.ckpt"
    classifier().fit(X, y, epochs=1, checkpoint=ckpt)
    with pytest.raises(ValueError, match="batches from an iterable"):
        classifier().fit(batches_of(X, y, 8), epochs=2, resume=ckpt)


# ------------------------------------------------------------------ weighted batches
@pytest.mark.parametrize("engine", ENGINES)
def test_weighted_batches_train_as_sample_weight_on_the_same_arrays(engine):
    X, y = data()
    w = np.random.default_rng(4).uniform(0.0, 2.0, size=len(X))
    stream = [(X[i : i + 10], y[i : i + 10], w[i : i + 10]) for i in range(0, len(X), 10)]
    a, b = classifier(), classifier()
    kwargs = dict(epochs=3, engine=engine, optimizer=dp.Adam(lr=0.01))
    ha = a.fit(X, y, sample_weight=w, batch_size=10, shuffle=False, **kwargs)
    kwargs["optimizer"] = dp.Adam(lr=0.01)
    hb = b.fit(stream, **kwargs)
    assert same_weights(a, b)
    # The epoch's loss divides by Σ w: summed at once over arrays, batch by batch here.
    np.testing.assert_allclose(ha.loss, hb.loss, rtol=1e-14)


def test_weighted_validation_batches_give_the_weighted_validation_loss():
    X, y = data()
    Xv, yv = data(20, seed=5)
    wv = np.linspace(0.5, 2.0, 20)
    a = classifier().fit(X, y, epochs=2, validation_data=(Xv, yv, wv))
    b = classifier().fit(
        X, y, epochs=2, validation_data=[(Xv[:8], yv[:8], wv[:8]), (Xv[8:], yv[8:], wv[8:])]
    )
    np.testing.assert_allclose(a.val_loss, b.val_loss, rtol=1e-12)


@pytest.mark.parametrize("kwargs", [{"sample_weight": np.ones(70)}, {"class_weight": "balanced"}])
def test_sample_and_class_weights_of_arrays_are_refused_with_batches(kwargs):
    X, y = data()
    with pytest.raises(ValueError, match=r"carry their weights themselves: yield \(X, T, w\)"):
        classifier().fit(batches_of(X, y, 10), **kwargs)
