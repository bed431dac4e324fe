"""The suite trains dozens of network configurations in one process: the fast engines'
general kernels, compiled once each, serve them all (see deltaprop.train.engines.compiling);
tests/test_kernels.py checks the per-configuration kernels against them."""

import os

os.environ.setdefault("DELTAPROP_SPECIALISATIONS", "0")
