"""Render the stills in docs/blender.md: the add-on's workflow, in headless Blender.

Run with a Python that has ``bpy`` (``python -m tests.blender`` makes one):

    .venv-bpy-5.0.1/bin/python docs/render_stills.py

It starts a real backend with ``$CHOREO_BACKEND_PYTHON`` (default ``.venv/bin/python``),
enables the add-on, generates 8 s of dance for the bundled song onto the SMPL rig,
regenerates the arms over frames 90-150, and renders Workbench stills of both into
docs/images/.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import bpy  # first: it puts Blender's own modules (addon_utils) on the path
import addon_utils  # noqa: E402
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from backend.examples import EXAMPLE_SONG as SONG  # noqa: E402
from protocol.launch import launch_backend  # noqa: E402

OUT = REPO / "docs" / "images"


def _backend():  # noqa: ANN202
    python = os.environ.get("CHOREO_BACKEND_PYTHON", str(REPO / ".venv" / "bin" / "python"))
    folder = Path(tempfile.mkdtemp(prefix="choreo-stills-"))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return launch_backend([python, "-m", "backend.server", "--device", "cpu", "--connection-file",
                           str(folder / "backend.json")], folder / "backend.json", log_path=folder / "log",
                          env=env, cwd=REPO)


def _stage(scene: bpy.types.Scene) -> None:
    """A floor, a camera looking at the dancer from the front-left, Workbench shading."""
    bpy.ops.mesh.primitive_plane_add(size=8.0)
    cam_data = bpy.data.cameras.new("Camera")
    cam = bpy.data.objects.new("Camera", cam_data)
    scene.collection.objects.link(cam)
    cam.location = (2.6, -4.2, 1.6)
    direction = np.array([0.0, 0.0, 0.95]) - np.array(cam.location)
    from mathutils import Vector
    cam.rotation_euler = Vector(direction).to_track_quat("-Z", "Y").to_euler()
    scene.camera = cam
    scene.render.engine = "BLENDER_WORKBENCH"
    scene.display.shading.light = "STUDIO"
    scene.display.shading.color_type = "OBJECT"
    scene.display.shading.show_shadows = True
    scene.render.resolution_x, scene.render.resolution_y = 480, 360
    scene.render.image_settings.file_format = "PNG"


def _render(scene: bpy.types.Scene, frame: int, name: str) -> Path:
    scene.frame_set(frame)
    scene.render.filepath = str(OUT / name)
    bpy.ops.render.render(write_still=True)
    return OUT / name


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    server = _backend()
    try:
        addon_utils.enable("blender_addon", default_set=True)
        prefs = bpy.context.preferences.addons["blender_addon"].preferences
        prefs.backend_mode, prefs.connection_file = "CONNECT", str(server.connection_file)
        for obj in list(bpy.data.objects):
            bpy.data.objects.remove(obj, do_unlink=True)
        scene = bpy.context.scene
        _stage(scene)
        s = scene.choreo
        s.audio_path, s.range_mode, s.start_seconds, s.seconds, s.seed = str(SONG), "RANGE", 4.0, 8.0, 3
        bpy.ops.choreo.generate()
        rig = bpy.data.objects["SMPL"]
        rig.data.display_type = "STICK"
        bpy.data.objects["SMPL_body"].color = (0.85, 0.55, 0.3, 1.0)
        written = [_render(scene, f, f"dance_{f:03d}.png") for f in (1, 45, 90, 135)]
        bpy.context.view_layer.objects.active = rig
        s.edit_range, s.edit_first, s.edit_last, s.edit_joints, s.edit_parts = "TYPED", 90, 150, "PARTS", {"ARMS"}
        s.seed = 11
        bpy.ops.choreo.regenerate()
        bpy.data.objects["SMPL_body"].color = (0.3, 0.55, 0.85, 1.0)
        written += [_render(scene, 135, "regenerated_arms_135.png")]
        print(json.dumps({"stills": [str(p.relative_to(REPO)) for p in written]}))
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
