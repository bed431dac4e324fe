"""What a first fit pays for the kernels, and the record that tells the chooser (choose.py's
engine_for_size, compile_record.py): loading them once per process, compiling them once per
machine and configuration, each bought by the rent-or-buy rule on the savings forgone."""

from __future__ import annotations

import json

import numpy as np
import pytest

import deltaprop as dp
from deltaprop.train.engines import choose as fastpath
from deltaprop.train.engines import compile_record, loading


@pytest.fixture
def fresh_process(monkeypatch):
    """A process that has loaded no kernels and forgone nothing yet."""
    monkeypatch.setattr(loading, "_kernels", None)
    monkeypatch.setattr(fastpath, "small_fit_savings", fastpath.SmallFitSavings())
    monkeypatch.setattr(compile_record, "_compiled_here", set())


@pytest.fixture
def record(tmp_path, monkeypatch, fresh_process):
    """An empty record of this machine's compiled kernels, in a folder of the test's own."""
    monkeypatch.setenv(compile_record.RECORD_VARIABLE, str(tmp_path))
    return tmp_path


def next_process(monkeypatch):
    """What a new process keeps: the record on disk, nothing in memory."""
    monkeypatch.setattr(loading, "_kernels", None)
    monkeypatch.setattr(fastpath, "small_fit_savings", fastpath.SmallFitSavings())
    monkeypatch.setattr(compile_record, "_compiled_here", set())


def mark_compiled(net, opt, engine="batch"):
    compile_record.mark_compiled(compile_record.configuration(engine, net, opt))
    compile_record._compiled_here.clear()  # as the next process finds it: on disk


def test_small_fits_skip_loading_the_kernels(record):
    net = dp.Network([64, 64, 10], output_activation="softmax", loss="cross_entropy", seed=0)
    adam, sgd = dp.Adam(lr=0.001), dp.SGD(lr=0.1)
    mark_compiled(net, adam)
    mark_compiled(net, sgd, "online")
    # The CLI's digits default (1,294 examples, 30 epochs, batch 32): cheaper on NumPy alone.
    assert fastpath.engine_for_size(net, adam, 1294, 30, 32) == "reference"
    # Online learning saves ~60 us a step: worth loading the kernels for 40,000 steps.
    assert fastpath.engine_for_size(net, sgd, 1294, 30, 1) == "auto"
    big = dp.Network([784, 256, 128, 10], output_activation="softmax", loss="cross_entropy")
    mark_compiled(big, adam)
    assert fastpath.engine_for_size(big, adam, 60_000, 3, 128) == "auto"
    loading._kernels = object()  # already loaded (the fixture restores it): always use them
    assert fastpath.engine_for_size(net, adam, 10, 1, 32) == "auto"


