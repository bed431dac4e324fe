"""Every optimizer's update rule, recomputed and written out with the numbers in.

One class per optimizer kind, each with its summary, its lines for one weight and its
recomputation side by side (:mod:`.sgd`: the seed's plain SGD and SGD with momentum, Nesterov
or weight decay; :mod:`.adam`: Adam and AdamW; :mod:`.rmsprop`; :mod:`.adagrad`), found once, by
the class of the optimizer a trace's ``config()`` describes (:func:`rule_for`). The
recomputation is written from the torch.optim algorithms, independently of
:mod:`deltaprop.optim.optimizers`, as a deliberate check of the formula an explanation prints
against the step the library took.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from deltaprop.explain.rules.adagrad import AdagradRule
from deltaprop.explain.rules.adam import AdamRule
from deltaprop.explain.rules.base import StepOnlyRule, UpdateRule, WeightStep
from deltaprop.explain.rules.rmsprop import RMSpropRule
from deltaprop.explain.rules.sgd import SeedRule, SGDRule, sgd_rule
from deltaprop.optim.optimizers import SGD, Adagrad, Adam, Optimizer, RMSprop, get_optimizer

Array = np.ndarray

__all__ = [
    "RULES",
    "AdagradRule",
    "AdamRule",
    "RMSpropRule",
    "SGDRule",
    "SeedRule",
    "StepOnlyRule",
    "UpdateRule",
    "WeightStep",
    "optimizer_rule",
    "rule_for",
]

# The written rule of each optimizer class; a subclass (AdamW) takes its base's (Adam's), which
# reads the optimizer's own flags (``decoupled``) for what differs.
RULES: dict[type[Optimizer], Callable[[Any], UpdateRule]] = {
    SGD: sgd_rule,
    Adam: AdamRule,
    RMSprop: RMSpropRule,
    Adagrad: AdagradRule,
}


def rule_for(cfg: Mapping[str, Any], penalized: bool = False) -> UpdateRule:
    """The update rule of the optimizer that ``cfg`` (its ``config()``, as a trace records it,
    "step" allowed) describes; :class:`StepOnlyRule` for one the library cannot rebuild.
    ``penalized``: the network has a weight penalty, whose gradient the seed's one-line rule
    has no room for (plain SGD is then written as g, then w ← w − γ g)."""
    settings = {k: v for k, v in cfg.items() if k != "step"}
    try:
        optimizer = get_optimizer(settings)
    except (ValueError, TypeError):
        return StepOnlyRule(settings)
    for kind in type(optimizer).__mro__:
        if kind in RULES:
            rule = RULES[kind](optimizer)
            if penalized and isinstance(rule, SeedRule):
                rule = SGDRule(optimizer)
            rule.penalized = penalized
            return rule
    return StepOnlyRule(settings)  # pragma: no cover - every library optimizer has a rule


def optimizer_rule(
    cfg: Mapping[str, Any], t: int, w: Array, g: Array, before: Mapping[str, Array]
) -> dict[str, Array]:
    """The update of the optimizer ``cfg`` describes at step t from the state ``before``, every
    intermediate (see :meth:`UpdateRule.recompute`), in float64.

    Raises KeyError for an optimizer it has no rule for.
    """
    values = rule_for(cfg).recompute(t, w, g, before)
    if values is None:
        raise KeyError(cfg.get("name"))
    return values
