"""TrainingAnimation: frames recorded by fit, a valid GIF with the frames it reports."""

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import deltaprop as dp
from deltaprop.plot import TrainingAnimation


def blobs(n=60, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    X = rng.normal(size=(n, 2)) * 0.6 + np.where(y[:, None] == 1, 1.0, -1.0)
    return X, y


def gif_frames(path):
    with Image.open(path) as im:
        assert im.format == "GIF"
        size = im.size
        n = im.n_frames
        durations = []
        for k in range(n):
            im.seek(k)
            durations.append(im.info.get("duration"))
    return n, size, durations


def test_frames_at_epoch_0_every_k_and_the_last(tmp_path):
    X, y = blobs()
    net = dp.Network(
        [2, 4, 2], activation="tanh", output_activation="softmax", loss="cross_entropy", seed=0
    )
    anim = TrainingAnimation(X, y, every=3, resolution=20)
    net.fit(X, y, optimizer=dp.SGD(lr=0.3), epochs=10, batch_size=8, callbacks=[anim])
    assert [f.epoch for f in anim.frames] == [0, 3, 6, 9, 10]
    assert len(anim.logs) == 10
    path = tmp_path / "train.gif"
    assert anim.save(path, fps=5) == 5
    n, size, durations = gif_frames(path)
    assert n == 5 and size[0] > size[1] > 100
    assert durations[0] == 200 and durations[-1] >= 1500  # the trained network lingers


def test_a_frame_holds_the_networks_outputs_over_the_grid():
    X, y = blobs()
    net = dp.Network(
        [2, 3, 1],
        activation="tanh",
        output_activation="sigmoid",
        loss="binary_cross_entropy",
        seed=1,
    )
    anim = TrainingAnimation(X, y, resolution=7)
    net.fit(
        X, y.reshape(-1, 1).astype(float), optimizer=dp.Adam(lr=0.05), epochs=4, callbacks=[anim]
    )
    gx, gy = np.meshgrid(
        np.linspace(anim.low[0], anim.high[0], 7), np.linspace(anim.low[1], anim.high[1], 7)
    )
    expected = net.predict(np.column_stack([gx.ravel(), gy.ravel()]))[:, 0].reshape(7, 7)
    np.testing.assert_allclose(anim.frames[-1].grid, expected, rtol=1e-6)
    assert anim.task == "classification" and anim.frames[-1].confidence is None
    # The grid covers the data with a margin.
    assert np.all(anim.low < X.min(axis=0)) and np.all(anim.high > X.max(axis=0))


def test_max_frames_keeps_first_and_last_and_spreads_the_rest(tmp_path):
    X, y = blobs(30)
    net = dp.Network(
        [2, 3, 2], activation="tanh", output_activation="softmax", loss="cross_entropy", seed=0
    )
    anim = TrainingAnimation(X, y, max_frames=8, resolution=10)
    net.fit(X, y, epochs=40, batch_size=30, callbacks=[anim])
    epochs = [f.epoch for f in anim.frames]
    assert len(epochs) == 8 and epochs[0] == 0 and epochs[-1] == 40
    assert max(np.diff(epochs)) <= 2 * 40 / 7
    assert anim.save(tmp_path / "a.gif") == 8
    assert gif_frames(tmp_path / "a.gif")[0] == 8


def test_regression_targets_get_a_colour_map(tmp_path):
    X, _ = blobs(40)
    target = np.sin(X[:, 0]) + 0.3 * X[:, 1]
    net = dp.Network([2, 6, 1], activation="tanh", output_activation="identity", seed=0)
    anim = TrainingAnimation(X, target, resolution=12)
    net.fit(X, target, optimizer=dp.Adam(lr=0.05), epochs=3, callbacks=[anim])
    assert anim.task == "regression"
    assert anim.save(tmp_path / "r.gif") == 4
    fig = anim.figure(0)
    assert len(fig.axes) == 3  # surface, colour bar, loss curve


def test_one_hot_targets_and_class_names():
    X, y = blobs(20)
    anim = TrainingAnimation(X, np.eye(2)[y], class_names=["left", "right"])
    np.testing.assert_array_equal(anim.y, y)
    assert anim.task == "classification"


def test_bad_input_is_refused():
    X, y = blobs(10)
    with pytest.raises(ValueError, match="width 3"):
        TrainingAnimation(np.zeros((10, 3)), y)
    with pytest.raises(ValueError, match="1-D"):
        TrainingAnimation(np.zeros(10), y)
    with pytest.raises(ValueError, match="one label or target per row"):
        TrainingAnimation(X, y[:5])
    with pytest.raises(ValueError, match="every=0"):
        TrainingAnimation(X, y, every=0)
    with pytest.raises(ValueError, match="max_frames=1"):
        TrainingAnimation(X, y, max_frames=1)
    anim = TrainingAnimation(X, y)
    with pytest.raises(ValueError, match="no frames recorded"):
        anim.save("out.gif")
    net = dp.Network([2, 2], activation="softmax", loss="cross_entropy", seed=0)
    net.fit(X, y, epochs=1, callbacks=[anim])
    with pytest.raises(ValueError, match=r"\.gif"):
        anim.save("out.mp4")
    with pytest.raises(ValueError, match="fps=0"):
        anim.save("out.gif", fps=0)
    wide = dp.Network([3, 2], activation="softmax", loss="cross_entropy", seed=0)
    with pytest.raises(ValueError, match="2 inputs"):
        wide.fit(np.zeros((10, 3)), y, epochs=1, callbacks=[TrainingAnimation(X, y)])


def test_deltaprop_train_animate_writes_the_gif(tmp_path):
    gif = tmp_path / "moons.gif"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "deltaprop",
            "train",
            "--data",
            "moons",
            "--hidden",
            "4",
            "--epochs",
            "6",
            "--animate",
            str(gif),
            "--out",
            str(tmp_path / "run"),
            "--quiet",
            "--no-plots",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert f"{gif} (7 frames)" in result.stdout  # epoch 0 and 6 epochs
    assert gif_frames(gif)[0] == 7