def test_small_fits_load_the_kernels_once_their_forgone_savings_would_have_paid(record):
    net = dp.Network(
        [64, 100, 10], "relu", output_activation="softmax", loss="cross_entropy", seed=0
    )
    adam = dp.Adam(lr=0.001)
    mark_compiled(net, adam)
    # scikit-learn's digits defaults (1,257 training rows, batch 200, 200 epochs): by the
    # estimate, the batch engine saves on each of 1,400 steps 53 us, 0.37 ns for each of the
    # 60,080 bytes of parameters (7,510 float64s) and 1.7 ns for each of the 200 x 110
    # activations: 53 + 22.2296 + 37.4 = 112.6296 us, and 1,400 x 112.6296 us = 0.15768144 s,
    # less than the 0.4 s of loading (timed: 0.163 s saved).
    assert fastpath.kernel_saving(net, 1257, 200, 200) == pytest.approx(0.15768144, abs=1e-8)
    # Sigmoid hidden units save 4 ns more per element: 1,400 x 4 ns x 200 x 100 = 0.112 s more.
    sigmoid = dp.Network([64, 100, 10], output_activation="softmax", loss="cross_entropy")
    assert fastpath.kernel_saving(sigmoid, 1257, 200, 200) == pytest.approx(0.26968144, abs=1e-8)
    assert fastpath.engine_for_size(net, adam, 1257, 200, 200) == "reference"
    assert fastpath.small_fit_savings.seconds == 0.0  # choosing counts nothing
    fastpath.forgo_kernels(net, adam, 1257, 200, 200)  # the fit ran all its epochs on NumPy
    assert fastpath.small_fit_savings.seconds == pytest.approx(0.15768144, abs=1e-8)
    # A search or a cross-validation of such fits: the second's 0.315 s (with the first's
    # forgone) does not repay loading, the third's 0.473 s does.
    for _ in range(1):
        assert fastpath.engine_for_size(net, adam, 1257, 200, 200) == "reference"
        fastpath.forgo_kernels(net, adam, 1257, 200, 200)
    assert fastpath.engine_for_size(net, adam, 1257, 200, 200) == "auto"
    # A fit that stopped early counts the epochs it ran: 27 of 200.
    fastpath.small_fit_savings.seconds = 0.0
    fastpath.forgo_kernels(net, adam, 1257, 27, 200)
    full = fastpath.kernel_saving(net, 1257, 200, 200)
    assert fastpath.small_fit_savings.seconds == pytest.approx(full * 27 / 200, rel=1e-12)
    assert fastpath.engine_for_size(net, adam, 1257, 200, 200) == "reference"
    # A loop of one-epoch partial fits (7 steps: 0.0007884072 s each) loads them after
    # 0.4 / 0.0007884072 = 507.4 calls.
    fastpath.small_fit_savings.seconds = 0.0
    engines = []
    for _ in range(800):
        engines.append(fastpath.engine_for_size(net, adam, 1257, 1, 200))
        if engines[-1] == "reference":
            fastpath.forgo_kernels(net, adam, 1257, 1, 200)
    assert engines.index("auto") == 507
    assert set(engines[:507]) == {"reference"} and set(engines[507:]) == {"auto"}


def test_a_first_fit_prices_compiling_until_earlier_processes_forgone_savings_repay_it(
    record, monkeypatch
):
    # scikit-learn's defaults with max_iter=100 on 8,000 MNIST-shaped rows: 784-100-10, batch
    # 200. The batch engine would save 4,000 steps x (53 us + 0.37 ns x 636,080 bytes of
    # parameters + 1.7 ns x 200 x 110 activations) = 4,000 x 325.7496 us = 1.3029984 s: more
    # than loading cached kernels (0.4 s), less than loading and compiling them (0.4 + 1.5 s).
    net = dp.Network([784, 100, 10], "relu", output_activation="softmax", loss="cross_entropy")
    adam = dp.Adam(lr=0.001)
    saving = fastpath.kernel_saving(net, 8000, 100, 200)
    assert saving == pytest.approx(1.3029984, abs=1e-7)
    config = compile_record.configuration("batch", net, adam)
    assert compile_record.read(config) == compile_record.Entry(False, 0.0)
    assert fastpath.engine_for_size(net, adam, 8000, 100, 200) == "reference"
    fastpath.forgo_kernels(net, adam, 8000, 100, 200)
    # The record keeps what compiling would have saved beyond loading: 1.3029984 - 0.4 s.
    assert compile_record.read(config).forgone_seconds == pytest.approx(saving - 0.4)
    # This process's own part is not counted twice: a 2-epoch fit here saves 0.026 s, and
    # 0.026 + 1.303 forgone - 0.4 - 1.5 < 0 (counting the record's 0.903 too would buy).
    assert fastpath.engine_for_size(net, adam, 8000, 2, 200) == "reference"
    # The next process: 1.303 - 0.4 + 0.903 = 1.806 s of gain against 1.5 s of compiling.
    next_process(monkeypatch)
    assert fastpath.engine_for_size(net, adam, 8000, 100, 200) == "auto"
    # Its fit compiles and the engine marks the configuration; later processes only load.
    rng = np.random.default_rng(0)
    net.fit(
        rng.random((64, 784)),
        rng.integers(0, 10, 64),
        optimizer=adam,
        epochs=1,
        batch_size=200,
        engine="batch",
        verbose=False,
    )
    next_process(monkeypatch)
    assert compile_record.read(config).compiled
    assert fastpath.engine_for_size(net, adam, 8000, 100, 200) == "auto"
    # max_iter=20 stays on NumPy even then: 0.261 s < 0.4 s (timed: 0.27 s saved).
    assert fastpath.engine_for_size(net, adam, 8000, 20, 200) == "reference"


