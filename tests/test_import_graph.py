"""The import graph's rules (issue 17): inference never needs the training package, and
the command line and the benchmarks are joined by one visible arrow, not a hidden loop.

Every module's imports are read from its source with ``ast`` (function-level imports
included, relative ones resolved, ``importlib.import_module("...")`` with a literal
name counted as an import), so an arrow cannot hide in a function body.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """The modules ``path`` imports, by absolute name (``from a import b`` gives ``a`` and ``a.b``)."""
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str) and _called(node) in ("import_module", "__import__")):
            found.add(node.args[0].value)
    return found


def _called(call: ast.Call) -> str:
    return call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")


def _graph(folder: str) -> dict[str, set[str]]:
    return {_module_name(path): _imports(path) for path in sorted((REPO / folder).rglob("*.py"))}


def _arrows(graph: dict[str, set[str]], source: str, target: str) -> list[str]:
    """``module -> imported`` for every import from under ``source`` into ``target`` (or below it)."""
    return sorted(f"{module} -> {name}" for module, names in graph.items()
                  if module == source or module.startswith(source + ".")
                  for name in names if name == target or name.startswith(target + "."))


BACKEND = _graph("backend")
BENCHMARKS = _graph("benchmarks")


def test_the_reader_sees_imports_in_function_bodies_and_relative_ones():
    """Known arrows, so a reader that saw nothing could not pass the rules below."""
    assert "benchmarks.bench_backend" in BACKEND["backend.cli"]  # inside _bench
    assert "backend.models.graph_generator" in BACKEND["backend.training.real_dataset"]  # inside _graph_rows
    assert "backend.training.procedural.dance" in BACKEND["backend.training.procedural"]
    addon = _graph("blender_addon")
    assert any(name.startswith("blender_addon.core") for name in addon["blender_addon.operators"])


def test_no_arrow_runs_from_models_to_training():
    """Inference (``backend/models``) must load and run without the training package."""
    assert _arrows(BACKEND, "backend.models", "backend.training") == []


def test_the_benchmarks_never_import_the_command_line():
    """``choreo bench`` imports ``benchmarks.bench_backend``; an import back would close a loop."""
    assert _arrows(BENCHMARKS, "benchmarks", "backend.cli") == []


def test_the_command_line_runs_no_code_by_path():
    """``runpy`` runs a file the import graph cannot see; the command line imports by name."""
    cli = REPO / "backend" / "cli.py"
    assert not {name for name in _imports(cli) if name == "runpy" or name.startswith("runpy.")}
    assert "run_path" not in cli.read_text(encoding="utf-8")
