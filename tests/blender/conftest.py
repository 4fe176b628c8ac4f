"""Fixtures for the Blender tests: a real backend process and the add-on enabled in bpy.

These tests run in an environment with the ``bpy`` wheel, numpy, pyzmq and pytest,
but no torch: the backend runs as its own process with the Python named by
``$CHOREO_BACKEND_PYTHON`` (default: the repository's ``.venv``), exactly as the
add-on runs it for an animator.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Iterator

import bpy
import pytest

from backend.examples import EXAMPLE_SONG  # a path only: nothing of the backend runs in this process
from protocol.launch import LaunchedBackend, launch_backend

REPO_ROOT = Path(__file__).resolve().parents[2]
FAST_OPTIONS = {"steps": 2}
"""Generator options for tests that check plumbing, not dance quality: the test backend's
default is ``edge`` (``--default-model``; tests/server_fixtures.py says why)."""


def backend_python() -> str:
    """The Python that runs the backend (it has torch; this one has bpy)."""
    path = os.environ.get("CHOREO_BACKEND_PYTHON") or str(REPO_ROOT / ".venv" / "bin" / "python")
    if not Path(path).exists():
        pytest.fail(f"no backend Python at {path}: set $CHOREO_BACKEND_PYTHON")
    return path


def backend_env() -> dict[str, str]:
    """The backend child's environment: ours, with the repository importable."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


@pytest.fixture(scope="session")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LaunchedBackend]:
    """One real backend process (CPU, every bundled model, ``edge`` by default) for the whole session."""
    folder = tmp_path_factory.mktemp("backend")
    connection = folder / "backend.json"
    server = launch_backend(
        [backend_python(), "-m", "backend.server", "--device", "cpu", "--connection-file", str(connection),
         "--default-model", "edge"],
        connection, log_path=folder / "backend.log", env=backend_env(), cwd=REPO_ROOT)
    yield server
    server.stop()


def clear_scene() -> None:
    """Remove every object and the data blocks animation leaves behind, keeping preferences."""
    for obj in list(bpy.data.objects):
        bpy.data.objects.remove(obj, do_unlink=True)
    for collection in (bpy.data.actions, bpy.data.armatures, bpy.data.meshes, bpy.data.sounds,
                       bpy.data.materials):
        for block in list(collection):
            collection.remove(block)
    scene = bpy.context.scene
    scene.timeline_markers.clear()
    if scene.sequence_editor is not None:
        scene.sequence_editor_clear()
    if hasattr(scene, "choreo"):  # the add-on's panel settings back to their defaults
        for name in scene.choreo.bl_rna.properties.keys():
            if name != "rna_type":
                scene.choreo.property_unset(name)
    scene.render.fps, scene.render.fps_base = 30, 1.0
    scene.frame_start, scene.frame_end, scene.frame_current = 1, 250, 1


@pytest.fixture()
def scene() -> Iterator[bpy.types.Scene]:
    """An empty scene at 30 fps (objects and actions from earlier tests removed)."""
    clear_scene()
    yield bpy.context.scene
    clear_scene()


def pytest_report_header(config: pytest.Config) -> str:
    return f"bpy {bpy.app.version_string} (Python {sys.version.split()[0]})"


_EXIT_STATUS = 0


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    global _EXIT_STATUS
    _EXIT_STATUS = int(exitstatus)


def pytest_unconfigure(config: pytest.Config) -> None:
    """On the bpy 4.2 module, leave without the interpreter's teardown.

    That wheel segfaults while Python shuts down once an add-on has registered
    properties (seen with our add-on, after every test passed). The tests are over
    and their status is known by now, so we exit with it directly; 5.0 exits normally.
    """
    if bpy.app.version < (4, 3, 0):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_EXIT_STATUS)
