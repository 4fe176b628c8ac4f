"""Left-right mirror images of dances, to double a motion library for free.

A dance reflected in a mirror is still a dance (a turn to the left becomes one to
the right, a step with the left foot one with the right). We reflect the world
across the plane x = 0: in our Z-up convention a character in its rest pose faces
-Y with its left along +X, so that plane is the body's sagittal plane at rest and
the reflection ``S = diag(-1, 1, 1)`` turns a left side into a right side.

* Positions: ``p -> S p`` (the root's x is negated).
* Rotations: a rotation ``R`` seen in the mirror is ``S R S`` (a proper rotation
  again, since S is applied twice). For a unit quaternion (w, x, y, z) that is
  (w, x, -y, -z): the axis is reflected as a pseudo-vector (the x component, the
  one along the mirror's normal, is kept; the in-plane ones flip).
* Joints: the mirror of the left knee's motion is the right knee's, so each local
  rotation moves to its left-right partner (SMPL's tree is symmetric: partners
  have partner parents), and so do the contact columns.

Then the mirrored clip's global joint rotations are ``S G_partner S`` exactly, and
its joint positions are ``S p_partner`` on any left-right symmetric skeleton. SMPL's
own zero-shape rest offsets are not quite symmetric (left and right bones differ by
up to 1 cm in length and 5 degrees in direction), so on SMPL the mirrored positions
match the reflected ones to that extent, not exactly: no choice of rotations can
turn a 1 cm shorter bone into a longer one.
"""

from __future__ import annotations

import numpy as np

from backend.motion.clip import MotionClip
from backend.motion.skeleton import JOINT_INDEX, JOINT_NAMES, PARENTS

MIRROR = np.diag([-1.0, 1.0, 1.0])
"""The reflection across the plane x = 0 (Z-up world; the body's left is +X)."""

_QUATERNION_SIGNS = np.array([1.0, 1.0, -1.0, -1.0])
"""(w, x, y, z) -> (w, x, -y, -z): the quaternion of ``MIRROR @ R @ MIRROR``."""


def partner_name(name: str) -> str:
    """The left-right partner of a joint name (a centre joint is its own partner)."""
    for this, other in (("left_", "right_"), ("right_", "left_")):
        if name.startswith(this):
            return other + name[len(this):]
    return name


def partner_joints() -> np.ndarray:
    """(24,) index of each SMPL joint's left-right partner."""
    partners = np.array([JOINT_INDEX[partner_name(n)] for n in JOINT_NAMES])
    # The swap is only a mirror if partners hang from partners; SMPL's tree does.
    assert all(PARENTS[partners[j]] == (partners[p] if p >= 0 else -1)
               for j, p in enumerate(PARENTS)), "SMPL tree is not left-right symmetric"
    return partners


def mirror_quaternions(quaternions: np.ndarray) -> np.ndarray:
    """(..., 4) w-first unit quaternions of R -> those of ``MIRROR @ R @ MIRROR``.

    w is unchanged, so the w >= 0 convention is kept.
    """
    return np.asarray(quaternions) * _QUATERNION_SIGNS


def mirror_clip(clip: MotionClip) -> MotionClip:
    """The left-right mirror image of a dance: the world reflected across x = 0, left
    and right joints (rotations and contact columns) swapped. Mirroring twice gives
    the clip back exactly."""
    partners = partner_joints()
    rotations = mirror_quaternions(clip.rotations[:, partners])
    root = clip.root_translation @ MIRROR  # MIRROR is symmetric: row vectors times S
    unpaired = [n for n in clip.contact_names if partner_name(n) not in clip.contact_names]
    if unpaired:
        raise ValueError(f"cannot mirror contacts {unpaired}: their partner columns are missing")
    columns = [clip.contact_names.index(partner_name(n)) for n in clip.contact_names]
    contacts = clip.contacts[:, columns] if clip.contacts is not None else None
    return MotionClip(rotations=rotations, root_translation=root, fps=clip.fps,
                      contacts=contacts, contact_names=clip.contact_names)
