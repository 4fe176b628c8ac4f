"""Retarget a dance that already exists onto the selected armature, without generating again.

Sources: the SMPL rig's dance (read back from its keys, with its contact curves and what
made it, so the result can be regenerated in place like a generated one), a Choreo
``.npz`` (``core.dance_file``), or a BVH file (turned into an npz by the backend's
importer, run with the backend's Python, as ``body_mesh`` runs ``backend.body``).

The keys go into a new action named after the dance (``session.dance_action``), through
the same target as a generation (``RigTarget``: the bone map, root mode and facing),
then the contact labels and, with *Plant feet* on, the planted legs. So retargeting the
SMPL rig's (unplanted) dance gives the same keys as generating onto the rig with the
same seed.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import bpy
import numpy as np

from . import foot_plant_bpy, rig, session
from .core import frame_rate
from .core.dance_file import Dance, DanceFileError, read_npz

__all__ = ["Dance", "DanceFileError", "read_npz", "dance_from_rig", "dance_from_bvh", "apply_dance"]

_BVH_SCRIPT = ("import sys, numpy as np\n"
               "from backend.motion.bvh import load_bvh_clip\n"
               "load_bvh_clip(sys.argv[1]).save_npz(sys.argv[2])\n")


def dance_from_rig(obj: bpy.types.Object) -> tuple[Dance, session.MotionMeta]:
    """The SMPL rig's dance (its keys as they are now) and what made it."""
    if not rig.is_smpl_rig(obj):
        raise DanceFileError(f"{obj.name} is not a Choreo SMPL rig")
    meta = session.MotionMeta.load(obj)
    rot, root = session.SmplTarget(obj).read(meta.first_frame, meta.frames)
    frames = meta.first_frame + np.arange(meta.frames)
    labels = foot_plant_bpy.read_contacts(obj, frames)
    names = tuple(labels)
    contacts = (np.stack([labels[n] for n in names], axis=1) if names
                else np.zeros((meta.frames, 0))).astype(np.float32)
    return Dance(rot, root, meta.scene_fps, contacts, names, name=Path(meta.audio_path).stem or obj.name), meta


def bvh_to_npz(bvh: str | os.PathLike[str], python: str, out: str | os.PathLike[str]) -> Path:
    """Convert a BVH to a Choreo npz with the backend's importer (``python`` has choreo)."""
    if not python:
        raise DanceFileError("reading a BVH needs the backend's Python: set it in the add-on's preferences")
    repo = Path(__file__).resolve().parents[1]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(repo), env.get("PYTHONPATH")]))
    done = subprocess.run([python, "-c", _BVH_SCRIPT, os.fspath(bvh), os.fspath(out)], capture_output=True,
                          text=True, env=env, timeout=600)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise DanceFileError(f"the backend could not read {bvh}: {tail[0]}")
    return Path(out)


def dance_from_bvh(path: str | os.PathLike[str], python: str) -> Dance:
    with tempfile.TemporaryDirectory() as folder:
        dance = read_npz(bvh_to_npz(path, python, Path(folder) / "dance.npz"))
    dance.name = Path(path).stem
    return dance


def apply_dance(context: bpy.types.Context, obj: bpy.types.Object, dance: Dance, *,
                first_frame: int | None = None, meta: session.MotionMeta | None = None) -> int:
    """Key ``dance`` onto ``obj`` (a new action) from ``first_frame`` (default: the scene's start).

    The scene takes the dance's rate, or the dance is resampled to the scene's (the panel's
    *Frame rate*). Returns the number of scene frames written.
    """
    from .operators import target_for
    scene = context.scene
    settings = scene.choreo
    rot, root = dance.rotations, dance.root
    labels = dance.contacts
    if settings.fit == "SCENE":
        scene.render.fps, scene.render.fps_base = frame_rate.blender_rate(dance.fps)
        fps = dance.fps
    else:
        fps = session.scene_fps(scene)
    if not frame_rate.same_rate(fps, dance.fps):
        rot, root = frame_rate.resample_motion(rot, root, dance.fps, fps)
        labels = frame_rate.resample_labels(labels, dance.fps, fps, rot.shape[0])
    first = scene.frame_start if first_frame is None else int(first_frame)
    target = target_for(context, obj)
    session.dance_action(obj, dance.name)
    target.write(first, rot, root)
    frames = int(rot.shape[0])
    if dance.contact_names:
        foot_plant_bpy.write_contacts(obj, first, dance.contact_names, labels)
        if settings.plant_feet:
            foot_plant_bpy.plant(obj, first, first + frames - 1)
    scene.frame_start = min(scene.frame_start, first)
    scene.frame_end = max(scene.frame_end, first + frames - 1)
    if meta is None:
        meta = session.MotionMeta(first_frame=first, frames=frames, scene_fps=fps, motion_fps=dance.fps,
                                  audio_path="", start_seconds=0.0, model="", options={})
    else:
        meta = session.MotionMeta(**{**meta.__dict__, "first_frame": first, "frames": frames, "scene_fps": fps})
    meta.save(obj)
    return frames
