"""Blender keyframe writing for ``choreo bench``: ``bench_keyframes.py --json`` under bpy.

The backend's Python has no ``bpy``, so the keyframe benchmark runs in a Python that
has it, as a child process. Which one is a lookup that callers (and tests) can
replace: ``$CHOREO_BENCH_BPY_PYTHON`` first, then the environments ``python -m
tests.blender`` makes. Without any, or when the child fails, the result says why it
was skipped; it never fails the benchmark, which is mostly about the backend.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any, Mapping, Sequence

REPO = Path(__file__).resolve().parents[1]
SCRIPT = Path(__file__).resolve().parent / "bench_keyframes.py"
ENV_VAR = "CHOREO_BENCH_BPY_PYTHON"
VENVS = (".venv-bpy-5.0.1", ".venv-bpy-4.2.x")
SKIP_NO_BPY = "skipped: no Python with bpy found (`python -m tests.blender` creates `.venv-bpy-5.0.1`)"
TIMEOUT_S = 900.0


def default_candidates(env: Mapping[str, str] = os.environ, repo: Path = REPO) -> list[Path]:
    """Where to look for a bpy Python, in order."""
    found = [Path(env[ENV_VAR])] if env.get(ENV_VAR) else []
    for venv in VENVS:
        found += [repo / venv / "bin" / "python", repo / venv / "Scripts" / "python.exe"]
    return found


def find_bpy_python(candidates: Sequence[str | os.PathLike[str]]) -> Path | None:
    """The first candidate that is an executable file, or None."""
    for candidate in map(Path, candidates):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def bench_keyframes(candidates: Sequence[str | os.PathLike[str]] | None = None,
                    timeout: float = TIMEOUT_S) -> dict[str, Any]:
    """The keyframe figures (``bench_keyframes.measure``) plus ``python``, or ``{"skipped": why}``.

    ``candidates`` None means ``default_candidates()``; an empty list means no bpy Python.
    """
    python = find_bpy_python(default_candidates() if candidates is None else candidates)
    if python is None:
        return {"skipped": SKIP_NO_BPY}
    try:
        done = subprocess.run([str(python), str(SCRIPT), "--json"], capture_output=True, text=True,
                              timeout=timeout, cwd=REPO, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"skipped": f"skipped: `{python} {SCRIPT.name} --json` did not finish ({exc})"}
    lines = done.stdout.strip().splitlines()
    try:
        result = json.loads(lines[-1]) if done.returncode == 0 and lines else None
    except json.JSONDecodeError:
        result = None
    if not isinstance(result, dict) or "bulk_s" not in result:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"skipped": f"skipped: `{python} {SCRIPT.name} --json` failed (exit {done.returncode}: "
                           f"{tail[0][:200]})"}
    return {**result, "python": str(python)}
