"""deltaprop.sklearn.load: an estimator back from the file ``est.save`` wrote (see ``_file``)."""

from __future__ import annotations

import os

from deltaprop.errors import ModelFileError
from deltaprop.model import load as load_network
from deltaprop.sklearn._base import BaseMLP
from deltaprop.sklearn._classifier import MLPClassifier
from deltaprop.sklearn._file import FORMAT, FORMAT_VERSION
from deltaprop.sklearn._regressor import MLPRegressor

ESTIMATORS: dict[str, type[BaseMLP]] = {
    "MLPClassifier": MLPClassifier,
    "MLPRegressor": MLPRegressor,
}


def load(path: str | os.PathLike) -> BaseMLP:
    """The fitted MLPClassifier or MLPRegressor saved at ``path`` by ``est.save(path)``: the
    same parameters, weights (bit for bit), classes and fitted attributes, so the same
    predictions. Raises ModelFileError for a file that is not such an estimator (a plain
    model file included: read that with ``deltaprop.load``) and OSError when it cannot be
    read."""
    net = load_network(path)
    entry = net.metadata.get("sklearn")
    if not isinstance(entry, dict) or entry.get("format") != FORMAT:
        raise ModelFileError(
            f"{path}: a deltaprop model file but not a scikit-learn estimator's (no 'sklearn' "
            "entry in its metadata); read it with deltaprop.load"
        )
    if not isinstance(entry.get("format_version"), int) or entry["format_version"] > FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: estimator format version {entry.get('format_version')!r} is newer than "
            f"this deltaprop reads (up to version {FORMAT_VERSION}); upgrade deltaprop"
        )
    try:
        return ESTIMATORS[entry["estimator"]].from_saved(net, entry)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: the stored estimator is not valid: {exc!r}") from None