def test_the_online_kernel_is_bought_per_configuration_on_its_forgone_savings(record, monkeypatch):
    # The seed's regime on digits, 30 epochs: 38,820 steps x 60 us (+ 0.056 s of products) x
    # 0.95 = 2.266 s saved; 2.266 - 0.4 (loading) - 2.0 (compiling) < 0: not for one such fit.
    net = dp.Network([64, 32, 10], seed=0)
    sgd = dp.SGD(lr=0.5)
    assert fastpath.engine_for_size(net, sgd, 1294, 30, 1) == "reference"
    tanh = dp.Network([64, 32, 10], "tanh", output_activation="softmax", loss="cross_entropy")
    momentum = dp.SGD(lr=0.1, momentum=0.9)
    mark_compiled(tanh, momentum, "online")  # another configuration's kernel: no help
    mark_compiled(net, momentum, "online")  # another SGD variant: none either
    assert fastpath.engine_for_size(net, sgd, 1294, 30, 1) == "reference"
    # Run on NumPy, that fit leaves 2.266 - 0.4 = 1.866 s forgone; with the next one's it
    # pays: 1.866 + 1.866 - 2.0 > 0.
    fastpath.forgo_kernels(net, sgd, 1294, 30, 1)
    next_process(monkeypatch)
    assert fastpath.engine_for_size(net, sgd, 1294, 30, 1) == "auto"
    single = dp.Network([64, 32, 10], seed=0, dtype=np.float32)  # forgone nothing yet
    assert fastpath.engine_for_size(single, sgd, 1294, 30, 1) == "reference"


def test_a_configuration_names_what_its_kernels_are_compiled_for():
    net = dp.Network([4, 3, 2], "relu", output_activation="softmax", loss="cross_entropy")
    config = compile_record.configuration
    # The learning rate is a run-time number; the optimizer's other settings are compiled in.
    assert config("batch", net, dp.Adam(lr=0.1)) == config("batch", net, dp.Adam(lr=0.2))
    assert config("batch", net, dp.Adam()) != config("batch", net, dp.Adam(amsgrad=True))
    assert config("batch", net, dp.Adam()) != config("batch", net, dp.AdamW())
    tanh = dp.Network([4, 3, 2], "tanh", output_activation="softmax", loss="cross_entropy")
    assert config("batch", net, dp.Adam()) != config("batch", tanh, dp.Adam())
    single = dp.Network([4, 3, 2], "relu", output_activation="softmax", dtype=np.float32)
    assert config("batch", net, dp.Adam()) != config("batch", single, dp.Adam())
    online = config("online", net, dp.SGD(lr=0.1, weight_decay=0.1))
    assert online == "online float64 relu,softmax cross_entropy plain"
    deeper = dp.Network([4, 5, 6, 2], "relu", "softmax", loss="cross_entropy")
    assert online == config("online", deeper, dp.SGD())
    assert online != config("online", net, dp.SGD(momentum=0.9))
    assert config("online", tanh, dp.SGD()).startswith("online float64 tanh,softmax")
    mixed = dp.Network([4, 5, 6, 2], ["relu", "tanh"], "softmax", loss="cross_entropy")
    assert config("online", mixed, dp.SGD()).startswith("online float64 mixed,softmax")
    assert config("batch", net, dp.Adam()).startswith("batch float64 relu,softmax cross_entropy")


