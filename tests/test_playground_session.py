"""The playground's run, without the web page: settings, data, Play, Step, Reset, files."""

import numpy as np
import pytest

import deltaprop as dp
from deltaprop.data.datasets import load_dataset
from deltaprop.errors import TrainingDivergedError
from deltaprop.explain import classic_example
from deltaprop.playground import files, frames
from deltaprop.playground.problems import GENERATORS, read_csv_upload
from deltaprop.playground.session import Session
from deltaprop.playground.settings import Settings, parse_settings


def session(**values) -> Session:
    return Session(parse_settings(values))


# ------------------------------------------------------------------ settings
def test_settings_round_trip_through_the_hash():
    s = parse_settings(
        {"dataset": "spiral", "shape": "2-8-8-2", "activation": "tanh", "lr": "0.03", "seed": "0"}
    )
    assert s.hidden == (8, 8) and s.activation == ("tanh", "tanh") and s.lr == 0.03
    run = Session(s)
    hashed = run.hash()
    assert hashed["shape"] == "2-8-8-2" and hashed["dataset"] == "spiral"
    again = Session(parse_settings(hashed))
    for mine, theirs in zip(run.net.parameters(), again.net.parameters()):
        np.testing.assert_array_equal(mine, theirs)


@pytest.mark.parametrize(
    "values, message",
    [
        ({"shape": "2-65-2"}, "hidden layer 1 must have 1 to 64 units"),
        ({"shape": ",".join(["4"] * 9)}, "at most 8 hidden layers"),
        ({"lr": "fast"}, "lr: expected a number"),
        ({"dataset": "mnist"}, "dataset: expected one of circles"),
        ({"activation": "softmax"}, "activation: expected one of"),
        ({"colour": "red"}, "unknown settings ['colour']"),
        ({"speed": 7}, "speed: expected one of 1, 10, 100, 0"),
        ({"activation": "tanh,relu,relu", "shape": "4,4"}, "one per hidden layer (2)"),
    ],
)
def test_bad_settings_name_the_key_and_what_was_received(values, message):
    with pytest.raises(ValueError) as info:
        parse_settings(values)
    assert message in str(info.value)


def test_a_shape_that_does_not_fit_the_data_is_refused_and_changes_nothing():
    run = session(dataset="circles")
    before = [p.copy() for p in run.net.parameters()]
    with pytest.raises(ValueError, match="has 2 inputs"):
        run.change({"shape": "3-4-2"})
    with pytest.raises(ValueError, match="needs 2 outputs"):
        run.change({"shape": "2-4-5"})
    for mine, saved in zip(run.net.parameters(), before):
        np.testing.assert_array_equal(mine, saved)
    run.change({"shape": "2-4-1"})  # one output for two classes, with squared error
    assert run.net.sizes == [2, 4, 1] and run.problem.T_train.shape[1] == 1


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_each_data_set_is_two_classes_in_the_plane_and_noise_moves_points(name):
    quiet, noisy = session(dataset=name, noise=0), session(dataset=name, noise=0.5)
    X = np.vstack([quiet.problem.X_train, quiet.problem.X_test])
    assert X.shape == (400, 2) and np.abs(X).max() < 1.3
    assert sorted(set(quiet.problem.labels_train)) == [0, 1]
    assert not np.allclose(quiet.problem.X_train, noisy.problem.X_train)
    assert len(quiet.problem.X_train) == 200  # train=0.5


# ------------------------------------------------------------------ Step
def test_step_on_the_classic_example_is_deltaprop_explains_step():
    run = session(example="classic")
    assert run.net.sizes == [2, 2, 2] and run.settings.lr == 0.5 and run.batch_size == 1
    record = run.step()
    net, x, t, lr = classic_example()
    trace = dp.explain(net, x, t, dp.SGD(lr=lr))
    assert record.trace == trace.__class__.from_json(record.trace.to_json())
    for mine, theirs in zip(record.trace.layers, trace.layers):
        np.testing.assert_array_equal(mine.delta, theirs.delta)
        np.testing.assert_array_equal(mine.W_new, theirs.W_new)
    np.testing.assert_allclose(record.deltas[-1], [-0.138498562, 0.038098237], atol=1e-9)
    # The step was applied: the session's network holds the updated weights.
    np.testing.assert_array_equal(run.net.layers[0].W, trace.layers[0].W_new)
    np.testing.assert_allclose(record.changes[1][0][0, 0], -0.04108352028, atol=1e-11)


