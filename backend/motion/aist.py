"""AIST++ motion importer and dataset folder reader.

AIST++ (Li et al., ICCV 2021) stores each dance as a pickle holding a dict of numpy
arrays: ``smpl_poses`` (N, 72) axis-angle local rotations of the 24 SMPL joints,
``smpl_trans`` (N, 3) translation and ``smpl_scaling`` (1,), at 60 fps, in SMPL's
Y-up frame, the translation in the scaled units (body size times ``smpl_scaling``).

Conversion to a ``MotionClip`` (Z-up, metres, 30 fps, root = pelvis position):

* every 2nd frame (60 -> 30 fps, no smoothing);
* local rotations conjugated into Z-up: ``R' = C R C^T`` with ``C = Y_UP_TO_Z_UP``;
* pelvis position ``C @ (trans / scaling + PELVIS_REST_POSITION_Y_UP)``: SMPL rotates
  the body about the pelvis joint, which sits at its rest position plus the
  translation;
* put on the floor by ``contacts.floor_offset`` (a standing rest pose ends up with its
  pelvis at ``PELVIS_REST_HEIGHT``), then contact labels.

The pickles are read with a restricted unpickler that can only rebuild numpy arrays,
dtypes and scalars inside plain containers, so a hostile file cannot run code.

Folder layout (the official release plus the AIST Dance DB music)::

    <root>/motions/<sequence>.pkl   e.g. gBR_sBM_cAll_d04_mBR0_ch01.pkl
    <root>/wavs/<music_id>.wav      e.g. mBR0.wav (the m... token of the name)
    <root>/ignore_list.txt          sequences with bad fits, one name a line (optional)
"""

from __future__ import annotations

import io
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from backend.conventions import Y_UP_TO_Z_UP
from backend.motion import rotations as rot
from backend.motion.clip import MotionClip
from backend.motion.contacts import grounded_clip
from backend.motion.skeleton import BODY_CONTACT_JOINTS, NUM_JOINTS, PELVIS_REST_POSITION_Y_UP
from backend.errors import InputError

AIST_FPS: int = 60
AUDIO_EXTENSIONS: tuple[str, ...] = (".wav", ".ogg", ".flac", ".mp3")


class AistError(InputError):
    """An AIST++ file or folder we cannot use; ``code`` is a stable identifier."""


