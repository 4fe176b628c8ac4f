"""The keep-mask that describes every edit, its presets, and the checks on an edit.

An edit is one boolean array ``keep`` of shape (frames, 25): column ``j < 24`` is SMPL
joint ``j``'s local rotation, column 24 (``ROOT_COLUMN``) the root translation. True
keeps the current value exactly; False regenerates it. Every mode an animator asks
for is a preset over that one mask:

* range: regenerate frames [a, b) (``range_mask``);
* in-between: keep a head and a tail, fill the middle (``in_between``);
* continuation: keep a prefix, generate what follows (``continuation``);
* body part: regenerate some joints (``JOINT_SETS`` or names), with or without the
  root trajectory, over a range (``range_mask(joints=..., root=...)``);
* keyframes: poses to hit inside a regenerated range are kept whole frames
  (``keep_frames``).

Contacts follow the frame: a frame's contact labels are kept when all of its 25
columns are, else the model makes new ones.

What a model can honour differs (an autoregressive model cannot keep the arms while
it changes the legs of the same frames), so ``required_abilities`` names what a mask
asks for and ``check_abilities`` refuses what a model does not advertise, instead of
silently ignoring part of the mask.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from backend.errors import InputError
from backend.motion.skeleton import JOINT_INDEX, JOINT_NAMES, LOWER_BODY, NUM_JOINTS, UPPER_BODY

ROOT_COLUMN = NUM_JOINTS
MASK_COLUMNS = NUM_JOINTS + 1

ALL_JOINTS: tuple[int, ...] = tuple(range(NUM_JOINTS))
JOINT_SETS: dict[str, tuple[int, ...]] = {"upper": UPPER_BODY, "lower": LOWER_BODY, "all": ALL_JOINTS}
"""Named joint sets for body-part edits. ``lower`` holds the pelvis and legs, ``upper``
the spine, neck, head and arms (backend.motion.skeleton)."""

ABILITIES: tuple[str, ...] = ("continuation", "range", "joints", "keyframes")
"""What a generator may advertise under ``describe()["editing"]["abilities"]``:

* continuation: regenerate everything after some frame (a prefix is kept);
* range: regenerate a span with kept frames after it (in-between is a range);
* joints: keep some columns of a frame while regenerating others (body part);
* keyframes: kept frames strictly inside the regenerated span."""

MAX_ROOT_METRES = 1000.0
"""A root farther than this from the origin is a unit mistake (centimetres?), not a dance."""

UNIT_TOLERANCE = 1e-2
"""How far a kept quaternion's norm may stray from 1 (float32 from any DCC tool is far closer)."""


class EditError(InputError):
    """An edit request that cannot be used: bad_motion, bad_mask, bad_range or unsupported_edit."""


# -- presets -------------------------------------------------------------------------


def keep_all(frames: int) -> np.ndarray:
    """A mask that keeps everything (the start of every preset)."""
    return np.ones((frames, MASK_COLUMNS), dtype=bool)


def range_mask(frames: int, first: int, stop: int, joints: Sequence[int] = ALL_JOINTS,
               root: bool = True) -> np.ndarray:
    """Regenerate ``joints`` (and the root translation if ``root``) over frames [first, stop)."""
    check_frame_range(first, stop, frames)
    keep = keep_all(frames)
    columns = list(joints) + ([ROOT_COLUMN] if root else [])
    keep[first:stop, columns] = False
    return keep


def in_between(frames: int, head: int, tail: int) -> np.ndarray:
    """Keep the first ``head`` and the last ``tail`` frames, regenerate the middle."""
    return range_mask(frames, head, frames - tail)


def continuation(frames: int, prefix: int) -> np.ndarray:
    """Keep the first ``prefix`` frames, regenerate everything after them."""
    return range_mask(frames, prefix, frames)


def keep_frames(keep: np.ndarray, frames: Iterable[int]) -> np.ndarray:
    """A copy of ``keep`` that also keeps whole poses at ``frames`` (keyframes to hit)."""
    out = np.array(keep, dtype=bool)
    for f in frames:
        if not 0 <= f < out.shape[0]:
            raise EditError("bad_range", f"keyframe {f} is outside the motion's frames [0, {out.shape[0]})")
        out[f] = True
    return out


def parse_joints(spec: str) -> tuple[tuple[int, ...], bool]:
    """``"upper"``, ``"lower"``, ``"all"`` or joint names, comma-separated, plus the word
    ``root`` to regenerate the root translation too -> (joint indices, root)."""
    joints: list[int] = []
    root = False
    for word in (w.strip() for w in spec.split(",")):
        if word == "root":
            root = True
        elif word in JOINT_SETS:
            joints.extend(JOINT_SETS[word])
        elif word in JOINT_INDEX:
            joints.append(JOINT_INDEX[word])
        else:
            raise EditError("bad_mask", f"unknown joint or joint set {word!r}; use "
                            f"{sorted(JOINT_SETS)}, 'root', or SMPL joint names ({', '.join(JOINT_NAMES)})")
    if not joints and not root:
        raise EditError("bad_mask", "no joints given")
    return tuple(sorted(set(joints))), root


