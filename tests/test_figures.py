"""Figures are valid image files and refuse what they cannot draw."""

import numpy as np
import pytest
from matplotlib.image import imread

import deltaprop as dp
from deltaprop import plot
from deltaprop.plot.figures import confusion_counts


@pytest.fixture(scope="module")
def trained():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, size=90)
    X = np.array([[0, 2], [2, 0], [-2, -2]])[y] + rng.normal(scale=0.5, size=(90, 2))
    net = dp.Network(
        [2, 6, 3], activation="tanh", output_activation="softmax", loss="cross_entropy", seed=0
    )
    history = net.fit(X, y, optimizer=dp.Adam(lr=0.05), epochs=15, validation_split=0.2)
    return net, X, y, history


def assert_image(path):
    data = path.read_bytes()
    if path.suffix == ".png":
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert imread(path).shape[0] > 100
    else:
        assert b"<svg" in data[:500]


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_training_curves(tmp_path, trained, suffix):
    fig = plot.training_curves(trained[3], tmp_path / f"curves{suffix}")
    assert len(fig.axes) == 2  # loss and accuracy
    assert_image(tmp_path / f"curves{suffix}")
    # The plotted lines are the history's numbers.
    assert list(fig.axes[0].lines[0].get_ydata()) == trained[3].loss


def test_confusion_matrix_counts_and_file(tmp_path):
    y_true = np.array([0, 0, 1, 1, 2, 2, 2])
    y_pred = np.array([0, 1, 1, 1, 2, 0, 2])
    counts = confusion_counts(y_true, y_pred, 3)
    np.testing.assert_array_equal(counts, [[1, 1, 0], [0, 2, 0], [1, 0, 2]])
    fig = plot.confusion_matrix(y_true, y_pred, ["a", "b", "c"], tmp_path / "cm.png")
    assert "accuracy 0.7143" in fig.axes[0].get_title()
    assert_image(tmp_path / "cm.png")


def test_decision_boundary(tmp_path, trained):
    net, X, y, _ = trained
    plot.decision_boundary(net, X, y, tmp_path / "db.png", resolution=50)
    assert_image(tmp_path / "db.png")
    wide = dp.Network([3, 2], seed=0)
    with pytest.raises(ValueError, match="2-D inputs only"):
        plot.decision_boundary(wide, np.zeros((4, 3)), np.zeros(4))


def test_misclassified_grid(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(10, 64))
    y_true = np.arange(10) % 3
    y_pred = np.array([0, 1, 2, 1, 1, 2, 0, 1, 0, 0])
    fig = plot.misclassified(images, y_true, y_pred, (8, 8), ["x", "y", "z"], tmp_path / "m.png")
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["x → y", "z → x"]  # rows 3 and 8 are the wrong ones
    assert_image(tmp_path / "m.png")
    with pytest.raises(ValueError, match="8×8 = 64 pixels"):
        plot.misclassified(np.zeros((2, 10)), [0, 1], [1, 0], (8, 8))


def test_unknown_suffix_is_refused(tmp_path, trained):
    with pytest.raises(ValueError, match=r"\.png, \.svg or \.pdf"):
        plot.training_curves(trained[3], tmp_path / "curves.jpg")
