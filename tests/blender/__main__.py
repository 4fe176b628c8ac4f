"""Run the Blender tests under each supported Blender: ``python -m tests.blender``.

Each Blender version gets its own virtual environment (``.venv-bpy-<version>``) with
the ``bpy`` wheel, pyzmq and pytest, created on first use; the backend the tests
start runs with the Python that runs this module (the project's ``.venv``, which has
torch). Blender 4.2 LTS and 5.0 embed Python 3.11, so both wheels install here.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import venv
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
VERSIONS = ("5.0.1", "4.2.*")
"""The Blender releases we support and test: the newest, and the 4.2 LTS line."""
TEST_PACKAGES = ("pyzmq>=25", "pytest>=8", "imageio-ffmpeg>=0.5")
"""Beside bpy: the add-on's one dependency, the test runner, and an ffmpeg program for the
preview test under the bpy 4.2 wheel, which cannot mix sound itself (a machine without
``ffmpeg`` on the PATH must pass too)."""


def environment(version: str) -> Path:
    """The Python of a virtual environment with ``bpy==version`` (made if missing)."""
    folder = REPO_ROOT / f".venv-bpy-{version.replace('*', 'x')}"
    python = folder / "bin" / "python"
    wanted = [f"bpy=={version}", *TEST_PACKAGES]
    ready = folder / ".ready"
    if not ready.exists() or ready.read_text().split() != wanted:
        if not python.exists():
            venv.create(folder, with_pip=True, clear=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *wanted], check=True)
        ready.write_text(" ".join(wanted))
    return python


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.blender", description=__doc__)
    parser.add_argument("--bpy", action="append", help="bpy version(s) to test (default: 5.0.1 and 4.2.*)")
    parser.add_argument("pytest_args", nargs="*", help="passed to pytest (e.g. -k regenerate)")
    args = parser.parse_args(argv)
    env = {**os.environ, "CHOREO_BACKEND_PYTHON": sys.executable,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    failed = []
    for version in args.bpy or VERSIONS:
        python = environment(version)
        print(f"== Blender tests with bpy {version}", flush=True)
        code = subprocess.run([str(python), "-m", "pytest", "-q", "tests/blender", *args.pytest_args],
                              cwd=REPO_ROOT, env=env).returncode
        if code != 0:
            failed.append(version)
    if failed:
        print(f"Blender tests failed with bpy {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
