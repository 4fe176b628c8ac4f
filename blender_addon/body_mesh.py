"""Dress the SMPL rig in the real SMPL body, from the ``.npz`` that ``backend.body`` makes.

The backend does the part that needs torch and the licensed model file (reading it
with ``smplx``); the file it writes holds plain arrays already in the rig's frame
(metres, Z-up, the body's joints on the rig's bone heads), so here we only build a
mesh, one vertex group per joint holding SMPL's skinning weights, and an Armature
modifier. The file is read with ``allow_pickle=False``: nothing in it can run code.

``body_from_model_file`` is the one-step version the operators use: it runs
``backend.body`` with the backend's Python (from the preferences) on the animator's
model file, caches the result, and builds the body.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from pathlib import Path

import bpy
import numpy as np

from .core.backend_link import LinkSettings

BODY_FORMAT_VERSION = 1
"""The ``backend.body`` layout this reader understands."""
BODY_SUFFIX = "_smpl_body"
"""The body object is named after the rig: ``<rig>_smpl_body``."""
STAND_IN_SUFFIX = "_body"
"""``rig.build_smpl_rig``'s stand-in mannequin, hidden once the real body is on."""
_FIELDS = ("vertices", "faces", "weights", "joint_names", "format_version")


def read_body(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """The body's arrays, checked for the layout and shapes we rely on."""
    try:
        with np.load(os.fspath(path), allow_pickle=False) as data:
            body = {key: data[key] for key in data.files}
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot read the body file {path}: {error}") from error
    missing = [key for key in _FIELDS if key not in body]
    if missing:
        raise ValueError(f"{path} is not a body file from backend.body (no {', '.join(missing)})")
    if int(body["format_version"]) != BODY_FORMAT_VERSION:
        raise ValueError(f"{path} has body format {int(body['format_version'])}; this add-on reads "
                         f"{BODY_FORMAT_VERSION}: make it again with this version's backend")
    n, joints = body["vertices"].shape[0], len(body["joint_names"])
    if body["vertices"].shape != (n, 3) or body["weights"].shape != (n, joints) or body["faces"].ndim != 2:
        raise ValueError(f"{path}: inconsistent shapes (vertices {body['vertices'].shape}, "
                         f"weights {body['weights'].shape}, faces {body['faces'].shape})")
    return body


def build_body(context: bpy.types.Context, rig_obj: bpy.types.Object,
               body_npz_path: str | os.PathLike[str]) -> bpy.types.Object:
    """A skinned SMPL body mesh on ``rig_obj``: parented to it, deformed by its bones.

    The vertices are written in the rig's own (armature) space with an identity
    parent inverse, so the body fits the rig wherever the rig object stands. A body
    built earlier for this rig is replaced; the stand-in mannequin is disabled in
    viewports and renders (not deleted), which also keeps it out of FBX exports.
    """
    if rig_obj is None or rig_obj.type != "ARMATURE":
        raise ValueError("the SMPL body goes on an armature (the Choreo SMPL rig)")
    body = read_body(body_npz_path)
    names = [str(name) for name in body["joint_names"]]
    missing = [name for name in names if name not in rig_obj.data.bones]
    if missing:
        raise ValueError(f"{rig_obj.name} has no bones for joints {', '.join(missing)}: "
                         "the body needs the SMPL rig")

    name = f"{rig_obj.name}{BODY_SUFFIX}"
    _remove_old_body(rig_obj, name)
    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata(body["vertices"].astype(np.float64).tolist(), [], body["faces"].tolist())
    mesh.validate()
    mesh.update()
    # Smooth shading: SMPL's 13 776 triangles look faceted otherwise.
    mesh.polygons.foreach_set("use_smooth", np.ones(len(mesh.polygons), dtype=bool))
    obj = bpy.data.objects.new(name, mesh)
    context.collection.objects.link(obj)
    obj.parent = rig_obj
    obj.matrix_parent_inverse.identity()

    weights = body["weights"]
    for j, joint in enumerate(names):
        group = obj.vertex_groups.new(name=joint)
        column = weights[:, j]
        for vertex in np.flatnonzero(column > 0.0).tolist():
            group.add([vertex], float(column[vertex]), "REPLACE")

    modifier = obj.modifiers.new("Armature", "ARMATURE")
    modifier.object = rig_obj
    modifier.use_vertex_groups = True
    modifier.use_deform_preserve_volume = False  # SMPL is linear blend skinning, as engines do

    stand_in = bpy.data.objects.get(f"{rig_obj.name}{STAND_IN_SUFFIX}")
    if stand_in is not None and stand_in.parent == rig_obj:
        # Disabled in viewports (in every view layer) rather than hidden in this one:
        # it needs no synced view layer, and the outliner's monitor icon brings it back.
        stand_in.hide_viewport = True
        stand_in.hide_render = True
    return obj


def _remove_old_body(rig_obj: bpy.types.Object, name: str) -> None:
    """Delete this rig's previous SMPL body (object and mesh), so the name stays free."""
    for child in list(rig_obj.children):
        if child.type == "MESH" and child.name.split(".")[0] == name:
            mesh = child.data
            bpy.data.objects.remove(child, do_unlink=True)
            if mesh.users == 0:
                bpy.data.meshes.remove(mesh)


def body_command(settings: LinkSettings, model: Path, out: Path) -> list[str]:
    """The command line that turns ``model`` into the body file ``out`` (backend side).

    It needs the backend's Python (torch and smplx live there, not in Blender). A
    ``.pkl`` model gets ``--allow-pickle``: the preferences field asks for the
    animator's own SMPL model file, which is the consent that flag stands for.
    """
    python = settings.python.strip()
    if not python:
        raise ValueError("making the SMPL body needs the backend's Python: set 'Python' in the "
                         "Choreo preferences (or clear 'SMPL model file' to keep the stand-in body)")
    command = [python, "-m", "backend.body", str(model), "--out", str(out)]
    return command + ["--allow-pickle"] if model.suffix.lower() == ".pkl" else command


def body_from_model_file(context: bpy.types.Context, rig_obj: bpy.types.Object,
                         model_path: str | os.PathLike[str], settings: LinkSettings,
                         timeout: float = 300.0, cache_dir: Path | None = None) -> bpy.types.Object:
    """Make (or reuse) the body file for an SMPL model file, then ``build_body`` it on the rig.

    The body file is cached (in ``cache_dir``, default the temp folder) under a name
    made from the model's path, size and modification time, so a second rig costs no
    backend run, and a changed model file is read again.
    """
    model = Path(model_path)
    if not model.is_file():
        raise ValueError(f"SMPL model file {model} not found")
    stat = model.stat()
    key = hashlib.sha1(f"{model.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    out = (cache_dir or Path(tempfile.gettempdir()) / "choreo_body") / f"{model.stem}-{key}.npz"
    if not out.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        try:
            done = subprocess.run(body_command(settings, model, out), capture_output=True, text=True,
                                  timeout=timeout, env={**os.environ, **settings.extra_env})
        except (OSError, subprocess.TimeoutExpired) as error:
            raise RuntimeError(f"could not run the backend's Python for the SMPL body: {error}") from error
        if done.returncode != 0 or not out.is_file():
            lines = (done.stderr or done.stdout).strip().splitlines()
            raise RuntimeError(f"making the SMPL body failed: {lines[-1] if lines else done.returncode}")
    return build_body(context, rig_obj, out)
