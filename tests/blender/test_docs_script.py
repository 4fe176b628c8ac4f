"""docs/blender.md's scripting example, run as written in a fresh Blender with the extension zip.

The block under "## Scripting" is taken from the docs, saved as a script and run by a
clean ``bpy`` process (no repository on its path, its own Blender user folder), as the
extension test runs its probe: it installs the zip, generates against the session's real
backend, re-plants, retargets onto a Mixamo-style rig imported from FBX, renders the
preview and exports. Then we look at what it made.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import bpy
import pytest

from tests.blender.conftest import EXAMPLE_SONG, REPO_ROOT, clear_scene
from tests.blender.test_extension_install import extension_zip  # noqa: F401  (the fixture)
from tests.blender.test_retarget import mixamo_rig
from tests.mp4_probe import probe


def docs_script() -> str:
    text = (REPO_ROOT / "docs" / "blender.md").read_text()
    section = text.split("\n## Scripting\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, "the scripting section should hold one complete example script"
    return blocks[0]


@pytest.fixture()
def rig_fbx(tmp_path):  # noqa: ANN001, ANN201
    """A Mixamo-style rig as an FBX (what an animator downloads), made here and exported."""
    clear_scene()
    obj = mixamo_rig()
    bpy.ops.object.select_all(action="DESELECT")
    obj.select_set(True)
    bpy.context.view_layer.objects.active = obj
    path = tmp_path / "mixamo_rig.fbx"
    assert bpy.ops.export_scene.fbx(filepath=str(path), use_selection=True, bake_anim=False,
                                    add_leaf_bones=False, object_types={"ARMATURE"}) == {"FINISHED"}
    clear_scene()
    return path


def test_the_docs_example_script_runs(extension_zip, backend, rig_fbx, tmp_path):  # noqa: ANN001, F811
    script = tmp_path / "choreo_script.py"
    script.write_text(docs_script())
    user, home, out = tmp_path / "blender-user", tmp_path / "home", tmp_path / "out"
    user.mkdir()
    home.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTHON", "BLENDER_", "CHOREO_"))}
    env.update(BLENDER_USER_RESOURCES=str(user), HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"),
               XDG_CACHE_HOME=str(home / ".cache"), CHOREO_ZIP=str(extension_zip), CHOREO_SONG=str(EXAMPLE_SONG),
               CHOREO_CONNECTION_FILE=str(backend.connection_file), CHOREO_RIG=str(rig_fbx),
               CHOREO_OUT=str(out))
    proc = subprocess.run([sys.executable, "-I", str(script)], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=900)
    log = f"--- stdout\n{proc.stdout[-5000:]}\n--- stderr\n{proc.stderr[-5000:]}"
    assert proc.returncode == 0, log
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("choreo script: ")), None)
    assert line is not None, log
    summary = json.loads(line.split(": ", 1)[1])
    assert summary["dancer"] != "SMPL" and summary["action"].startswith(EXAMPLE_SONG.stem), summary
    assert {"preview.mp4", "dance.fbx", "dance.blend"} <= set(summary["files"]), summary
    info = probe(out / "preview.mp4")
    assert sorted(info.kinds()) == ["soun", "vide"], info
    frames = summary["frames"][1] - summary["frames"][0] + 1
    assert abs(info.seconds - frames / 30.0) <= 0.05, (info, frames)
