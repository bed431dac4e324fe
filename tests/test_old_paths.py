"""Code written against deltaprop 0.1's flat layout still imports (deltaprop/_moved.py)."""

import importlib
import subprocess
import sys

import pytest

import deltaprop as dp
from deltaprop._moved import MOVED


@pytest.mark.parametrize("old", sorted(MOVED))
def test_every_old_module_path_is_the_module_that_holds_its_code_now(old):
    module = importlib.import_module(f"deltaprop.{old}")
    assert module is importlib.import_module(MOVED[old])
    assert module.__name__ == MOVED[old]


def test_importing_every_old_path_leaves_the_public_names_as_they_were():
    for old in MOVED:
        importlib.import_module(f"deltaprop.{old}")
    assert dp.gradcheck is importlib.import_module("deltaprop.core.gradcheck").gradcheck
    assert callable(dp.gradcheck) and callable(dp.fit) and callable(dp.explain)
    code = "; ".join(
        [f"import deltaprop.{old}" for old in sorted(MOVED)]
        + ["import deltaprop as dp", "print(type(dp.gradcheck).__name__)"]
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "function"


def test_names_import_from_the_old_paths_as_readme_0_1_showed_them():
    from deltaprop.datasets import Scaler, one_hot, train_test_split
    from deltaprop.optimizers import SGD
    from deltaprop.persistence import read_info
    from deltaprop.training import TrainingDivergedError, fit

    assert SGD is dp.SGD and fit is dp.fit and TrainingDivergedError is dp.TrainingDivergedError
    assert Scaler.__module__ == "deltaprop.data.preprocessing"
    assert callable(one_hot) and callable(train_test_split) and callable(read_info)
    assert dp.datasets is importlib.import_module("deltaprop.data.datasets")


def test_a_name_that_never_existed_is_still_an_error():
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("deltaprop.no_such_module")
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        dp.no_such_name  # noqa: B018


def test_an_old_path_works_in_a_fresh_process_as_the_first_import():
    code = "import deltaprop.datasets as d; print(d.__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "deltaprop.data.datasets"
