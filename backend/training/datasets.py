"""Find and load the motion/music pairs of a training dataset folder.

Three layouts are recognised, so a user can train on AIST++, on their own motion
capture, or on clips this project exported:

(a) AIST++: ``motions/*.pkl`` plus ``wavs/<music id>.wav`` (see ``motion/aist.py``);
(b) BVH + audio: ``x.bvh`` next to ``x.wav`` (or .ogg/.flac/.mp3), any skeleton a
    joint map in ``motion/joint_maps.py`` recognises from its joint names;
(c) our npz clips: ``x.npz`` next to audio with the same stem.

(b) and (c) are searched recursively and may be mixed. Every item comes back as a
MotionClip at ``fps`` (30 by default) with contact labels for ``contact_joints``, so
the trainer never sees where a clip came from. Motion files without audio are
skipped and logged; a folder with no pair at all is an error.
"""

from __future__ import annotations

import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from backend.conventions import FPS, UNKNOWN_STYLE
from backend.motion.aist import (
    AUDIO_EXTENSIONS, AistError, is_aist_folder, list_aist_sequences, load_aist_motion,
)
from backend.motion.bvh import BvhError, load_bvh_clip, resample_motion
from backend.motion.clip import MotionClip
from backend.motion.contacts import grounded_clip
from backend.motion.joint_maps import UnknownSkeletonError
from backend.motion.skeleton import BODY_CONTACT_JOINTS, JOINT_NAMES
from backend.errors import InputError

log = logging.getLogger(__name__)


class DatasetError(InputError):
    """A dataset folder we cannot use; ``code`` is a stable identifier."""


AIST_GENRES: dict[str, str] = {
    "gBR": "break", "gPO": "pop", "gLO": "lock", "gMH": "middle_hiphop", "gLH": "la_hiphop",
    "gHO": "house", "gWA": "waack", "gKR": "krump", "gJS": "street_jazz", "gJB": "ballet_jazz",
}
"""AIST++ genre codes (the first token of a sequence name), from the AIST Dance DB."""


def style_of(name: str) -> str:
    """A clip's style label, read from its name; ``UNKNOWN_STYLE`` when the name says none.

    * AIST++ ``gBR_sBM_cAll_d04_mBR0_ch01`` -> its genre (``AIST_GENRES``);
    * our procedural build: ``synth_0001_latin_93bpm`` -> the synthesised style,
      ``real_<song>_...`` (Sectoid rock/metal excerpts) -> ``"rock"``;
    * any other name: a ``style-<label>`` token (``dance_style-salsa_01``) -> that label.
    Models conditioned on style (DanceNet) learn one embedding per label found.
    """
    base = Path(name).name
    tokens = base.split("_")
    if tokens[0] in AIST_GENRES:
        return AIST_GENRES[tokens[0]]
    if tokens[0] == "synth" and len(tokens) >= 4:
        return tokens[2]
    if tokens[0] == "real":
        return "rock"
    for token in tokens:
        if token.startswith("style-") and len(token) > len("style-"):
            return token[len("style-"):].lower()
    return UNKNOWN_STYLE


@dataclass
class DanceItem:
    name: str
    motion: MotionClip
    audio_path: Path


def _audio_for(motion_path: Path) -> Path | None:
    for ext in AUDIO_EXTENSIONS:
        candidate = motion_path.with_suffix(ext)
        if candidate.is_file():
            return candidate
    return None


def _npz_clip(path: Path, fps: float, contact_joints: tuple[int, ...]) -> MotionClip:
    """An npz clip at ``fps`` with the wanted contacts (recomputed unless already those)."""
    clip = MotionClip.load_npz(path)
    wanted = tuple(JOINT_NAMES[j] for j in contact_joints)
    if abs(clip.fps - fps) < 1e-6 and clip.contact_names == wanted:
        return clip
    quats, root = clip.rotations.astype(np.float64), clip.root_translation.astype(np.float64)
    if abs(clip.fps - fps) >= 1e-6:
        quats, root = resample_motion(quats, root, clip.fps, fps)
    # Exported clips are already where their author put them: keep their height.
    return grounded_clip(quats, root, fps, contact_joints, place_on_floor=False)


def load_dance_folder(
    root: str | Path, fps: float = FPS, contact_joints: tuple[int, ...] = BODY_CONTACT_JOINTS,
) -> list[DanceItem]:
    """All motion/audio pairs under ``root``, sorted by name (see module docstring)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError("not_a_folder", f"{root} is not a folder")
    if is_aist_folder(root):
        sequences, no_music = list_aist_sequences(root)
        if no_music:
            log.warning("%s: %d AIST++ sequences have no music in wavs/ and are skipped (e.g. %s)",
                        root, len(no_music), no_music[0])
        items = []
        for seq in sequences:
            try:
                clip = load_aist_motion(seq.motion_path, fps=fps, contact_joints=contact_joints)
            except AistError as exc:
                raise DatasetError("bad_motion_file", str(exc)) from exc
            items.append(DanceItem(seq.name, clip, seq.audio_path))
    else:
        items = []
        for path in sorted(root.rglob("*")):
            if path.suffix.lower() not in (".bvh", ".npz") or not path.is_file():
                continue
            audio = _audio_for(path)
            if audio is None:
                log.warning("%s: no audio file with the same name; skipped", path)
                continue
            name = path.relative_to(root).with_suffix("").as_posix()
            try:
                if path.suffix.lower() == ".bvh":
                    clip = load_bvh_clip(path, fps=fps, contact_joints=contact_joints)
                else:
                    clip = _npz_clip(path, fps, contact_joints)
            except (BvhError, UnknownSkeletonError, ValueError, KeyError, OSError,
                    zipfile.BadZipFile) as exc:
                raise DatasetError("bad_motion_file", f"{path}: {exc}") from exc
            items.append(DanceItem(name, clip, audio))
    if not items:
        raise DatasetError(
            "no_pairs",
            f"{root}: found no motion/music pairs. Expected an AIST++ folder (motions/*.pkl and "
            f"wavs/*.wav), or .bvh / .npz files each next to audio of the same name "
            f"({', '.join(AUDIO_EXTENSIONS)})")
    return items
