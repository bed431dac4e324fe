"""File formats: model files and checkpoint files, both safetensors with a JSON document.

Reading never executes anything from a file; writing is atomic. Imports :mod:`deltaprop.core`
and :mod:`deltaprop.optim` (a checkpoint holds an optimizer's state); safetensors loads with
the first file written.
"""
