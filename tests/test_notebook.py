"""deltaprop.plot figures show as pictures in Jupyter with no `%matplotlib inline`.

A small notebook is executed by nbclient on an IPython kernel that runs this test run's own
Python (a kernel spec written to a temporary JUPYTER_PATH), so it imports the deltaprop under
test, not whatever a machine-wide "python3" kernel would find.
"""

import base64
import json
import sys

import nbformat
import pytest
from nbclient import NotebookClient

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

SETUP = """\
import sys
import numpy as np
import deltaprop as dp
X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
y = np.array([0, 1, 1, 0])
net = dp.Network([2, 4, 2], activation="tanh", output_activation="softmax",
                 loss="cross_entropy", seed=0)
history = net.fit(X, y, epochs=5, batch_size=4, verbose=False)
"""


@pytest.fixture
def kernel(tmp_path, monkeypatch):
    spec = tmp_path / "jupyter" / "kernels" / "deltaprop-test"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "deltaprop tests", "language": "python"})
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    return "deltaprop-test"


def execute(kernel: str, *cells: str) -> list:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    NotebookClient(nb, kernel_name=kernel, timeout=120).execute()
    return [cell.outputs for cell in nb.cells]


def pictures(outputs: list) -> list[bytes]:
    return [
        base64.b64decode(out["data"]["image/png"])
        for out in outputs
        if out["output_type"] in ("execute_result", "display_data") and "image/png" in out["data"]
    ]


def test_figures_display_as_png_without_matplotlib_inline(kernel):
    outputs = execute(
        kernel,
        SETUP,
        "dp.plot.training_curves(history)",
        "dp.plot.network(net)",
        "dp.plot.decision_boundary(net, X, y)",
        "print('matplotlib.pyplot' in sys.modules)",
    )
    for cell in outputs[1:4]:
        (png,) = pictures(cell)
        assert png.startswith(PNG_MAGIC) and len(png) > 2000
    # The pictures came from the figures themselves: pyplot (and its inline hook) never ran.
    assert outputs[4][0]["text"].strip() == "False"


def test_with_matplotlib_inline_a_figure_still_shows_once(kernel):
    outputs = execute(kernel, SETUP + "%matplotlib inline\n", "dp.plot.training_curves(history)")
    assert len(pictures(outputs[1])) == 1
