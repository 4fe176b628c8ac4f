"""What the autoregressive generators (FACT, DanceNet) share: where a dance starts from,
and how a regenerated range hands back to the motion after it.

An autoregressive model continues motion it is given. A new dance has none, so it
starts from ``standing_motion``: the SMPL rest pose standing on the floor, feet in
contact, facing -Y (docs/motion.md). An edit starts from the animator's own frames
before the range. A range edit must also end where the kept motion after it goes
on; ``blend_into_kept`` joins the last regenerated frames onto it with the same
bridge the diffusion edits use (``backend.editing.joins``), so every model's edits
meet their borders the same way.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from backend.editing.joins import join_runs
from backend.motion.layout import MotionLayout
from backend.motion.skeleton import NUM_JOINTS, PELVIS_REST_HEIGHT

DEFAULT_BLEND_FRAMES = 15
"""Frames over which a regenerated range blends into the kept motion after it (0.5 s)."""


def standing_motion(frames: int, layout: MotionLayout) -> Tensor:
    """(frames, C) raw layout channels of a body standing still in the rest pose.

    Every joint rotation is the identity, the pelvis at its rest height above the
    origin (soles on the floor), and every contact label 1 for joints that touch the
    floor when standing (ankles and feet), 0 for the others (head, hands).
    """
    quats = np.zeros((frames, NUM_JOINTS, 4), dtype=np.float32)
    quats[..., 0] = 1.0
    root = np.zeros((frames, 3), dtype=np.float32)
    root[:, 2] = PELVIS_REST_HEIGHT
    on_floor = np.array([name.endswith(("ankle", "foot")) for name in layout.contact_names], dtype=np.float32)
    contacts = np.repeat(on_floor[None], frames, axis=0)
    return layout.from_quaternions(quats, root, contacts)


def blend_into_kept(motion: Tensor, first: int, stop: int, blend_frames: int = DEFAULT_BLEND_FRAMES) -> Tensor:
    """Join regenerated frames [first, stop) of ``motion`` (T, C) onto the kept frames around it.

    The frames outside [first, stop) are the kept motion and are returned unchanged.
    The regenerated run's start and end are bridged onto the kept frames on either
    side (position and velocity continuous, ``join_runs``), over ``blend_frames``.
    Works on normalised channels as well as raw ones (the join is per channel).
    """
    held = torch.ones(motion.shape, dtype=torch.bool, device=motion.device)
    held[first:stop] = False
    return join_runs(motion, held, bridge=blend_frames)
