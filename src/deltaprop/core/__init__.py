"""The maths of a feed-forward network, and nothing else: activations with their derivatives,
losses each paired with its output delta (and accuracy), initialisers, input checks, the
network's forwarding and backpropagation, and the finite-difference check of its gradients.

Imports only NumPy and :mod:`deltaprop.errors`; every other layer builds on this one.
"""
