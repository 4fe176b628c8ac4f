"""The skeleton the wire's rotations refer to: SMPL's 24 joints, Z-up, metres.

A ``motion_chunk`` carries one local rotation per joint in this order, each relative
to the parent joint, with every joint's rest orientation equal to the world axes.
Both sides need these facts (the backend for forward kinematics, the Blender add-on
to build its rig and to retarget), so they live here, in the package both import,
and nowhere else.

Source of the numbers: the SMPL model (Loper et al., SIGGRAPH Asia 2015), zero
shape, as tabulated in ``shared/data/smpl_skeleton.json`` (joint order, parents,
rest offsets in SMPL's native Y-up frame, pelvis rest position). They are the
figures the music-to-dance literature (AIST++, EDGE, POPDG) uses.

The Y-up numbers are converted once to Z-up by +90 degrees about X, ``(x, y, z) ->
(x, -z, y)``: up stays up and the character faces -Y, as a Blender character does
(the same matrix as ``backend.conventions.Y_UP_TO_Z_UP``; a test checks they agree).
"""

from __future__ import annotations

import numpy as np

JOINT_NAMES: tuple[str, ...] = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee",
    "spine2", "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot",
    "neck", "left_collar", "right_collar", "head", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hand", "right_hand",
)
NUM_JOINTS: int = len(JOINT_NAMES)
JOINT_INDEX: dict[str, int] = {name: i for i, name in enumerate(JOINT_NAMES)}

PARENTS: tuple[int, ...] = (
    -1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21,
)

# Offsets from each joint to its parent, metres, SMPL's Y-up frame (source above).
OFFSETS_Y_UP: np.ndarray = np.array([
    [0.0, 0.0, 0.0],
    [0.05858135, -0.08228004, -0.01766408],
    [-0.06030973, -0.09051332, -0.01354254],
    [0.00443945, 0.12440352, -0.03838522],
    [0.04345142, -0.38646945, 0.008037],
    [-0.04325663, -0.38368791, -0.00484304],
    [0.00448844, 0.1379564, 0.02682033],
    [-0.01479032, -0.42687458, -0.037428],
    [0.01905555, -0.4200455, -0.03456167],
    [-0.00226458, 0.05603239, 0.00285505],
    [0.04105436, -0.06028581, 0.12204243],
    [-0.03483987, -0.06210566, 0.13032329],
    [-0.0133902, 0.21163553, -0.03346758],
    [0.07170245, 0.11399969, -0.01889817],
    [-0.08295366, 0.11247234, -0.02370739],
    [0.01011321, 0.08893734, 0.05040987],
    [0.12292141, 0.04520509, -0.019046],
    [-0.11322832, 0.04685326, -0.00847207],
    [0.2553319, -0.01564902, -0.02294649],
    [-0.26012748, -0.01436928, -0.03126873],
    [0.26570925, 0.01269811, -0.00737473],
    [-0.26910836, 0.00679372, -0.00602676],
    [0.08669055, -0.01063603, -0.01559429],
    [-0.0887537, -0.00865157, -0.01010708],
])
PELVIS_REST_POSITION_Y_UP: np.ndarray = np.array([-0.00217368, -0.24078914, 0.02858379])
"""Pelvis joint of the zero-shape SMPL body at zero translation (Y-up, metres)."""

OFFSETS: np.ndarray = np.stack([OFFSETS_Y_UP[:, 0], -OFFSETS_Y_UP[:, 2], OFFSETS_Y_UP[:, 1]], axis=1)
"""Rest offsets to the parent, metres, Z-up: the skeleton both sides use."""

SOLE_BELOW_FOOT_JOINT: float = 0.02
"""Our estimate (metres) of how far the soles of SMPL's zero-shape body lie below its
lowest joints, the toe bases, in the rest pose. It fixes where the floor is."""


def rest_joint_positions() -> np.ndarray:
    """World positions (24, 3) of the rest pose with the pelvis at the origin."""
    positions = np.zeros((NUM_JOINTS, 3))
    for joint, parent in enumerate(PARENTS):
        if parent >= 0:
            positions[joint] = positions[parent] + OFFSETS[joint]
    return positions


PELVIS_REST_HEIGHT: float = float(-rest_joint_positions()[:, 2].min() + SOLE_BELOW_FOOT_JOINT)
"""Height of the pelvis above the floor when the body stands in the rest pose (~0.98 m).

Root position in every motion is the pelvis's world position, so a rest pose
at root (0, 0, PELVIS_REST_HEIGHT) stands with its soles on z = 0.
"""

LEG_LENGTH: float = float(np.linalg.norm(OFFSETS[4]) + np.linalg.norm(OFFSETS[7]))
"""Rest length of a leg from hip to ankle (hip->knee, knee->ankle), used to scale root
motion between bodies."""