def parse_frame_range(text: str, frames: int) -> tuple[int, int]:
    """``"A:B"`` (``A:`` to the end, ``:B`` from the start) -> (A, B), checked against the motion."""
    parts = text.split(":")
    try:
        if len(parts) != 2:
            raise ValueError
        first = int(parts[0]) if parts[0].strip() else 0
        stop = int(parts[1]) if parts[1].strip() else frames
    except ValueError:
        raise EditError("bad_range", f"frames must look like A:B (frame numbers), got {text!r}") from None
    check_frame_range(first, stop, frames)
    return first, stop


def check_frame_range(first: int, stop: int, frames: int) -> None:
    if not 0 <= first < stop <= frames:
        raise EditError("bad_range", f"frames {first}:{stop} are not a non-empty range inside the "
                        f"motion's {frames} frames")


# -- what a mask asks for ------------------------------------------------------------


def contacts_kept(keep: np.ndarray) -> np.ndarray:
    """(T,) bool: frames whose contact labels are kept (all 25 columns kept)."""
    return keep.all(axis=1)


def edited_span(keep: np.ndarray) -> tuple[int, int]:
    """[first, stop) of the frames where anything is regenerated (the frames an edit returns)."""
    frames = np.flatnonzero(~keep.all(axis=1))
    if frames.size == 0:
        raise EditError("bad_mask", "the mask keeps everything: nothing to regenerate")
    return int(frames[0]), int(frames[-1]) + 1


def required_abilities(keep: np.ndarray) -> set[str]:
    """The ``ABILITIES`` a model needs to honour ``keep`` exactly."""
    first, stop = edited_span(keep)
    whole = keep.all(axis=1)
    needed = {"range" if stop < keep.shape[0] else "continuation"}
    if (keep.any(axis=1) & ~whole)[first:stop].any():
        needed.add("joints")
    if whole[first:stop].any():
        needed.add("keyframes")
    return needed


def check_abilities(model: str, abilities: Iterable[str], keep: np.ndarray) -> None:
    """Refuse, naming what is missing, a mask that model cannot honour (never ignore it)."""
    missing = sorted(required_abilities(keep) - set(abilities))
    if missing:
        why = {"continuation": "continue a kept prefix",
               "range": "regenerate a span with kept frames after it",
               "joints": "keep some joints while it regenerates others in the same frames",
               "keyframes": "hit kept frames inside the regenerated span"}
        raise EditError("unsupported_edit", f"model {model!r} cannot "
                        + "; nor ".join(why[m] for m in missing)
                        + f" (it can: {sorted(abilities) or 'no editing'})")


# -- checks on a request -------------------------------------------------------------


def _finite(name: str, array: np.ndarray) -> None:
    bad = ~np.isfinite(array)
    if bad.any():
        frame = int(np.argwhere(bad)[0][0])
        raise EditError("bad_motion", f"{name} has a NaN or infinite value (first at frame {frame})")


def check_motion(rotations: np.ndarray, root: np.ndarray, contacts: np.ndarray | None,
                 contact_count: int | None) -> int:
    """Check the current motion's arrays; returns its frame count.

    rotations (T, 24, 4) unit quaternions w-first, root (T, 3) metres, contacts (T, C)
    or None (``contact_count`` is the model's C; None skips that check).
    """
    rotations, root = np.asarray(rotations), np.asarray(root)
    if rotations.ndim != 3 or rotations.shape[1:] != (NUM_JOINTS, 4) or rotations.shape[0] < 1:
        raise EditError("bad_motion", f"rotations must be (frames, {NUM_JOINTS}, 4) with frames >= 1, "
                        f"got {rotations.shape}")
    frames = rotations.shape[0]
    if root.shape != (frames, 3):
        raise EditError("bad_motion", f"root_translation must be ({frames}, 3) like the rotations, "
                        f"got {root.shape}")
    _finite("rotations", rotations)
    _finite("root_translation", root)
    if np.abs(rotations).max() > 2.0:
        raise EditError("bad_motion", "rotations must be unit quaternions (w, x, y, z); a component "
                        "is larger than 2")
    if np.abs(root).max() > MAX_ROOT_METRES:
        raise EditError("bad_motion", f"root_translation is in metres; a value beyond "
                        f"{MAX_ROOT_METRES:g} m is not a dance (centimetres sent?)")
    if contacts is not None:
        contacts = np.asarray(contacts)
        if contacts.ndim != 2 or contacts.shape[0] != frames or (
                contact_count is not None and contacts.shape[1] != contact_count):
            raise EditError("bad_motion", f"contacts must be ({frames}, {contact_count}) for this model, "
                            f"got {contacts.shape}")
        _finite("contacts", contacts)
        if contacts.size and (contacts.min() < 0.0 or contacts.max() > 1.0):
            raise EditError("bad_motion", "contacts are probabilities and must lie in [0, 1]")
    return frames