def test_the_record_lives_with_numbas_cache_and_survives_what_it_cannot_read(
    tmp_path, monkeypatch, fresh_process
):
    monkeypatch.delenv(compile_record.RECORD_VARIABLE)
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "numba"))
    assert compile_record.record_folder() == tmp_path / "numba" / "deltaprop"  # emptied with it
    net, adam = dp.Network([4, 3, 2]), dp.Adam()
    config = compile_record.configuration("batch", net, adam)
    compile_record.add_forgone(config, 0.25)
    compile_record.add_forgone(config, 0.5)
    (path,) = (tmp_path / "numba" / "deltaprop").iterdir()
    written = json.loads(path.read_text())
    assert written == {"configuration": config, "compiled": False, "forgone_seconds": 0.75}
    path.write_text("{not json")  # damaged: read as empty, and replaced whole
    assert compile_record.read(config) == compile_record.Entry()
    compile_record.mark_compiled(config)
    assert json.loads(path.read_text())["compiled"] is True
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left
    compile_record.add_forgone(config, 1.0)  # nothing to forgo once compiled
    assert compile_record.read_from_disk(config) == compile_record.Entry(True, 0.0)
    # Turned off: nothing is read or written, and nothing counts as compiled.
    monkeypatch.setenv(compile_record.RECORD_VARIABLE, "")
    compile_record._compiled_here.clear()
    assert compile_record.record_folder() is None
    assert compile_record.read(config) == compile_record.Entry()


def test_a_record_that_cannot_be_written_costs_nothing_but_its_knowledge(
    tmp_path, monkeypatch, fresh_process
):
    blocker = tmp_path / "a file"
    blocker.write_text("")
    monkeypatch.setenv(compile_record.RECORD_VARIABLE, str(blocker / "record"))  # no folder
    config = compile_record.configuration("online", dp.Network([2, 2]), dp.SGD(lr=0.1))
    compile_record.add_forgone(config, 3.0)  # no error
    compile_record.mark_compiled(config)
    assert compile_record.read(config).compiled  # this process knows; the next will not
    assert compile_record.read_from_disk(config) == compile_record.Entry()
    assert blocker.read_text() == ""


def test_the_record_is_keyed_by_what_numbas_cache_depends_on(record, monkeypatch):
    config = compile_record.configuration("online", dp.Network([2, 2]), dp.SGD(lr=0.1))
    compile_record.mark_compiled(config)
    compile_record._compiled_here.clear()
    assert compile_record.read(config).compiled
    stamp = compile_record._stamp()
    assert "kernels.py:" in stamp and "batch_kernels.py:" in stamp and "__init__.py:" in stamp
    # A changed kernel source (or Numba, or Python) is a new stamp: an empty record.
    monkeypatch.setattr(compile_record, "_stamp", lambda: stamp.replace("kernels.py:", "k:"))
    assert compile_record.read(config) == compile_record.Entry()


def test_an_estimator_counts_the_epochs_its_small_fit_ran_on_numpy(record):
    from deltaprop.sklearn import MLPRegressor

    X = np.random.default_rng(0).normal(size=(300, 5))
    y = X @ np.arange(1.0, 6.0) / 10
    est = MLPRegressor(hidden_layer_sizes=(8,), max_iter=300, tol=1e-3, random_state=0)
    est.fit(X, y)
    assert 0 < est.n_iter_ < 300  # it stopped early, on the reference engine
    assert not loading.kernels_loaded()
    expected = fastpath.kernel_saving(est.network_, 300, est.n_iter_, 200)
    assert fastpath.small_fit_savings.seconds == pytest.approx(expected, rel=1e-12)
    # Sparse inputs run on NumPy whatever the kernels' state: they count nothing.
    scipy_sparse = pytest.importorskip("scipy.sparse")
    MLPRegressor(hidden_layer_sizes=(8,), max_iter=5, random_state=0).fit(
        scipy_sparse.csr_matrix(X), y
    )
    assert fastpath.small_fit_savings.seconds == pytest.approx(expected, rel=1e-12)


