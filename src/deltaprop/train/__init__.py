"""Training: the fit loop, its callbacks and history, checkpointing, and the engines that run
an epoch (:mod:`deltaprop.train.engines`).

Imports :mod:`deltaprop.core`, :mod:`deltaprop.optim` and :mod:`deltaprop.io`.
"""
