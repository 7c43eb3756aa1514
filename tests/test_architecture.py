"""The package's architecture, checked: packages by idea, imported one way.

Every module of ``src/riskmodel`` is read with :mod:`ast` (imports inside functions count), and
the graph of its imports within the package must have no circle and no import from a higher
layer (docs/architecture.md draws the layers). Known exceptions stand in one list below, each
with what would remove it; an exception that no longer occurs must leave the list.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import riskmodel

SRC = Path(riskmodel.__file__).resolve().parent

# Lowest first. A module may import from its own unit and from the units of lower layers; the
# ground modules may import each other; units of one layer are peers and never import each
# other. The root ``riskmodel/__init__.py`` (the public facade) is above everything: no module
# imports it.
LAYERS = [
    ("ground", {"clock", "config", "errors", "months", "fonts", "_version"}),
    ("ledger", {"ledger"}),
    ("county sources", {"sources"}),
    ("model", {"model"}),
    ("explanations and synthetic ledgers", {"explain", "synthetic"}),
    ("scoring and plans", {"scoring", "plan"}),
    ("bulletin", {"bulletin"}),
    ("the jobs with their pages", {"jobs"}),
    ("command line", {"cli"}),
]

# (importing module, imported module): why it is there and what removes it. The test fails on
# any upward import or circle not listed here, and on a listed one that is gone.
KNOWN_EXCEPTIONS: dict[tuple[str, str], str] = {}

# Modules over MAX_LINES lines, each with its reason; a module that shrinks below must leave.
MAX_LINES = 600
LONG_MODULES = {
    "riskmodel.config": "one idea: the configuration's schema (a pydantic model per section, "
                        "with the vocabulary its rules may name) and its loading",
    "riskmodel.model._backtest": "one idea: the rolling-origin backtest, its metrics at fixed "
                                 "caseloads and the plots of them",
    "riskmodel.ledger._outputs": "one idea: writing a run's files atomically under the output "
                                 "lock (Parquet, the month folder, watch list, quarantine.xlsx)",
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(("riskmodel", *parts))] = path
    return out


MODULES = _modules()


def _is_package(module: str) -> bool:
    return MODULES[module].name == "__init__.py"


def _resolve(module: str, node: ast.ImportFrom | ast.Import) -> list[str]:
    """The package's modules that an import statement of ``module`` imports."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        if node.level:
            base = module.split(".")
            base = base if _is_package(module) else base[:-1]
            base = base[:len(base) - node.level + 1]
            source = ".".join([*base, *([node.module] if node.module else [])])
        else:
            source = node.module or ""
        names = [f"{source}.{a.name}" if f"{source}.{a.name}" in MODULES else source
                 for a in node.names]
    found = []
    for name in names:
        while name and name not in MODULES:
            name = name.rpartition(".")[0]
        if name.startswith("riskmodel") and name not in found:
            found.append(name)
    return found


def _edges() -> dict[tuple[str, str], int]:
    """(importer, imported) -> line of the first such import, over every module."""
    edges = {}
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                for target in _resolve(module, node):
                    if target != module:
                        edges.setdefault((module, target), node.lineno)
    return edges


EDGES = _edges()


def _unit(module: str) -> str:
    parts = module.split(".")
    return "riskmodel" if len(parts) == 1 else parts[1]


def _layer(unit: str) -> int:
    for i, (_, units) in enumerate(LAYERS):
        if unit in units:
            return i
    raise AssertionError(f"riskmodel.{unit} is in no layer: give it one in LAYERS (and in "
                         "docs/architecture.md)")


def _allowed(importer: str, imported: str) -> bool:
    a, b = _unit(importer), _unit(imported)
    if a == "riskmodel":  # the facade may import anything (most of it lazily)
        return True
    if b == "riskmodel":
        return False
    if a == b:
        return True
    return _layer(b) < _layer(a) or _layer(a) == _layer(b) == 0


