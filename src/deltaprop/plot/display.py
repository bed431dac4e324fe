"""Figures that show themselves in Jupyter, with no ``%matplotlib inline`` and no pyplot.

deltaprop draws on :class:`matplotlib.figure.Figure` objects made directly, never through
pyplot, so that no global state or screen is involved. IPython shows such a figure as a
picture only once pyplot's inline backend has registered its formatter, which is why a
notebook printed ``<Figure size 655x382 with 2 Axes>``. A :class:`NotebookFigure` carries its
own PNG representation, which IPython asks for when it has no formatter of its own (with
``%matplotlib inline`` active, the inline formatter is used instead: one picture either way).
"""

from __future__ import annotations

import io

from matplotlib.figure import Figure

# Resolution of the notebook picture: matplotlib's inline default.
NOTEBOOK_DPI = 72


class NotebookFigure(Figure):
    """A matplotlib Figure with a PNG representation for IPython and Jupyter."""

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", dpi=NOTEBOOK_DPI, bbox_inches="tight")
        return buffer.getvalue()