def test_formula_lines_are_the_lines_deltaprop_explain_prints():
    run = session(example="classic")
    record = run.step()
    lines = frames.formula_lines(record.trace)
    text = [line.strip() for line in record.trace.render("text", width=0).splitlines()]
    unit = lines["units"]["h1"]
    assert [b["title"] for b in unit] == ["Forward pass", "Hidden deltas"]
    assert unit[1]["lines"] == [
        "δ_h1 = h1(1 − h1)(δ_o1 w_o1,h1 + δ_o2 w_o2,h1) = 0.5933 × (1 − 0.5933) × "
        "(−0.1385 × 0.4 + 0.0381 × 0.5) = 0.2413 × (−0.03635) = −0.008771"
    ]
    assert sorted(lines["units"]) == ["h1", "h2", "o1", "o2"]
    assert lines["error"]["E"][-1]["lines"] == ["E = 0.2984 → 0.2805"]
    every = [
        line
        for kind in ("units", "weights", "error")
        for group in lines[kind].values()
        for block in group
        for line in block["lines"]
    ]
    assert len(every) == 8 + 4 + 12 + 3
    for line in every:
        assert line in text, line


def test_adam_steps_keep_their_state_and_group_each_weights_lines():
    run = session(example="classic", optimizer="adam", lr=0.01)
    run.step()
    assert run.optimizer.steps == 1 and run.optimizer.state is not None
    lines = frames.formula_lines(run.last_step.trace)["weights"]["w_o1,h1"][0]["lines"]
    assert [line.split(" ")[0] for line in lines] == ["g", "m", "v", "m̂", "v̂", "w_o1,h1"]


def test_a_batch_step_is_the_reference_engines_step():
    run = session(dataset="xor", batch=10)
    copy = run.net.copy()
    record = run.step()
    rows = record.rows
    assert len(rows) == 10 and record.trace is None and run.batch == 1
    X, T = run.problem.X_train[rows], run.problem.T_train[rows]
    grads = copy.gradients(X, T)
    for (gW, gb), (mW, mb) in zip(grads, record.gradients):
        np.testing.assert_allclose(mW, gW, atol=1e-12)
        np.testing.assert_allclose(mb, gb, atol=1e-12)
    np.testing.assert_allclose(record.changes[0][0], -0.03 * grads[0][0], atol=1e-12)


# ------------------------------------------------------------------ Play and Reset
def test_play_trains_as_fit_does_and_reset_replays_the_same_run():
    run = session(dataset="moons", shape="2-6-2", batch=8, lr=0.1)
    start = [p.copy() for p in run.net.parameters()]
    assert run.train_for(10.0, max_epochs=3) == 3 and run.epoch == 3
    twin = session(dataset="moons", shape="2-6-2", batch=8, lr=0.1)
    twin.net.fit(
        twin.problem.X_train,
        twin.problem.T_train,
        optimizer=twin.optimizer,
        epochs=3,
        batch_size=8,
        engine=run.engine_name,
    )
    for mine, theirs in zip(run.net.parameters(), twin.net.parameters()):
        np.testing.assert_allclose(mine, theirs, rtol=1e-10, atol=1e-12)
    trained = [p.copy() for p in run.net.parameters()]
    run.reset()
    assert run.epoch == 0
    for mine, saved in zip(run.net.parameters(), start):
        np.testing.assert_array_equal(mine, saved)
    run.train_for(10.0, max_epochs=3)
    for mine, saved in zip(run.net.parameters(), trained):
        np.testing.assert_array_equal(mine, saved)


def test_play_finishes_an_epoch_step_began():
    run = session(dataset="gauss", batch=20)
    run.step()
    run.step()
    assert run.batch == 2
    run.train_for(0.0, max_epochs=1)
    assert run.epoch == 1 and run.batch == 0


def test_divergence_keeps_the_last_finite_weights_and_says_so():
    run = session(dataset="xor", activation="identity", output="identity", lr=100, batch=10)
    with pytest.raises(TrainingDivergedError, match="lr=100"):
        for _ in range(30):
            run.train_for(0.0, max_epochs=1)
    assert all(np.isfinite(p).all() for p in run.net.parameters())
    stepper = session(dataset="xor", activation="identity", output="identity", lr=100, batch=1)
    with pytest.raises(TrainingDivergedError):
        for _ in range(30):
            stepper.step()
    assert all(np.isfinite(p).all() for p in stepper.net.parameters())
    stepper.reset()
    stepper.change({"lr": 0.01})
    stepper.step()


