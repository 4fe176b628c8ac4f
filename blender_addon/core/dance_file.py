"""A dance that already exists, as plain arrays: from a Choreo ``.npz`` (pure numpy; no bpy).

``choreo generate`` writes the npz (``backend/motion/clip.py`` documents the keys); the
add-on reads it with ``allow_pickle=False`` (nothing in it can run code) and checks the
shapes before anything is keyed. BVH files are turned into such an npz by the backend's
own importer (``retarget_dance.bvh_to_npz``), which needs the backend's Python.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass, field

import numpy as np

from ..protocol.skeleton import JOINT_NAMES


class DanceFileError(ValueError):
    """The file is not a Choreo dance we can read (says why)."""


@dataclass
class Dance:
    """SMPL motion: rotations (T, 24, 4) w-first local quaternions, root (T, 3) metres Z-up,
    contact labels (T, C) named by ``contact_names``, at ``fps``."""

    rotations: np.ndarray
    root: np.ndarray
    fps: float
    contacts: np.ndarray
    contact_names: tuple[str, ...] = field(default_factory=tuple)
    name: str = "dance"

    @property
    def frames(self) -> int:
        return int(self.rotations.shape[0])


def read_npz(path: str | os.PathLike[str]) -> Dance:
    """The dance in a Choreo npz, checked (``DanceFileError`` names what is wrong)."""
    try:
        with np.load(os.fspath(path), allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as error:
        raise DanceFileError(f"cannot read {path} as an npz: {error}") from None
    missing = [k for k in ("rotations", "root_translation", "fps") if k not in arrays]
    if missing:
        raise DanceFileError(f"{path} is not a Choreo dance (no {', '.join(missing)})")
    rot = np.asarray(arrays["rotations"], dtype=np.float32)
    root = np.asarray(arrays["root_translation"], dtype=np.float32)
    if rot.ndim != 3 or rot.shape[1:] != (24, 4) or root.shape != (rot.shape[0], 3) or rot.shape[0] == 0:
        raise DanceFileError(f"{path}: rotations {rot.shape} and root_translation {root.shape} are not "
                             "(T, 24, 4) and (T, 3) with T > 0")
    if "joint_names" in arrays and tuple(str(n) for n in arrays["joint_names"]) != JOINT_NAMES:
        raise DanceFileError(f"{path}: joint_names are not the SMPL order")
    fps = float(np.asarray(arrays["fps"]).reshape(-1)[0])
    if not np.isfinite(fps) or fps <= 0:
        raise DanceFileError(f"{path}: fps {fps} is not a positive rate")
    if not (np.isfinite(rot).all() and np.isfinite(root).all()):
        raise DanceFileError(f"{path}: the motion has NaN or infinite values")
    names = tuple(str(n) for n in arrays.get("contact_names", ()))
    contacts = np.asarray(arrays.get("contacts", np.zeros((rot.shape[0], 0))), dtype=np.float32)
    if contacts.shape != (rot.shape[0], len(names)):
        names, contacts = (), np.zeros((rot.shape[0], 0), dtype=np.float32)
    norms = np.linalg.norm(rot, axis=-1, keepdims=True)
    return Dance(rotations=(rot / np.maximum(norms, 1e-12)).astype(np.float32), root=root, fps=fps,
                 contacts=contacts, contact_names=names, name=os.path.splitext(os.path.basename(path))[0])


__all__ = ["Dance", "DanceFileError", "read_npz"]