def _why(importer: str, imported: str) -> str:
    a, b = _unit(importer), _unit(imported)
    if b == "riskmodel":
        return "no module imports the facade riskmodel/__init__.py"
    if _layer(a) == _layer(b):
        return f"{a} and {b} are peers ({LAYERS[_layer(a)][0]})"
    return f"{b} ({LAYERS[_layer(b)][0]}) is above {a} ({LAYERS[_layer(a)][0]})"


def test_every_module_has_a_layer():
    for module in MODULES:
        if _unit(module) != "riskmodel":
            _layer(_unit(module))


def test_no_import_goes_up_or_sideways():
    wrong = [f"{a} imports {b} (line {line}): {_why(a, b)}"
             for (a, b), line in sorted(EDGES.items())
             if not _allowed(a, b) and (a, b) not in KNOWN_EXCEPTIONS]
    assert not wrong, "\n".join(wrong)


def test_no_import_circle():
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for a, b in EDGES:
        if (a, b) not in KNOWN_EXCEPTIONS and _unit(a) != "riskmodel":
            graph[a].add(b)
    # Tarjan's strongly connected components: any of more than one module is a circle.
    index, low, stack, on, circles = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    assert not circles, "import circles: " + "; ".join(" <-> ".join(c) for c in circles)


def test_known_exceptions_still_occur():
    gone = [f"{a} -> {b}" for a, b in KNOWN_EXCEPTIONS if (a, b) not in EDGES]
    assert not gone, f"no longer imported, remove from KNOWN_EXCEPTIONS: {gone}"
    allowed = [f"{a} -> {b}" for a, b in KNOWN_EXCEPTIONS
               if _allowed(a, b) and _unit(a) != _unit(b)]
    assert not allowed, f"allowed by the layers, remove from KNOWN_EXCEPTIONS: {allowed}"


def test_modules_over_the_length_limit_say_why():
    lengths = {m: len(p.read_text(encoding="utf-8").splitlines()) for m, p in MODULES.items()}
    long = [f"{m}: {n} lines" for m, n in sorted(lengths.items())
            if n > MAX_LINES and m not in LONG_MODULES]
    assert not long, f"modules over {MAX_LINES} lines (split, or add to LONG_MODULES with a " \
                     f"reason): {long}"
    short = [m for m in LONG_MODULES if lengths.get(m, 0) <= MAX_LINES]
    assert not short, f"no longer over {MAX_LINES} lines, remove from LONG_MODULES: {short}"


def test_subpackages_keep_their_modules_private_and_say_what_they_own():
    for module in MODULES:
        parts = module.split(".")
        if len(parts) == 3:
            assert parts[2].startswith("_"), f"{module}: a subpackage's modules are private"
        if _is_package(module) and module != "riskmodel":
            package = importlib.import_module(module)
            assert package.__doc__ and "may import" in package.__doc__, module
            assert all(hasattr(package, name) for name in package.__all__), module


def test_public_names_stay_functions_after_every_submodule_is_imported():
    # `from riskmodel.train import TrainResult` used to replace the function riskmodel.train by
    # the module of the same name.
    import riskmodel as rm

    for info in pkgutil.walk_packages(rm.__path__, "riskmodel."):
        importlib.import_module(info.name)
    import riskmodel.model

    assert inspect.isfunction(rm.train) and rm.train is riskmodel.model.train
    assert inspect.isfunction(rm.backtest) and rm.backtest is riskmodel.model.backtest
    for package in [rm, *(importlib.import_module(m) for m in MODULES if _is_package(m))]:
        shadowed = [n for n in package.__all__ if inspect.ismodule(getattr(package, n))]
        assert not shadowed, f"{package.__name__}: {shadowed} are modules"


@pytest.mark.parametrize("name", riskmodel.__all__)
def test_every_public_name_loads(name):
    assert getattr(riskmodel, name) is not None
