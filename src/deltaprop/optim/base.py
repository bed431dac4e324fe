"""The optimizer base class: hyperparameter checks, lazy per-parameter state, its public view
for engines and explanations, and (de)serialisation. The update rules are in
:mod:`deltaprop.optim.optimizers`, one class each.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from deltaprop.core.validation import check_real, plain_scalar

_INF = math.inf
_NONNEG = (0.0, _INF, False)
# Every hyperparameter name means the same thing in every optimizer, so one table of
# rules serves all: (low, high, high_open) for numbers, bool for flags.
_RULES: dict[str, Any] = {
    "lr": _NONNEG,
    "momentum": _NONNEG,
    "dampening": (-_INF, _INF, False),  # torch accepts any value
    "weight_decay": _NONNEG,
    "nesterov": bool,
    "alpha": (0.0, 1.0, False),  # torch checks only >= 0
    "eps": _NONNEG,
    "centered": bool,
    "betas": "betas",
    "amsgrad": bool,
    "decay_biases": bool,
    "lr_decay": _NONNEG,
    "initial_accumulator_value": _NONNEG,
}


def _validate(owner: str, name: str, value: Any, rule: Any) -> Any:
    if rule is bool:
        if not isinstance(value, (bool, np.bool_)):
            raise ValueError(f"{owner}: {name} must be True or False. Received: {name}={value!r}")
        return bool(value)
    if rule == "betas":
        value = value.tolist() if isinstance(value, np.ndarray) else value
        if isinstance(value, str) or not isinstance(value, Sequence) or len(value) != 2:
            raise ValueError(f"{owner}: betas must be a pair (beta1, beta2). Received: {value!r}")
        return tuple(
            check_real(owner, f"betas[{i}]", b, 0.0, 1.0, True) for i, b in enumerate(value)
        )
    return check_real(owner, name, value, *rule)


def lerp_(a: np.ndarray, b: np.ndarray, w: float, tmp: np.ndarray) -> None:
    """a <- a + w (b - a) in place, with ATen's two-branch formula so rounding matches."""
    np.subtract(b, a, out=tmp)
    if abs(w) < 0.5:
        tmp *= w
        a += tmp
    else:
        tmp *= 1.0 - w
        np.subtract(b, tmp, out=a)


