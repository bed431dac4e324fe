"""deltaprop.plot.network: valid PNG/SVG pictures whose colours and widths follow the numbers."""

import base64
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from matplotlib import colormaps
from matplotlib.lines import Line2D
from matplotlib.patches import Circle
from PIL import Image

import deltaprop as dp
from deltaprop.explain import classic_example
from deltaprop.plot import network
from deltaprop.plot.diagram import CMAP, NEGATIVE, POSITIVE


def classic():
    net, x, t, lr = classic_example()
    return net, dp.explain(net, x, t, dp.SGD(lr=lr))


def circles(fig):
    return [p for p in fig.axes[0].patches if isinstance(p, Circle)]


def edges(fig):
    return [line for line in fig.axes[0].lines if isinstance(line, Line2D)]


def texts(fig):
    return [t.get_text() for t in fig.axes[0].texts]


def test_png_and_svg_files_are_valid(tmp_path):
    net, tr = classic()
    png, svg = tmp_path / "net.png", tmp_path / "net.svg"
    network(net, tr, path=png, show="delta")
    network(net, tr, path=svg)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(png) as im:
        im.verify()
    with Image.open(png) as im:
        assert im.width > 200 and im.height > 100
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg")
    with pytest.raises(ValueError, match="net.gif"):
        network(net, tr, path=tmp_path / "net.gif")


def test_units_are_coloured_by_delta_and_edges_sized_by_the_change():
    net, tr = classic()
    fig = network(net, tr, show="delta")
    units = circles(fig)
    assert len(units) == 6  # x1 x2 h1 h2 o1 o2
    deltas = np.concatenate([tr.layers[0].delta, tr.layers[1].delta])
    vmax = np.abs(deltas).max()
    cmap = colormaps[CMAP]
    for patch, d in zip(units[2:], deltas):
        expected = cmap((d + vmax) / (2 * vmax))
        np.testing.assert_allclose(patch.get_facecolor(), expected, atol=1e-6)
    # Weights first (12 = 4 + 4 plus 2 + 2 bias edges), drawn layer by layer; width grows with
    # |Δw| and colour is its sign.
    lines = edges(fig)
    changes = np.concatenate(
        [
            np.r_[tr.layers[0].W_change.ravel(), tr.layers[0].b_change],
            np.r_[tr.layers[1].W_change.ravel(), tr.layers[1].b_change],
        ]
    )
    assert len(lines) == len(changes) == 12
    widths = np.array([line.get_linewidth() for line in lines])
    drawn = np.concatenate(
        [
            [abs(tr.layers[0].W_change[j, i]) for j in range(2) for i in range(2)]
            + [abs(v) for v in tr.layers[0].b_change],
            [abs(tr.layers[1].W_change[j, i]) for j in range(2) for i in range(2)]
            + [abs(v) for v in tr.layers[1].b_change],
        ]
    )
    assert np.all(np.diff(widths[np.argsort(drawn)]) >= 0)
    signs = [line.get_color() == POSITIVE for line in lines]
    assert signs.count(True) == int(np.sum(changes > 0))
    assert any(line.get_color() == NEGATIVE for line in lines)


def test_small_networks_are_labelled_with_their_numbers():
    net, tr = classic()
    labels = texts(network(net, tr, show="value"))
    assert "0.4" in labels and "0.55" in labels  # w5, w8
    assert "0.751" in labels  # o1 = 0.7514 to three digits
    assert {"x1", "h2", "o1"} <= set(labels)
    bare = texts(network(net, tr, labels=False))
    assert "0.4" not in bare and "o1" in bare


def test_big_layers_are_summarised():
    net = dp.Network(
        [784, 64, 10], activation="relu", output_activation="softmax", loss="cross_entropy", seed=0
    )
    fig = network(net, max_units=8)
    assert len(circles(fig)) == 8 + 8 + 8
    labels = texts(fig)
    assert "⋮\n+776 more" in labels and "⋮\n+56 more" in labels and "⋮\n+2 more" in labels
    assert len(edges(fig)) == 8 * 8 * 2  # only between drawn units, and no bias edges
    assert not any(re.fullmatch(r"−?\d\.\d+", t) for t in labels)  # too big for numbers


def test_value_colours_come_from_an_input_when_there_is_no_trace():
    net, _ = classic()
    x = np.array([0.9, -3.0])
    fig = network(net, x=x)
    fp = net.forward(x[None])
    values = np.concatenate([z[0] for z in fp.z])  # x1 x2 h1 h2 o1 o2
    vmax = np.abs(values).max()
    cmap = colormaps[CMAP]
    for patch, v in zip(circles(fig), values):
        np.testing.assert_allclose(patch.get_facecolor(), cmap((v + vmax) / (2 * vmax)), atol=1e-6)
    assert len(fig.axes) == 2  # the colour bar
    plain = network(net)
    assert len(plain.axes) == 1
    assert len({p.get_facecolor() for p in circles(plain)}) == 1


def test_bad_arguments_are_refused():
    net, tr = classic()
    with pytest.raises(ValueError, match="show='delta'"):
        network(net, show="delta")
    with pytest.raises(ValueError, match="show="):
        network(net, tr, show="weights")
    other = dp.Network([2, 3, 2], seed=0)
    with pytest.raises(ValueError, match=r"\[2, 2, 2\] network"):
        network(other, tr)
    with pytest.raises(ValueError, match="max_units=1"):
        network(net, max_units=1)


def test_jupyter_shows_a_summary_with_the_diagram():
    net, _ = classic()
    html = net._repr_html_()
    assert "<table>" in html and "2-2-2" in html and "mse" in html
    data = re.search(r'src="data:image/png;base64,([^"]+)"', html).group(1)
    assert base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_readme_picture_is_a_small_png():
    root = Path(__file__).resolve().parents[1]
    picture = root / "docs" / "images" / "network.png"
    assert "](docs/images/network.png)" in (root / "README.md").read_text(encoding="utf-8")
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert picture.stat().st_size < 100_000
    with Image.open(picture) as im:
        assert im.width > im.height > 200
