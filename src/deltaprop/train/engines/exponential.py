"""e^x for x ≤ 0 in arithmetic LLVM can vectorise: the sigmoid's exponential in the kernels.

Numba compiles ``math.exp`` to a call of the C library's exp, one element at a time: a loop
of sigmoids cannot be vectorised, and the calls were a third of the time of a minimal online
kernel for 64-32-10 sigmoid on digits. Numba's vectorised maths needs Intel's SVML and an llvmlite
built against it, which PyPI's llvmlite is not; NumPy's SIMD exp cannot be called from a
compiled loop. So the kernels take the exponential from here, written as plain arithmetic:

    e^x = 2^n · e^r,   n = round(x / ln 2),   r = x − n·ln 2 (in two parts, Cody and Waite),

e^r by its Taylor polynomial of degree 13 on |r| ≤ ln 2 / 2 (truncation error < 5e-18,
under a tenth of float64's rounding), 2^n built in the exponent bits. Measured against
the C library on 2.1 million arguments down to -800: at most 1 ulp apart, 6% of them at
all (and within 1 ulp of NumPy's exp), 5× as fast in a loop.

Only x ≤ 0 is needed (the sigmoid takes e^-|a|), so there is no overflow: below −746 the
result is 0 (as exp's), subnormal results are scaled in two steps, NaN stays NaN. float32
arguments are computed in float64 and rounded once, which is at least as accurate as
float32's expf.
"""

from __future__ import annotations

import numpy as np
from numba import types
from numba.extending import intrinsic, overload

from deltaprop.train.engines.compiling import OPTIONS

# Adding 1.5·2^52 rounds a float64 of magnitude < 2^51 to an integer, kept in the low bits.
_ROUNDER = 6755399441055744.0
_LOG2E = 1.4426950408889634
# ln 2 in two parts: n·_LN2_HIGH is exact for the n that occur here.
_LN2_HIGH = 6.93147180369123816490e-01
_LN2_LOW = 1.90821492927058770002e-10
# Below this, 2^n is subnormal: it is built as 2^(n + 600) · 2^-600.
_DEEP = -700.0


def _bitcast(source: types.Type, target: types.Type):
    """A compiled function reinterpreting a ``source`` value's bits as ``target`` (LLVM's
    bitcast; Numba has no scalar view)."""

    @intrinsic
    def cast(typingctx, x):
        if x != source:
            return None

        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], context.get_value_type(target))

        return target(source), codegen

    return cast


_bits_of = _bitcast(types.float64, types.int64)
_float_of = _bitcast(types.int64, types.float64)


def _exp_nonpositive64(x):
    y = x if not (x < -746.0) else -746.0  # e^-746 rounds to 0; NaN passes
    t = y * _LOG2E + _ROUNDER
    n = t - _ROUNDER
    r = (y - n * _LN2_HIGH) - n * _LN2_LOW
    p = 1.0 / 6227020800.0  # 1/13!, then Horner down to 1/0!
    p = p * r + 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    p = p * r + 1.0
    p = p * r + 1.0
    deep = y < _DEEP
    # The low bits of t are n (two's complement); shifted into the exponent field, the
    # rounder's own bits fall off the top.
    scale = _float_of((_bits_of(t) + (1023 + 600 if deep else 1023)) << 52)
    e = p * scale * (2.0**-600 if deep else 1.0)
    return e if y == y else y


def exp_nonpositive(x):
    """e^x for x ≤ 0 (or NaN), in x's precision; for compiled code (see the module docstring)."""
    return np.exp(x)  # what the compiled overload below computes, to within 1 ulp


def _exp_nonpositive32(x):
    return np.float32(exp_nonpositive(np.float64(x)))


# The implementations are compiled as the overload's, inside the kernel that calls them: a
# separately jitted function would add a dispatcher and its Python wrapper to a first fit's
# compilation (about 0.1 s of the 0.2 s the exponential took). contract: the polynomial's
# multiply-adds become fused (more accurate, and half the instructions); nothing is reordered.
@overload(exp_nonpositive, jit_options={**OPTIONS, "fastmath": {"contract"}})
def _exp_nonpositive_compiled(x):
    if x == types.float64:
        return _exp_nonpositive64
    if x == types.float32:
        return _exp_nonpositive32
    return None