# ------------------------------------------------------------------ files
def test_csv_uploads_follow_train_datas_rules_and_messages(tmp_path):
    good = b"a,b,c,label\n" + b"".join(
        f"{i % 7},{i % 3},{i % 5},{'yes' if i % 2 else 'no'}\n".encode() for i in range(40)
    )
    run = session()
    run.load_csv("mine.csv", good)
    assert run.problem.n_inputs == 3 and run.problem.class_names == ["no", "yes"]
    # More than two features: drawn on the plane of the first two principal components.
    state = frames.description(run)
    assert state["data"]["projected"] and 0 < state["data"]["projected_variance"] <= 1
    grids = frames.grids(run)
    inputs = np.frombuffer(__import__("base64").b64decode(grids["inputs"]), dtype="<f4")
    assert inputs.size == 3 * grids["unit_cells"] ** 2
    run.train_for(0.0, max_epochs=1)
    bad = b"a,b,label\n1,2,x\n3,oops,y\n"
    path = tmp_path / "bad.csv"
    path.write_bytes(bad)
    with pytest.raises(ValueError) as expected:
        load_dataset(str(path))
    with pytest.raises(ValueError) as received:
        read_csv_upload("bad.csv", bad)
    assert str(received.value) == str(expected.value).replace(str(path), "bad.csv")
    assert "bad.csv" in str(received.value) and "line 3" in str(received.value)
    with pytest.raises(ValueError, match="expected a .csv file"):
        read_csv_upload("data.xlsx", b"PK")
    assert run.problem.n_inputs == 3  # the failed uploads changed nothing


def test_the_plane_of_data_in_a_plane_is_that_plane():
    from deltaprop.playground.problems import principal_plane

    rng = np.random.default_rng(0)
    uv = rng.normal(size=(50, 2))
    X = uv @ np.array([[1.0, 2.0, 0.5], [0.0, 1.0, -1.0]]) + [3.0, -1.0, 2.0]
    plane = principal_plane(X)
    assert plane.variance == pytest.approx(1.0)
    np.testing.assert_allclose(plane.inputs(plane.coordinates(X)), X, atol=1e-12)
    np.testing.assert_allclose(plane.basis @ plane.basis.T, np.eye(2), atol=1e-12)
    flat = session(dataset="xor").problem.plane
    assert not flat.projected and np.array_equal(flat.basis, np.eye(2))


def test_the_model_file_loads_with_dp_load_and_continues_the_run(tmp_path):
    run = session(dataset="circles", shape="2-5-2")
    run.train_for(10.0, max_epochs=2)
    content = files.model_bytes(run)
    (tmp_path / "m.safetensors").write_bytes(content)
    net = dp.load(tmp_path / "m.safetensors")
    np.testing.assert_array_equal(
        net.predict(run.problem.X_test), run.net.predict(run.problem.X_test)
    )
    assert net.metadata["playground"]["epoch"] == 2
    other = session(dataset="circles")
    files.load_model(other, content)
    assert other.net.sizes == [2, 5, 2] and other.epoch == 2 and other.settings.hidden == (5,)
    with pytest.raises(dp.ModelFileError):
        files.load_model(other, b"not a model")
    csv = session()
    csv.load_csv("three.csv", b"a,b,c,y\n" + b"1,2,3,0\n4,5,6,1\n" * 10)
    with pytest.raises(ValueError, match="takes 2 inputs"):
        files.load_model(csv, content)


def test_frames_carry_weights_deltas_and_grids():
    run = session(dataset="spiral", shape="2-8-8-2")
    frame = frames.frame(run)
    assert frame["epoch"] == 0 and frame["delta_source"] == "mean"
    assert [len(d) for d in frame["deltas"]] == [8, 8, 2]
    grids = frame["grids"]
    hidden = np.frombuffer(__import__("base64").b64decode(grids["hidden"][0]), dtype="<f4")
    assert hidden.size == 8 * grids["unit_cells"] ** 2
    state = frames.description(run)
    assert state["network"]["units"][1][0] == "h1:1" and state["hash"]["shape"] == "2-8-8-2"


def test_settings_defaults_are_a_working_run():
    run = Session()
    assert run.settings == Settings()
    run.train_for(0.0, max_epochs=1)
    assert run.epoch == 1
