"""What a "Regenerate selection" asks the backend for: frames, joints, keep-mask (pure numpy).

The backend's ``inpaint`` takes the whole current motion and a keep-mask (frames x 25:
24 joints, then the root trajectory) and regenerates what the mask does not keep.
This module turns the animator's choices (a frame range, body parts or selected
bones, keep own keyframes) into that request, in the motion's own frame numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from ..protocol.skeleton import JOINT_INDEX, JOINT_NAMES, NUM_JOINTS

ROOT_COLUMN = NUM_JOINTS
"""The keep-mask's last column: the root (pelvis) trajectory (docs/protocol.md#inpaint)."""

BODY_PARTS: dict[str, tuple[str, ...]] = {
    "LEGS": ("pelvis", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
             "right_ankle", "left_foot", "right_foot"),
    "TORSO": ("spine1", "spine2", "spine3"),
    "ARMS": ("left_collar", "right_collar", "left_shoulder", "right_shoulder", "left_elbow",
             "right_elbow", "left_wrist", "right_wrist", "left_hand", "right_hand"),
    "HEAD": ("neck", "head"),
}
"""Body parts the panel offers. The pelvis belongs to the legs: regenerating the legs
regenerates where the body travels too (the root), so the feet can stay planted."""

assert sorted(sum(BODY_PARTS.values(), ())) == sorted(JOINT_NAMES)


class EditPlanError(ValueError):
    """A regeneration that cannot be asked for (empty range, nothing chosen...)."""


@dataclass(frozen=True)
class EditPlan:
    """Regenerate ``joints`` over motion frames [first, stop); ``root`` too if set."""

    first: int
    stop: int
    joints: tuple[str, ...]
    root: bool
    keyframes: tuple[int, ...] = ()

    def keep_mask(self, frames: int) -> np.ndarray:
        """(frames, 25) bools: True where the backend must keep the current motion."""
        keep = np.ones((frames, NUM_JOINTS + 1), dtype=bool)
        columns = [JOINT_INDEX[name] for name in self.joints] + ([ROOT_COLUMN] if self.root else [])
        keep[self.first:self.stop, columns] = False
        return keep


def joints_for(parts: Iterable[str] = (), bones: Iterable[str] = ()) -> tuple[str, ...]:
    """SMPL joints from body-part names and/or joint names, in skeleton order."""
    chosen: set[str] = set()
    for part in parts:
        if part not in BODY_PARTS:
            raise EditPlanError(f"unknown body part {part!r}; choose from {sorted(BODY_PARTS)}")
        chosen.update(BODY_PARTS[part])
    for bone in bones:
        if bone not in JOINT_INDEX:
            raise EditPlanError(f"{bone!r} is not an SMPL joint")
        chosen.add(bone)
    return tuple(name for name in JOINT_NAMES if name in chosen)


def plan_edit(motion_first_frame: int, motion_frames: int, range_first: int, range_last: int,
              joints: Sequence[str], keyframe_frames: Iterable[int] = ()) -> EditPlan:
    """The edit for scene frames [range_first, range_last] (inclusive, as Blender ranges are).

    The range is clipped to the motion; animator keyframes inside it (scene frames)
    become kept poses, except on the range's first and last frames, which the
    backend's border joins already tie to the kept motion.
    """
    if not joints:
        raise EditPlanError("nothing to regenerate: choose body parts or select bones")
    first = max(range_first, motion_first_frame) - motion_first_frame
    stop = min(range_last + 1, motion_first_frame + motion_frames) - motion_first_frame
    if stop - first < 2:
        raise EditPlanError(f"the range {range_first}-{range_last} does not overlap the dance "
                            f"(frames {motion_first_frame}-{motion_first_frame + motion_frames - 1}) "
                            "by 2 frames or more")
    keys = tuple(sorted({int(f) - motion_first_frame for f in keyframe_frames
                         if first < int(f) - motion_first_frame < stop - 1}))
    return EditPlan(first, stop, tuple(joints), "pelvis" in joints, keys)


def range_from_markers(marker_frames: Sequence[int], current: int) -> tuple[int, int]:
    """The span between the two markers around ``current`` (or the two selected ones)."""
    frames = sorted(set(int(f) for f in marker_frames))
    if len(frames) < 2:
        raise EditPlanError("need two timeline markers to bound the range")
    if len(frames) == 2:
        return frames[0], frames[1]
    before = [f for f in frames if f <= current]
    after = [f for f in frames if f > current]
    if not before or not after:
        raise EditPlanError("the current frame is not between two markers")
    return before[-1], after[0]