class Optimizer:
    """Base class: hyperparameter validation, lazy per-parameter state, (de)serialisation.

    Subclasses set ``name``, pass their constructor's ``locals()`` to ``_configure`` and
    implement ``_update``; ``buffer_names`` names the persistent per-parameter arrays (torch's
    names), ``_SCRATCH`` the preallocated work arrays. ``steps`` is t in the update rules:
    the number of steps since construction or the last ``reset``.

    Public state, for engines that update the same buffers in fused kernels and for
    explanations that show them: :attr:`state` (the live per-parameter buffers, or None before
    the first step), :meth:`ensure_state` (create them exactly as the first ``step`` would),
    :meth:`state_problem` (why they cannot serve given parameters), :attr:`decoupled` (whether
    weight decay bypasses the gradient), and ``state_dict`` / ``load_state_dict``.
    """

    name: ClassVar[str] = "Optimizer"
    _HPARAMS: ClassVar[tuple[str, ...]] = ()  # the constructor's arguments, in order
    _SCRATCH: ClassVar[tuple[str, ...]] = ("_tmp", "_aux")
    decoupled: ClassVar[bool] = False  # weight decay applied to θ directly, not added to g
    weight_decay: float = 0.0
    # Hyperparameters added after files were written without them: left out of config()
    # at their default, which a state without them loads with.
    _DEFAULTED: ClassVar[dict[str, Any]] = {}
    _decaying = True  # whether weight decay applies to the parameter being updated

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._HPARAMS = tuple(inspect.signature(cls.__init__).parameters)[1:]

    def _configure(self, args: Mapping[str, Any]) -> None:
        """Validate and store the constructor's arguments (subclasses pass ``locals()``)."""
        for key in self._HPARAMS:
            value, rule = args[key], _RULES.get(key)
            # Arguments outside the table belong to a user's subclass, which checks them.
            setattr(self, key, value if rule is None else _validate(self.name, key, value, rule))
        self.reset()

    @property
    def lr(self) -> float:
        return self._lr

    @lr.setter
    def lr(self, value: float) -> None:
        # Kept a Python float: a NumPy float64 scalar would make float32 updates compute
        # in float64 under NEP 50.
        self._lr = check_real(self.name, "lr", value, *_NONNEG)

    def reset(self) -> None:
        """Forget all state (moment buffers, step count); hyperparameters are kept."""
        self.steps = 0
        self._constants: tuple[float, ...] = ()
        self._state: list[dict[str, np.ndarray]] | None = None
        self._layout: list[tuple[tuple[int, ...], np.dtype]] = []

    def buffer_names(self) -> tuple[str, ...]:
        """The persistent per-parameter buffers these settings use, by torch's names."""
        return ()

    @property
    def state(self) -> list[dict[str, np.ndarray]] | None:
        """Per parameter, the live buffers (by ``buffer_names``) and scratch arrays (names
        starting with ``_``) that ``step`` updates in place; None before the first step."""
        return self._state

    def ensure_state(self, params: Sequence[np.ndarray]) -> list[dict[str, np.ndarray]]:
        """The state for ``params``, created exactly as the first ``step`` creates it (zeros,
        or Adagrad's ``initial_accumulator_value``) if there is none yet.

        Raises ValueError, as ``step`` would, if existing state was made for other parameters.
        """
        problem = self.state_problem(params)
        if problem is not None:
            raise ValueError(f"{self.name}: {problem}; call reset() to start with new parameters")
        if self._state is None:
            self._set_state([self._init_state(p) for p in params])
        return self._state  # type: ignore[return-value]

    def fresh_buffers(self, p: np.ndarray) -> dict[str, np.ndarray]:
        """The persistent buffers a first step would start ``p``'s state with (new arrays)."""
        return {k: v for k, v in self._init_state(p).items() if k in self.buffer_names()}

    def state_problem(self, params: Sequence[np.ndarray]) -> str | None:
        """Why the existing state cannot serve ``params`` (other count, shape or dtype), or
        None when it can or there is no state yet."""
        if self._state is None:
            return None
        if len(params) != len(self._layout):
            return (
                f"got {len(params)} parameter arrays but the optimizer state was created "
                f"for {len(self._layout)}"
            )
        for i, (p, (shape, dtype)) in enumerate(zip(params, self._layout)):
            if p.shape != shape or p.dtype != dtype:
                return (
                    f"params[{i}] has shape {p.shape} and dtype {p.dtype} but the optimizer "
                    f"state was created for shape {shape} and dtype {dtype}"
                )
        return None

    def _init_state(self, p: np.ndarray) -> dict[str, np.ndarray]:
        st = {k: np.zeros_like(p) for k in self.buffer_names()}
        coupled_wd = self.weight_decay != 0 and not self.decoupled
        for k in self._SCRATCH + (("_grad",) if coupled_wd else ()):
            st[k] = np.empty_like(p)
        return st

    def _decays(self, index: int) -> bool:
        """Whether weight decay applies to params[index] (every parameter, unless a
        subclass masks some)."""
        return True

    def _grad(self, p: np.ndarray, g: np.ndarray, st: dict[str, np.ndarray]) -> np.ndarray:
        """g + λ p (L2 weight decay) in scratch memory; g itself when λ = 0."""
        if self.weight_decay == 0 or not self._decaying:
            return g
        d = np.multiply(p, self.weight_decay, out=st["_grad"])
        d += g
        return d

    def step_constants(self) -> tuple[float, ...]:
        """The Python floats the update of step t = ``steps`` uses, which ``step`` computes
        once per step (as ``_constants``) for every parameter's ``_update``, and the fused
        kernels read too; () for an optimizer that computes none ahead."""
        return ()

    def _update(self, p: np.ndarray, g: np.ndarray, st: dict[str, np.ndarray]) -> None:
        raise NotImplementedError

    def step(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray]) -> None:
        """Update each params[i] IN PLACE using grads[i] = dLoss/dparams[i].

        ``grads`` are only read. Raises ValueError if the parameters differ in number,
        shape or dtype from those the state was created for (``reset`` first).
        """
        owner = f"{self.name}.step"
        if len(params) != len(grads):
            raise ValueError(f"{owner}: got {len(params)} params but {len(grads)} grads")
        if self._state is None:
            for i, p in enumerate(params):
                if not isinstance(p, np.ndarray) or not np.issubdtype(p.dtype, np.floating):
                    raise TypeError(
                        f"{owner}: params[{i}] must be a floating-point numpy array (it is "
                        f"updated in place). Received: {type(p).__name__} {getattr(p, 'dtype', '')}"
                    )
            self._set_state([self._init_state(p) for p in params])
        elif len(params) != len(self._layout):
            raise ValueError(
                f"{owner}: got {len(params)} parameter arrays but the optimizer state was "
                f"created for {len(self._layout)}; call reset() to start with new parameters"
            )
        for i, (p, g, (shape, dtype)) in enumerate(zip(params, grads, self._layout, strict=True)):
            if p.shape != shape or p.dtype != dtype:
                raise ValueError(
                    f"{owner}: params[{i}] has shape {p.shape} and dtype {p.dtype} but the "
                    f"optimizer state was created for shape {shape} and dtype {dtype}; "
                    "call reset() to start with new parameters"
                )
            if np.shape(g) != shape:
                raise ValueError(
                    f"{owner}: grads[{i}] has shape {np.shape(g)} but params[{i}] has {shape}"
                )
        self.steps += 1
        self._constants = self.step_constants()
        for i, (p, g, st) in enumerate(zip(params, grads, self._state, strict=True)):
            self._decaying = self._decays(i)
            self._update(p, g, st)
        self._decaying = True

    def _set_state(self, state: list[dict[str, np.ndarray]]) -> None:
        self._state = state
        self._layout = [(st["_tmp"].shape, st["_tmp"].dtype) for st in state]

    def config(self) -> dict[str, Any]:
        """JSON-serialisable hyperparameters: ``{"name": ..., "lr": ..., ...}``."""
        cfg: dict[str, Any] = {"name": self.name}
        for key in self._HPARAMS:
            value = getattr(self, key)
            if key in self._DEFAULTED and value == self._DEFAULTED[key]:
                continue
            cfg[key] = list(value) if isinstance(value, tuple) else value
        return cfg

    def state_dict(self) -> dict[str, Any]:
        """``config()`` plus ``step`` (count) and, per buffer name, a list of array copies."""
        out = self.config()
        out["step"] = self.steps
        for key in self.buffer_names():
            out[key] = [] if self._state is None else [st[key].copy() for st in self._state]
        return out

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore hyperparameters, step count and buffers saved by ``state_dict``."""
        owner = f"{self.name}.load_state_dict"
        state = {**self._DEFAULTED, **{k: plain_scalar(v) for k, v in state.items()}}
        if state.get("name") != self.name:
            raise ValueError(f"{owner}: state is for optimizer {state.get('name')!r}")
        missing = [k for k in [*self._HPARAMS, "step"] if k not in state]
        if missing:
            raise ValueError(f"{owner}: state lacks {missing}")
        fresh = type(self)(**{k: state[k] for k in self._HPARAMS})  # validates
        fresh.steps = int(state["step"])
        bufs = {k: [np.asarray(a) for a in state.get(k, [])] for k in fresh.buffer_names()}
        counts = {len(v) for v in bufs.values()}
        if len(counts) > 1 or (fresh.steps > 0 and 0 in counts):
            raise ValueError(
                f"{owner}: after {fresh.steps} steps expected one of each of {list(bufs)} "
                f"per parameter; got {[len(v) for v in bufs.values()]} arrays"
            )
        if counts - {0}:
            new_state = []
            for i, first in enumerate(next(iter(bufs.values()))):
                st = fresh._init_state(np.empty(first.shape, first.dtype))
                for k, arrays in bufs.items():
                    if arrays[i].shape != first.shape or arrays[i].dtype != first.dtype:
                        raise ValueError(
                            f"{owner}: {k}[{i}] has shape {arrays[i].shape} and dtype "
                            f"{arrays[i].dtype}; expected {first.shape} and {first.dtype}"
                        )
                    st[k][...] = arrays[i]
                new_state.append(st)
            fresh._set_state(new_state)
        vars(self).update(vars(fresh))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in list(self.config().items())[1:])
        return f"{self.name}({args})"