def test_the_cli_counts_what_its_fit_on_numpy_forwent(record, tmp_path, monkeypatch):
    from deltaprop.cli import main

    seen = []
    monkeypatch.setattr(
        "deltaprop.commands.train.forgo_kernels", lambda *args: seen.append(args[2:])
    )
    out = tmp_path / "run"
    args = ["train", "--epochs", "3", "--no-plots", "--quiet", "--out", str(out)]
    assert main(args) == 0
    # The bundled digits, 3 epochs of batch 32: on NumPy, and its 3 epochs counted.
    ((n_examples, epochs, batch_size),) = seen
    assert (epochs, batch_size) == (3, 32) and 1000 < n_examples < 1797


# ------------------------------------------------------------------ kernels cached before an edit
def _cached(folder, *names):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"cached")


KERNEL_FILES = (
    "kernels._sigmoid-91.py311.nbi",
    "kernels._sigmoid-91.py311.0.nbc",
    "online_kernel._epoch_for.locals.online_epoch_as-140.py311.nbi",
    "batch_kernels._bind_output_batch.locals.output_batch_as-97.py311.3.nbc",
)


def test_kernels_cached_before_any_kernel_source_changed_are_deleted(tmp_path, monkeypatch):
    """Numba checks a cached kernel against its own file only: the online epoch cached before
    kernels.py's sigmoid was edited would load with the old sigmoid compiled in. A digest of
    every kernel source, kept beside Numba's files, catches it."""
    sources = tmp_path / "sources"
    sources.mkdir()
    for name in compile_record.KERNEL_SOURCES:
        (sources / f"{name}.py").write_text(f"# {name}\n")
    monkeypatch.setattr(compile_record, "_HERE", sources)
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "numba"))
    folder = compile_record.numba_cache_folder()
    # Numba's own folder for these sources' module: $NUMBA_CACHE_DIR/engines_<sha1 of its path>.
    assert folder.parent == tmp_path / "numba" and folder.name.startswith("engines_")
    _cached(folder, *KERNEL_FILES, "elsewhere.f-1.py311.nbi")
    # No digest yet: whatever is cached may predate any edit.
    assert compile_record.discard_stale_kernels() == len(KERNEL_FILES)
    assert sorted(p.name for p in folder.iterdir()) == [
        compile_record.SOURCES_STAMP,
        "elsewhere.f-1.py311.nbi",
    ]
    _cached(folder, *KERNEL_FILES)  # compiled from these sources: kept
    assert compile_record.discard_stale_kernels() == 0
    assert all((folder / name).exists() for name in KERNEL_FILES)
    (sources / "kernels.py").write_text("# kernels, edited\n")
    assert compile_record.discard_stale_kernels() == len(KERNEL_FILES)
    assert not any((folder / name).exists() for name in KERNEL_FILES)
    assert compile_record.discard_stale_kernels() == 0


def test_a_cache_folder_that_cannot_be_read_is_left_alone(tmp_path, monkeypatch):
    monkeypatch.setattr(compile_record, "_HERE", tmp_path / "missing")  # sources unreadable
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "numba"))
    folder = compile_record.numba_cache_folder()
    _cached(folder, *KERNEL_FILES)
    assert compile_record.discard_stale_kernels() == 0
    assert all((folder / name).exists() for name in KERNEL_FILES)


def test_loading_the_kernels_first_discards_those_cached_from_other_sources(
    tmp_path, monkeypatch, fresh_process
):
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    folder = compile_record.numba_cache_folder()
    _cached(folder, "updates.adam_step_as-70.py311.nbi")
    (folder / compile_record.SOURCES_STAMP).write_text("0" * 64)  # another version's digest
    assert loading.load_kernels() is not None
    assert not (folder / "updates.adam_step_as-70.py311.nbi").exists()
    assert (folder / compile_record.SOURCES_STAMP).read_text() != "0" * 64