def check_keep(keep: np.ndarray, frames: int) -> np.ndarray:
    """The keep-mask as a bool array, checked against the motion's frame count."""
    keep = np.asarray(keep)
    if keep.shape != (frames, MASK_COLUMNS):
        raise EditError("bad_mask", f"keep must be (frames, {MASK_COLUMNS}) = ({frames}, {MASK_COLUMNS}) "
                        f"for this motion (24 joints + root), got {keep.shape}")
    if keep.dtype != bool:
        if keep.dtype.kind not in "iu" or not np.isin(keep, (0, 1)).all():
            raise EditError("bad_mask", f"keep must be booleans (|b1, or |u1 holding 0 and 1), "
                            f"got {keep.dtype}")
        keep = keep.astype(bool)
    else:
        keep = keep.view(np.uint8) != 0  # a bool byte other than 0/1 off the wire is True
    edited_span(keep)  # refuses a mask that regenerates nothing
    return keep


def check_unit(rotations: np.ndarray, keep: np.ndarray) -> None:
    """Kept rotations are returned as sent, so they must already be unit quaternions."""
    norms = np.linalg.norm(np.asarray(rotations, dtype=np.float64), axis=-1)
    bad = keep[:, :NUM_JOINTS] & (np.abs(norms - 1.0) > UNIT_TOLERANCE)
    if bad.any():
        frame, joint = (int(i) for i in np.argwhere(bad)[0])
        raise EditError("bad_motion", f"kept rotation of {JOINT_NAMES[joint]} at frame {frame} is not a "
                        f"unit quaternion (norm {norms[frame, joint]:.4f})")


def apply_keyframes(rotations: np.ndarray, root: np.ndarray, keep: np.ndarray,
                    frames: np.ndarray, key_rotations: np.ndarray,
                    key_root: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Write keyframe poses into copies of the motion and keep those frames whole.

    frames (K,) ints inside the regenerated span of ``keep`` (``edited_span``, taken
    before the keyframes are added: the span the server returns), unique;
    key_rotations (K, 24, 4); key_root (K, 3).
    """
    frames = np.asarray(frames)
    k = frames.shape[0] if frames.ndim == 1 else -1
    if frames.ndim != 1 or frames.dtype.kind not in "iu":
        raise EditError("bad_mask", f"keyframe_frames must be a 1-D integer array, got "
                        f"{frames.dtype}{list(frames.shape)}")
    if np.asarray(key_rotations).shape != (k, NUM_JOINTS, 4) or np.asarray(key_root).shape != (k, 3):
        raise EditError("bad_motion", f"{k} keyframes need keyframe_rotations ({k}, {NUM_JOINTS}, 4) and "
                        f"keyframe_root_translation ({k}, 3), got {np.asarray(key_rotations).shape} and "
                        f"{np.asarray(key_root).shape}")
    if k == 0:
        return np.array(rotations, dtype=np.float32), np.array(root, dtype=np.float32), keep
    if len(set(frames.tolist())) != k:
        raise EditError("bad_mask", "keyframe_frames has the same frame twice")
    first, stop = edited_span(keep)
    outside = [int(f) for f in frames if not first <= f < stop]
    if outside:
        raise EditError("bad_range", f"keyframes {outside[:5]} are outside the regenerated frames "
                        f"[{first}, {stop}); a keyframe is a pose to hit inside them")
    check_motion(key_rotations, key_root, None, None)
    keep = keep_frames(keep, frames.tolist())
    rotations, root = np.array(rotations, dtype=np.float32), np.array(root, dtype=np.float32)
    rotations[frames] = key_rotations
    root[frames] = key_root
    return rotations, root, keep


def restore_kept(first: int, rotations: np.ndarray, root: np.ndarray, contacts: np.ndarray,
                 keep: np.ndarray, current_rotations: np.ndarray, current_root: np.ndarray,
                 current_contacts: np.ndarray | None) -> None:
    """Copy the kept values of frames [first, first + n) back, bit for bit, in place.

    Whatever a model returns, a kept joint, root or contact leaves the server exactly as
    the client sent it; the server applies this to every chunk of every model.
    """
    n = rotations.shape[0]
    k = keep[first:first + n]
    joints = k[:, :NUM_JOINTS]
    rotations[joints] = current_rotations[first:first + n][joints]
    rooted = k[:, ROOT_COLUMN]
    root[rooted] = current_root[first:first + n][rooted]
    if current_contacts is not None:
        whole = contacts_kept(k)
        contacts[whole] = current_contacts[first:first + n][whole]


def match_hemispheres(first: int, rotations: np.ndarray, keep: np.ndarray,
                      previous: np.ndarray | None) -> None:
    """Flip regenerated quaternions of frames [first, first + n), in place, so each lies in
    the hemisphere of the frame before (``previous``: (24, 4), the frame before ``first``).

    q and -q are one rotation, but keys that jump between them interpolate the long way
    round. Kept quaternions are never touched (they go back bit for bit), so the
    regenerated ones follow them.
    """
    regenerated = ~keep[first:first + rotations.shape[0], :NUM_JOINTS]
    for i in range(rotations.shape[0]):
        before = previous if i == 0 else rotations[i - 1]
        if before is None:
            continue
        flip = regenerated[i] & (np.sum(rotations[i] * before, axis=-1) < 0)
        rotations[i, flip] *= -1.0