_ALLOWED_GLOBALS = {
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),  # how pickle protocols 0-2 spell the bytes inside an array
}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Rebuilds numpy arrays and nothing else that could be called."""

    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise AistError("forbidden_pickle", f"pickle refers to {module}.{name}, "
                            "which an AIST++ motion file never needs")
        if module.startswith("numpy.core.") and hasattr(np, "_core"):
            module = "numpy._core." + module[len("numpy.core."):]  # numpy 2 moved it
        return super().find_class(module, name)


def read_aist_pickle(path: str | Path) -> dict[str, np.ndarray]:
    """The dict of arrays in an AIST++ motion pickle, read without running any code."""
    path = Path(path)
    try:
        data = _NumpyOnlyUnpickler(io.BytesIO(path.read_bytes())).load()
    except AistError as exc:
        raise AistError(exc.code, f"{path}: {exc}") from None
    except OSError as exc:
        raise AistError("unreadable", f"{path}: cannot read ({exc})") from exc
    except Exception as exc:  # truncated or not a pickle at all
        raise AistError("bad_pickle", f"{path}: not a readable AIST++ pickle ({exc})") from exc
    if not isinstance(data, dict):
        raise AistError("bad_pickle", f"{path}: expected a dict of arrays, got {type(data).__name__}")
    return data


def aist_to_clip(
    poses: np.ndarray, trans: np.ndarray, scaling: float | np.ndarray,
    source_fps: float = AIST_FPS, fps: float = 30,
    contact_joints: tuple[int, ...] = BODY_CONTACT_JOINTS, place_on_floor: bool = True,
) -> MotionClip:
    """Convert AIST++ arrays (Y-up, scaled units, 60 fps) to a MotionClip (module docstring)."""
    poses = np.asarray(poses, dtype=np.float64)
    trans = np.asarray(trans, dtype=np.float64)
    scale = float(np.asarray(scaling, dtype=np.float64).reshape(-1)[0])
    if poses.ndim != 2 or poses.shape[1] != NUM_JOINTS * 3:
        raise AistError("bad_shape", f"smpl_poses must be (N, {NUM_JOINTS * 3}), got {poses.shape}")
    if trans.shape != (poses.shape[0], 3):
        raise AistError("bad_shape", f"smpl_trans must be ({poses.shape[0]}, 3), got {trans.shape}")
    if poses.shape[0] == 0:
        raise AistError("empty", "motion has no frames")
    if not np.isfinite(scale) or scale <= 0:
        raise AistError("bad_scaling", f"smpl_scaling must be positive, got {scale}")
    step = int(round(source_fps / fps)) if fps > 0 else 0
    if step < 1 or abs(source_fps / fps - step) > 1e-6:
        raise AistError("bad_fps", f"cannot take every k-th frame from {source_fps} to {fps} fps")
    poses, trans = poses[::step], trans[::step]

    c = Y_UP_TO_Z_UP
    local = rot.np_.axis_angle_to_matrix(poses.reshape(-1, NUM_JOINTS, 3))
    local = c @ local @ c.T
    root = (trans / scale + PELVIS_REST_POSITION_Y_UP) @ c.T
    return grounded_clip(rot.np_.matrix_to_quaternion(local), root, fps, contact_joints,
                         place_on_floor)


def load_aist_motion(path: str | Path, **kwargs) -> MotionClip:
    """Read one AIST++ motion pickle as a MotionClip (kwargs go to ``aist_to_clip``)."""
    data = read_aist_pickle(path)
    missing = [k for k in ("smpl_poses", "smpl_trans", "smpl_scaling") if k not in data]
    if missing:
        raise AistError("missing_key", f"{path}: AIST++ motion lacks {missing}")
    try:
        return aist_to_clip(data["smpl_poses"], data["smpl_trans"], data["smpl_scaling"], **kwargs)
    except AistError as exc:
        raise AistError(exc.code, f"{path}: {exc}") from None


def music_id(sequence: str) -> str:
    """The music token of an AIST++ sequence name: ``gBR_sBM_cAll_d04_mBR0_ch01`` -> ``mBR0``."""
    for token in sequence.split("_"):
        if len(token) > 1 and token[0] == "m" and token[1].isupper():
            return token
    raise AistError("bad_sequence_name", f"no music token (m...) in sequence name {sequence!r}")


@dataclass(frozen=True)
class AistSequence:
    name: str
    motion_path: Path
    audio_path: Path


def is_aist_folder(root: str | Path) -> bool:
    root = Path(root)
    return (root / "motions").is_dir() and any((root / "motions").glob("*.pkl"))


def list_aist_sequences(root: str | Path) -> tuple[list[AistSequence], list[str]]:
    """Sequences of an AIST++ folder that have music, minus the ignore list.

    Returns the usable sequences (sorted by name) and the names skipped for lack of a
    music file, so callers can tell the user.
    """
    root = Path(root)
    if not is_aist_folder(root):
        raise AistError("not_aist_folder", f"{root}: no motions/*.pkl, so not an AIST++ folder")
    ignore_file = root / "ignore_list.txt"
    ignored = set(ignore_file.read_text().split()) if ignore_file.is_file() else set()
    found, no_music = [], []
    for motion in sorted((root / "motions").glob("*.pkl")):
        if motion.stem in ignored:
            continue
        music = music_id(motion.stem)
        audio = next((root / "wavs" / (music + ext) for ext in AUDIO_EXTENSIONS
                      if (root / "wavs" / (music + ext)).is_file()), None)
        if audio is None:
            no_music.append(motion.stem)
        else:
            found.append(AistSequence(motion.stem, motion, audio))
    return found, no_music
