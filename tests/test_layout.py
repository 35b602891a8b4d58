"""The package's layout holds: imports run one way between the layers docs/development.md names,
no two modules import each other, and the numpy core imports neither Hydra nor MLflow. Read
from the source's own import statements (lazy imports inside functions included)."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "nnexp"

#: From the bottom up; a module may import its own layer and those below it.
LAYERS = [
    {"errors", "signals", "console", "safety", "private_api", "plots"},
    {"config", "data", "core", "provenance"},
    {"tracking"},
    {"run"},
    {"sweep"},
    {"report"},
    {"reproduce"},
    {"train", "cli", "__main__"},
]


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every nnexp module ``path`` imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("nnexp"):
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("nnexp"))
    return found


@functools.cache
def graph() -> dict[str, set[str]]:
    modules = {module_name(path): path for path in SRC.rglob("*.py")}
    return {
        name: {target for target in imports(path) if target in modules and target != name}
        for name, path in modules.items()
    }


def layer(module: str) -> int:
    top = module.split(".")[1] if "." in module else ""
    return next(i for i, names in enumerate(LAYERS) if top in names)


def test_every_top_level_name_has_a_layer():
    for name in graph():
        if name != "nnexp":
            layer(name)


def test_no_import_reaches_a_higher_layer():
    upward = [
        f"{source} → {target}"
        for source, targets in graph().items()
        if source != "nnexp"
        for target in targets
        if target != "nnexp" and layer(target) > layer(source)
    ]
    assert upward == []


def test_no_two_modules_import_each_other():
    edges = graph()
    cycles = sorted(
        f"{a} ⇄ {b}"
        for a, targets in edges.items()
        for b in targets
        if a < b and a in edges[b] and not b.startswith(f"{a}.")  # a package's face: no cycle
    )
    assert cycles == []


def test_the_core_imports_nothing_of_nnexp_hydra_or_mlflow():
    for path in (SRC / "core").rglob("*.py"):
        roots = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                roots.add(node.module)
            elif isinstance(node, ast.Import):
                roots.update(a.name for a in node.names)
        assert {r.split(".")[0] for r in roots} & {"hydra", "omegaconf", "mlflow"} == set(), path
        assert all(r.startswith("nnexp.core") for r in roots if r.startswith("nnexp")), path
