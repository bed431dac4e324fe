"""Training: the fit loop, its callbacks and history, checkpointing, and the engines that run
an epoch (:mod:`deltaprop.train.engines`).

    loop.fit          plan.plan_fit (every argument checked) -> engines.choose -> state.FitState
                      (fresh, or resumed by checkpointing.Checkpointer) -> epochs -> History
    engines/          base (the interface, Workload, batch sources, the divergence guard),
                      reference, batch, online (+ kernels, online_kernel: Numba), choose

Imports :mod:`deltaprop.core`, :mod:`deltaprop.optim` and :mod:`deltaprop.io`.
"""
