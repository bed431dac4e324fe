"""The one place the version is written; pyproject.toml reads it from here.

A literal rather than importlib.metadata, which alone costs a third of ``import numpy``.
"""

__version__ = "0.1.0"
