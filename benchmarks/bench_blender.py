"""Blender for ``choreo bench``: ``bench_keyframes.py --json`` under bpy (keyframes, planting).

The backend's Python has no ``bpy``, so the keyframe benchmark (keyframe writing and
planting the feet) runs in a Python that has it, as a child process. Which one is a
lookup that callers (and tests) can replace: ``$CHOREO_BENCH_BPY_PYTHON`` first, then the environments ``python -m
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
PLANT_BUDGET_S = 0.3
"""Issue 15: the feet of 60 s of dance (30 fps) planted in at most this many seconds."""
PLANT_RIGS = {"smpl": "the 24-bone SMPL rig", "mixamo": "the Mixamo-style test rig"}
"""The rigs ``bench_keyframes.measure_planting`` plants on, and how the reports name them."""


def plant_table(plant: Mapping[str, Any]) -> list[str]:
    """The planting figures (``bench_keyframes.measure_planting``) as a markdown table, one
    row per rig: written here, bpy-free, for both the script's report and ``choreo bench``'s."""
    rows = ["| rig | bones | frames planted (changed) | contact spans | frames with the hips lowered | "
            "seconds (best) | budget |", "|---|---|---|---|---|---|---|"]
    for kind, r in plant["rigs"].items():
        rows.append(f"| {PLANT_RIGS.get(kind, kind)} | {r['bones']} | {r['frames']:,} ({r['changed_frames']:,}) | "
                    f"{r['spans']} | {r['hip_drop_frames']:,} | {r['best_s']:.3f} | "
                    f"≤ {r['budget_s']:g} s: {'pass' if r['pass'] else 'FAIL'} |")
    return rows


def plant_method(plant: Mapping[str, Any]) -> str:
    """What the planting figures measure, for the reports."""
    first = next(iter(plant["rigs"].values()), {"frames": 0, "all_s": []})
    return (f"Planting the feet: `foot_plant_bpy.plant` over all {first['frames']:,} frames of a rig keyed "
            "with 60 s of real dance and its contact curves (planting off), as the add-on runs it after a "
            "dance: read the keys and the curves, solve the legs (`core.leg_ik`), key the frames it "
            f"changed. Best of {len(first['all_s'])}, each on a freshly keyed rig. The dance: {plant['dance']}.")


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
