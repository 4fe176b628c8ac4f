"""Wire motion to and from the built-in SMPL rig's channels (pure numpy).

The built-in rig is made so that the wire's numbers apply directly: bones are named
after the SMPL joints, every bone's rest orientation is the world axes (as the
wire's local rotations assume), and the pelvis bone's head stands at the pelvis's
rest position. So a joint's quaternion is its pose bone's ``rotation_quaternion``
unchanged, and the root translation is the pelvis bone's location plus its rest head.
"""

from __future__ import annotations

import numpy as np

from ..protocol.skeleton import JOINT_NAMES, PELVIS_REST_HEIGHT, rest_joint_positions

PELVIS_REST_HEAD: np.ndarray = np.array([0.0, 0.0, PELVIS_REST_HEIGHT])
"""Where the rig's pelvis bone sits in the rest pose (soles on the floor, z = 0)."""


def rest_heads() -> np.ndarray:
    """Rest positions (24, 3) of the rig's bone heads, in the armature's space."""
    return rest_joint_positions() + PELVIS_REST_HEAD


def to_channels(rotations: np.ndarray, root: np.ndarray,
                ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per-bone quaternions and the pelvis location for ``keyframes.write_motion``."""
    rot = {name: np.asarray(rotations[:, j]) for j, name in enumerate(JOINT_NAMES)}
    return rot, {JOINT_NAMES[0]: np.asarray(root, dtype=np.float64) - PELVIS_REST_HEAD}


def from_channels(rotations: dict[str, np.ndarray], locations: dict[str, np.ndarray],
                  ) -> tuple[np.ndarray, np.ndarray]:
    """The inverse of ``to_channels``: wire arrays (T, 24, 4) and (T, 3), float32."""
    rot = np.stack([rotations[name] for name in JOINT_NAMES], axis=1).astype(np.float32)
    root = (np.asarray(locations[JOINT_NAMES[0]]) + PELVIS_REST_HEAD).astype(np.float32)
    return rot, root
