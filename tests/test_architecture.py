"""The structure rules of docs/architecture.md that import-linter does not check, read from the
source alone (nothing is imported): no module uses another's private names or the private
members of objects defined elsewhere; imports inside functions only for heavy third-party
dependencies; functions and modules within their sizes.

(The layers and the absence of import circles are import-linter's contracts in pyproject.toml,
run by the README's test command.)
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "deltaprop"
# Third-party packages heavy enough to import only when used (see docs/architecture.md).
HEAVY = {
    "numba",
    "matplotlib",
    "sklearn",
    "scipy",
    "safetensors",
    "tqdm",
    "onnx",
    "torch",
    "starlette",
    "uvicorn",  # the playground's web server
}
MAX_FUNCTION_LINES = 100
MAX_MODULE_LINES = 500
LENGTH_REASON = "Length:"  # a module docstring line starting so explains a longer module


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
TREES = {name: ast.parse(path.read_text(encoding="utf-8")) for name, path in MODULES.items()}


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _absolute(module: str, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    if MODULES[module].name != "__init__.py":
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _type_checking_nodes(tree: ast.Module) -> set[int]:
    hidden: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            hidden |= {id(sub) for stmt in node.body for sub in ast.walk(stmt)}
    return hidden


def _imports(module: str) -> list[tuple[ast.stmt, str, list[str], bool]]:
    """(node, imported module, names, inside a function) for every run-time import."""
    tree, hidden, found = TREES[module], _type_checking_nodes(TREES[module]), []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if id(child) not in hidden and isinstance(child, ast.ImportFrom):
                names = [a.name for a in child.names]
                found.append((child, _absolute(module, child), names, in_function))
            elif id(child) not in hidden and isinstance(child, ast.Import):
                for alias in child.names:
                    found.append((child, alias.name, [], in_function))
            visit(child, nested)

    visit(tree, False)
    return found


def _owner(imported: str) -> str | None:
    """The package module an import resolves to, or None outside the package."""
    while imported and imported not in MODULES:
        imported = imported.rpartition(".")[0]
    return imported or None


def test_no_module_takes_another_modules_private_names():
    taken = []
    for module in MODULES:
        aliases: dict[str, str] = {}
        for node, imported, names, _ in _imports(module):
            owner = _owner(imported)
            if owner is None:
                continue
            for name in names:
                submodule = f"{imported}.{name}"
                if submodule in MODULES:
                    aliases[name] = submodule
                elif _is_private(name) and owner != module:
                    taken.append(f"{module}:{node.lineno} imports {owner}.{name}")
            if isinstance(node, ast.Import):
                aliases[node.names[0].asname or imported.split(".")[0]] = owner
        for node in ast.walk(TREES[module]):
            if isinstance(node, ast.Attribute) and _is_private(node.attr):
                target = aliases.get(node.value.id) if isinstance(node.value, ast.Name) else None
                if target is not None and target != module:
                    taken.append(f"{module}:{node.lineno} uses {target}.{node.attr}")
    assert taken == []


def _private_members_defined(tree: ast.Module) -> set[str]:
    """Private methods and attributes that the module's own classes define."""
    own: set[str] = set()
    for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
        for node in ast.walk(cls):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                own.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                    own.add(node.attr)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                own.add(node.id)
    return {name for name in own if _is_private(name)}


def test_no_module_reaches_into_private_members_of_objects_defined_elsewhere():
    defined = {module: _private_members_defined(tree) for module, tree in TREES.items()}
    reached = []
    for module, tree in TREES.items():
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Attribute) and _is_private(node.attr)):
                continue
            if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                continue
            if node.attr in defined[module]:
                continue
            owners = sorted(m for m, names in defined.items() if node.attr in names)
            if owners:
                reached.append(f"{module}:{node.lineno} .{node.attr} (defined in {owners})")
    assert reached == []


def _loads_heavy_dependency(module: str) -> bool:
    for _, imported, _, in_function in _imports(module):
        if not in_function and imported.split(".")[0] in HEAVY:
            return True
    return False


def test_imports_inside_functions_are_only_for_heavy_dependencies():
    # A function-level import of one of the package's own modules is allowed only when that
    # module loads a heavy dependency as it is imported: never to dodge an import circle.
    dodges = []
    for module in MODULES:
        for node, imported, names, in_function in _imports(module):
            if not in_function or _owner(imported) is None:
                continue
            targets = [f"{imported}.{n}" for n in names if f"{imported}.{n}" in MODULES]
            for target in targets or [_owner(imported)]:
                if not _loads_heavy_dependency(target):
                    dodges.append(f"{module}:{node.lineno} imports {target} inside a function")
    assert dodges == []


def test_no_function_is_over_the_limit():
    long = []
    for module, tree in TREES.items():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{module}:{node.name} has {lines} lines")
    assert long == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_a_long_module_says_why_at_its_top(module):
    lines = MODULES[module].read_text(encoding="utf-8").count("\n")
    if lines <= MAX_MODULE_LINES:
        return
    docstring = ast.get_docstring(TREES[module]) or ""
    reasons = [line for line in docstring.splitlines() if line.startswith(LENGTH_REASON)]
    assert reasons, f"{module} has {lines} lines and no '{LENGTH_REASON}' line saying why"


def test_the_checks_see_what_they_check():
    # Guards against a check that cannot fail: the walkers must find the package's imports,
    # its lazy imports of heavy dependencies, and its private members.
    assert len(MODULES) > 40
    lazy = [i for m in MODULES for i in _imports(m) if i[3]]
    assert any(imported.split(".")[0] in HEAVY for _, imported, _, _ in lazy)
    assert _loads_heavy_dependency("deltaprop.train.engines.compiling")
    assert not _loads_heavy_dependency("deltaprop.core.network")
    assert "_configure" in _private_members_defined(TREES["deltaprop.optim.base"])
