"""See backpropagation happen: one training step with every number written into its formula.

>>> import deltaprop as dp
>>> from deltaprop.explain import classic_example
>>> net, x, t, lr = classic_example()
>>> trace = dp.explain(net, x, t, dp.SGD(lr=lr))
>>> round(float(trace.layers[-1].delta[0]), 9)   # δ_o1 = o(1 − o)(t − o)
-0.138498562
>>> print(trace.render("text"))                 # or "markdown", "latex", "json"  # doctest: +SKIP

:func:`explain` runs the step (exactly a step of ``fit(batch_size=1)``) and returns a
:class:`Trace`; :meth:`Trace.render` writes it for the terminal, Markdown or LaTeX, and
:meth:`Trace.to_json` / :meth:`Trace.from_json` convert it losslessly.

Sign convention: δ_j = −∂E/∂a_j (the seed's), so for plain SGD w_ji ← w_ji + η δ_j z_i.

JSON schema (``schema_version`` 1)
----------------------------------
Arrays are nested lists of numbers; j indexes a layer's units, i the previous layer's.
Keys are stable within a schema version; a change of meaning increments the version.

``schema_version`` (int, 1); ``kind`` ("deltaprop.trace"); ``sign_convention``
("delta_j = -dE/da_j"); ``network``: {``sizes`` [n_in, ..., n_out], ``activations`` (one per
layer of units), ``loss``, ``loss_formula``, ``dtype``}; ``optimizer``: the optimizer's
``config()`` ({``name``, hyperparameters}) plus ``step``, the step number t of this update;
``input`` [x_i]; ``target`` [t_k] (as the loss saw it: class labels become one-hot rows);
``input_names``, ``output_names`` (list of str or null); ``error_before``, ``error_after`` (E on
the example); ``applied`` (bool: whether the caller's network was updated); ``history``:
[{``step``, ``error``, ``output`` [o_k]}] for step 0 (before) to the number of steps taken;
``layers``: one object per layer of units (the inputs are not a layer here), each with

- ``index`` (1 = first layer after the inputs), ``role`` ("hidden" or "output"),
  ``activation``;
- ``delta_rule``: which formula gave δ: "sigmoid_mse" (the seed's o(1 − o)(t − o)),
  "mse" ((t − o) h'(a)), "softmax_mse", "softmax_cross_entropy",
  "sigmoid_binary_cross_entropy" and "exp_poisson" (all t − o), "general", or "hidden"
  (h'(a_j) Σ_k δ_k w_kj);
  ``delta_formula``: that formula as text;
- per unit j: ``a`` (net input), ``z`` (output), ``h_prime`` (h'(a_j); null for softmax),
  ``backprop`` (Σ_k δ_k w_kj; null for the output layer), ``delta`` (δ_j);
- per weight [j][i] and bias [j]: ``W``, ``b`` (before), ``W_grad``, ``b_grad`` (∂E/∂w =
  −δ_j z_i, and −δ_j for a bias), ``W_new``, ``b_new`` (after), ``W_change``, ``b_change``
  (new − old; derived, ignored when reading);
- ``optimizer_state``: {"W" | "b": {buffer name: {"before": array, "after": array}}} with
  the optimizer's buffers (torch's names: ``momentum_buffer``, ``exp_avg``, ``exp_avg_sq``,
  ``max_exp_avg_sq``, ``square_avg``, ``grad_avg``, ``sum``); empty for plain SGD;
- ``mask`` (only for a hidden layer with dropout): the step's mask m_j, 0 or 1 per unit; the
  layer's ``z`` is h(a) before it, and the next layer receives z_j m_j / (1 − p).

Training controls, present only when the network has them: ``network`` gains ``dropout``
(one rate per hidden layer) and ``l2``, ``l1`` (one coefficient per layer), ``penalty_scale``;
the trace gains ``penalty``, P(W) before the step, which ``error_before`` includes and whose
gradient ``W_grad`` includes.
"""

from __future__ import annotations

from deltaprop.explain.example import (
    CLASSIC,
    Example,
    classic_example,
    example_from_dict,
    load_example,
)
from deltaprop.explain.page import Options
from deltaprop.explain.record import SCHEMA_VERSION, LayerTrace, Trace
from deltaprop.explain.render import FORMATS, render
from deltaprop.explain.trace import explain

__all__ = [
    "CLASSIC",
    "FORMATS",
    "SCHEMA_VERSION",
    "Example",
    "LayerTrace",
    "Options",
    "Trace",
    "classic_example",
    "example_from_dict",
    "explain",
    "load_example",
    "render",
]
