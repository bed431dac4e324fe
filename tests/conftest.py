"""The suite trains dozens of network configurations in one process: the fast engines'
general kernels, compiled once each, serve them all (see deltaprop.train.engines.compiling);
tests/test_kernels.py checks the per-configuration kernels against them."""

import os

os.environ.setdefault("DELTAPROP_SPECIALISATIONS", "0")

# The record of what this machine's Numba cache holds (deltaprop.train.engines.compile_record)
# is off: which engine a test's fit runs must not depend on earlier runs of the suite.
# tests/test_compile_record.py points it at a folder of its own.
os.environ.setdefault("DELTAPROP_COMPILE_RECORD", "")
