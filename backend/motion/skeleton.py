"""The SMPL 24-joint skeleton, in the backend's Z-up convention.

The joint order, parents and rest offsets are part of the wire format, so they live
in ``protocol.skeleton`` (with their source) and are re-exported here; this module
adds the backend's own groupings (body halves, contact joints).
"""

from __future__ import annotations

import numpy as np

from backend.conventions import Y_UP_TO_Z_UP
# The facts the wire refers to live in the protocol package (both sides import it).
from protocol.skeleton import (  # noqa: F401  (re-exported for backend modules)
    JOINT_INDEX, JOINT_NAMES, LEG_LENGTH, NUM_JOINTS, OFFSETS, OFFSETS_Y_UP, PARENTS,
    PELVIS_REST_HEIGHT, PELVIS_REST_POSITION_Y_UP, SOLE_BELOW_FOOT_JOINT, rest_joint_positions,
)

assert np.allclose(OFFSETS, OFFSETS_Y_UP @ Y_UP_TO_Z_UP.T), "protocol.skeleton disagrees with conventions"

LOWER_BODY: tuple[int, ...] = (0, 1, 2, 4, 5, 7, 8, 10, 11)
UPPER_BODY: tuple[int, ...] = (3, 6, 9, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23)
"""The lower/upper split the literature uses for joint-wise editing (EDGE)."""

FOOT_CONTACT_JOINTS: tuple[int, ...] = (7, 10, 8, 11)
"""left_ankle, left_foot (toe base), right_ankle, right_foot: EDGE's 4 contact joints."""
BODY_CONTACT_JOINTS: tuple[int, ...] = (7, 8, 10, 11, 15, 20, 21, 22, 23)
"""POPDG's 9 body-contact joints: ankles, feet, head, wrists, hands."""
