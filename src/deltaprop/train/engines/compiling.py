"""How the Numba kernels are compiled: cached on disk, and, where it pays, for one configuration.

This module imports Numba at its top; like kernels.py it is loaded only by
:mod:`.loading`, when a fast engine first needs it.

A kernel is written in general form: the configuration's codes (an activation, say) are its
leading arguments and it branches on them. Compiled that way it holds every branch; for the
kernels that fuse a loop per activation, so that LLVM vectorises each, that is seven loops
and about 1.3 s of compilation each on a first fit. :class:`Specialised` compiles instead, for
the configuration a process meets first, a closure holding the codes as constants (Numba
types them as literals) that runs only that configuration's loop: about 0.25 s. The closure
is cached on disk like any kernel, keyed by the constants' values, so the next process loads
it. Both forms run the same source for a configuration, so results do not depend on which
one ran (tests/test_kernels.py checks that they agree exactly).

Specialising does not pay beyond the first configuration a process trains (a search over
activations, the test suite): after :data:`SPECIALISATIONS` of one kernel the general form
is compiled once and serves every later configuration. The environment variable
DELTAPROP_SPECIALISATIONS sets that number (0: the general forms only, as the test suite
runs, which trains dozens of configurations in one process).

Measured (seconds, empty cache, numba:compile events): what Numba's compiler spends is in
the typing, lowering and LLVM optimisation of every branch a kernel holds and of every
separately compiled callee, 0.03-0.1 s for each small one even when it only returns a
constant. Literal arguments do not prune a jitted callee's branches (only constants of the
function itself and its IR-inlined callees do), so the relu kernel compiled all eight
activations (0.38 s, sigmoid's exponential included); :func:`by_code` picks the one rule at
typing instead. What did not pay: IR inlining everywhere (its copies of the IR dominated a
first compile; inlining sgd_coordinate at the online kernel's three calls of it took its
compile from 1.61 to 1.81 s, inlining the loss rows 0.74-1.14 s to 0.94-1.28 s for every
first fit), inlining the overloads (``inline="always"``: 3-4 times the compile time),
compiling the loops and output rows as overloads rather than IR-inlined helpers (each adds
a function's fixed cost), and lower LLVM optimisation levels (NUMBA_OPT 1 or 2 compile no
faster; 0 saves 0.5 s and trains four times slower).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import partial
from typing import Any

import numba
import numpy as np
from numba import types
from numba.extending import overload

# Per kernel and process; then the general form serves the rest. DELTAPROP_SPECIALISATIONS=0
# compiles the general forms at once: for a process about to train many configurations.
SPECIALISATIONS = int(os.environ.get("DELTAPROP_SPECIALISATIONS", "1"))


def _without_reference_counts() -> dict[str, bool]:
    """``{"_nrt": False}`` where this Numba has the option, else nothing.

    Numba counts references to every array a compiled function holds, with atomic
    instructions, so that arrays it allocates or returns are freed in time. Its pruning pass
    removes those counts in straight-line code but not across the branches and loops of a
    kernel with inlined helpers (numba#2350): in the online epoch about 25 array arguments
    and views were counted per example, up and down, a fifth of the epoch (perf: 12% of
    samples in NRT_incref/NRT_decref; the online kernel 1.29 -> 1.68 M examples/s without
    them). The kernels here never allocate or return an array (they write into the
    caller's, which the caller keeps alive for the call, and return scalars), so they need
    no counts at all; and
    compiled without its runtime, Numba refuses at typing both an allocation and returning
    any array but an argument, so that no kernel can come to need them unnoticed.
    The option has been in Numba since 0.19 but is not documented: where a Numba lacks
    it, the kernels compile with reference counts, as before.
    """
    try:
        from numba.core.cpu import CPUTargetOptions

        return {"_nrt": False} if hasattr(CPUTargetOptions, "_nrt") else {}
    except ImportError:
        return {}


# error_model="numpy": x / 0 gives inf or NaN as in NumPy (and the reference) instead of
# raising ZeroDivisionError, and without that check on every division loops vectorise.
# Numba's cache does not key its entries by these options; an edit of this file discards
# every cached kernel (compile_record.discard_stale_kernels), as an edit of kernels.py does.
OPTIONS = {"error_model": "numpy", **_without_reference_counts()}


# Numba compiles every function it types a call to on its own, with a wrapper that lets
# Python call it and one that lets C call it, though a helper here is only ever called (or
# IR-inlined) by the kernels, and nothing calls a kernel through C. Without the wrappers the
# online kernel's first compile took 1.38 s instead of 1.61 s, the mini-batch fit's 0.96 s
# instead of 1.06 s (compile_cost.py --runs 3); the kernels' code is the same.
_CALLEE_ONLY = {"no_cpython_wrapper": True, "no_cfunc_wrapper": True}


def jit(fastmath: bool | set[str] = False, inline: str = "never", callee: bool = False):
    """``numba.njit(cache=True)`` with :data:`OPTIONS`, or uncached when there is nowhere
    to write the cache. A ``callee`` (as any helper with ``inline="always"``) can be called
    only from compiled code."""
    options = {"fastmath": fastmath, "inline": inline, **OPTIONS, "no_cfunc_wrapper": True}
    if callee or inline == "always":
        options |= _CALLEE_ONLY

    def decorate(fn):
        try:
            return numba.njit(cache=True, **options)(fn)
        except RuntimeError:  # "cannot cache function ...: no locator available"
            return numba.njit(cache=False, **options)(fn)

    return decorate


def by_code(
    rules: dict[int, Callable], general: Callable, otherwise: Callable | None = None
) -> Callable:
    """Decorate a stub ``f(code, ...)`` so that, in a kernel, a call whose code is a constant
    compiles ``rules[code]`` (``otherwise`` for codes not there) and nothing else, and a call
    with a code known only at run time compiles ``general``, which branches on it. Every
    implementation takes the stub's arguments, the code first; a rule may be a jitted
    function (to be inlined into ``general``), whose Python function is then compiled.

    Where a plain jitted function branching on the code is called with a literal, Numba
    still compiles every branch (it prunes branches on a function's own constants only, not
    on literal arguments); choosing here, at typing, compiles the one rule (see the module
    docstring for what that saved)."""

    def decorate(stub: Callable) -> Callable:
        def typer(code: types.Type, *args: types.Type) -> Callable | None:
            if isinstance(code, types.IntegerLiteral):
                rule = rules.get(code.literal_value, otherwise)
                return getattr(rule, "py_func", rule)  # a jitted rule's Python source
            return general

        options = {**OPTIONS, **_CALLEE_ONLY}  # a rule is only called from kernels
        overload(stub, prefer_literal=True, strict=False, jit_options=options)(typer)
        return stub

    return decorate


def _plain(value: object) -> object:
    """A NumPy scalar as the Python value it holds: one key, and one cache entry, per value."""
    return value.item() if isinstance(value, np.generic) else value


class Specialised:
    """A general kernel whose first ``n_constants`` arguments are a configuration's codes,
    compiled per configuration (see the module docstring).

    ``bind(*constants)`` returns a plain Python closure over the constants that calls the
    general kernel with them first and passes the rest of its arguments on; it is compiled
    (with :func:`jit`) the first time that configuration runs.
    ``kernel.specialise(*constants)`` is the compiled callable for the rest of the arguments;
    ``kernel(*constants, *rest)`` looks it up and runs it.
    """

    def __init__(
        self,
        general: Any,
        bind: Callable[..., Callable],
        n_constants: int,
        limit: int | None = None,
    ) -> None:
        self.general, self.bind, self.n_constants = general, bind, n_constants
        self.limit = SPECIALISATIONS if limit is None else limit
        self._kernels: dict[tuple, Callable] = {}
        self.specialisations = 0
        self.__doc__ = general.__doc__

    def specialise(self, *constants: object) -> Callable:
        kernel = self._kernels.get(constants)  # Python values: found at once
        if kernel is not None:
            return kernel
        key = tuple(_plain(c) for c in constants)
        kernel = self._kernels.get(key)
        if kernel is None:
            if self.specialisations < self.limit:
                kernel = jit()(self.bind(*key))
                self.specialisations += 1
            else:
                kernel = partial(self.general, *key)
            self._kernels[key] = kernel
        return kernel

    def __call__(self, *args: object) -> Any:
        n = self.n_constants
        return self.specialise(*args[:n])(*args[n:])
