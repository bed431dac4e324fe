"""scikit-learn's Adam: the estimators' ``solver="adam"``.

scikit-learn's ``AdamOptimizer`` (sklearn/neural_network/_stochastic_optimizers.py) and
torch's Adam (deltaprop's :class:`deltaprop.optim.optimizers.Adam`) place ε differently::

    scikit-learn:  θ ← θ − γ √(1 − β2^t) / (1 − β1^t) · m_t / (√v_t + ε)
    torch:         θ ← θ − γ / (1 − β1^t) · m_t / (√v_t / √(1 − β2^t) + ε)

the same step with an ε larger by 1/√(1 − β2^t) in torch's. Early in training (t small, v
of order ε²) that difference is visible: 0.023 in the weights after 25 epochs on iris. So the
estimators (``deltaprop.sklearn``, which exports it) step with scikit-learn's rule, written
here operation by operation in scikit-learn's order so that the weights agree with
scikit-learn's to rounding; ``dp.Adam`` keeps torch's rule.

It is its own class, not a subclass of Adam (the batch engine fuses exact classes only):
the batch engine's fused kernel ``updates.sklearn_adam_step`` computes the same operations
in the same order, bit for bit.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from deltaprop.optim.base import Optimizer

__all__ = ["SklearnAdam"]


class SklearnAdam(Optimizer):
    """Adam with scikit-learn's ε placement (``sklearn.neural_network``'s AdamOptimizer).

    Algorithm (g_t = dLoss/dθ at θ_{t-1})::

        input: γ (lr), β1, β2 (betas), ε (eps)
        initialize: m_0 ← 0, v_0 ← 0
        for t = 1 to ... do
            m_t ← β1 m_{t-1} + (1 - β1) g_t
            v_t ← β2 v_{t-1} + (1 - β2) g_t²
            γ_t ← γ √(1 - β2^t) / (1 - β1^t)
            θ_t ← θ_{t-1} - γ_t m_t / (√v_t + ε)

    Args:
        lr: learning rate γ >= 0 (scikit-learn's ``learning_rate_init``).
        betas: (β1, β2), each in [0, 1) (``beta_1``, ``beta_2``).
        eps: ε >= 0, added to √v_t (``epsilon``).
    """

    name = "SklearnAdam"

    def __init__(
        self, lr: float = 1e-3, betas: Sequence[float] = (0.9, 0.999), eps: float = 1e-8
    ) -> None:
        self._configure(locals())

    def buffer_names(self) -> tuple[str, ...]:
        return ("exp_avg", "exp_avg_sq")

    def step_constants(self) -> tuple[float, ...]:
        """β1, 1 - β1, β2, 1 - β2, γ_t and ε for step t = ``steps``."""
        (beta1, beta2), t = self.betas, self.steps
        step_size = self.lr * np.sqrt(1.0 - beta2**t) / (1.0 - beta1**t)
        return (beta1, 1.0 - beta1, beta2, 1.0 - beta2, float(step_size), self.eps)

    def _update(self, p: np.ndarray, g: np.ndarray, st: dict[str, np.ndarray]) -> None:
        beta1, one_minus_beta1, beta2, one_minus_beta2, step_size, eps = self._constants
        tmp, den, m, v = st["_tmp"], st["_aux"], st["exp_avg"], st["exp_avg_sq"]
        # m ← β1 m + (1 − β1) g and v ← β2 v + (1 − β2) g², in scikit-learn's order.
        m *= beta1
        m += np.multiply(g, one_minus_beta1, out=tmp)
        v *= beta2
        np.square(g, out=tmp)
        tmp *= one_minus_beta2
        v += tmp
        # θ ← θ + (−γ_t m) / (√v + ε)
        np.sqrt(v, out=den)
        den += eps
        np.multiply(m, -step_size, out=tmp)
        tmp /= den
        p += tmp
