"""Gradient-descent optimizers (torch.optim's rules, public state) and learning-rate schedules.

Imports :mod:`deltaprop.core` at most; knows nothing of networks' training loops.
"""
