"""Which joint of a source skeleton drives which SMPL joint, for the rigs we know.

A ``JointMap`` names, for one BVH rig, the source joint that corresponds to each
SMPL joint it can drive, plus the few facts the retargeter cannot read from the
file: units, up axis, and where the rig's reference pose is (see ``bvh.py``):

* ``"zero"``: the all-zero-rotation pose is the rig's rest pose (a T-pose, as in
  the files our own ``write_bvh`` produces);
* ``"first_frame"``: frame 0 is a T-pose put there for calibration, not motion;
  it becomes the reference and is dropped from the clip;
* ``"auto"``: no known rest pose; the retargeter picks the frame (or the zero
  pose) whose bone directions are closest to SMPL's rest pose.

Source joints left out of a map fold into their mapped ancestors (their rotation
is part of every mapped descendant's global rotation); SMPL joints left out get the
identity rotation relative to their parent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

from backend.motion.skeleton import JOINT_NAMES


class UnknownSkeletonError(ValueError):
    """No joint map fits a file's joint names (``code = "unknown_skeleton"``)."""

    code = "unknown_skeleton"


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: it holds a dict
class JointMap:
    name: str
    description: str
    joints: Mapping[str, str]
    """Source joint name -> SMPL joint name."""
    metres_per_unit: float
    up_axis: str = "Y"
    reference: str = "auto"

    def __post_init__(self) -> None:
        unknown = set(self.joints.values()) - set(JOINT_NAMES)
        if unknown:
            raise ValueError(f"joint map {self.name}: not SMPL joints: {sorted(unknown)}")
        if len(set(self.joints.values())) != len(self.joints):
            raise ValueError(f"joint map {self.name}: an SMPL joint is driven twice")
        if self.up_axis not in ("Y", "Z") or self.reference not in ("zero", "first_frame", "auto"):
            raise ValueError(f"joint map {self.name}: bad up_axis or reference")


def _sided(template: dict[str, str], left: str, right: str) -> dict[str, str]:
    """Expand ``{side}`` in source names to the rig's left/right spelling."""
    out: dict[str, str] = {}
    for source, smpl in template.items():
        if "{side}" in source:
            out[source.format(side=left)] = smpl.format(side="left")
            out[source.format(side=right)] = smpl.format(side="right")
        else:
            out[source] = smpl
    return out


SMPL_BVH = JointMap(
    name="smpl",
    description="SMPL 24-joint skeleton as written by backend.motion.bvh.write_bvh (metres, Y-up)",
    joints={name: name for name in JOINT_NAMES},
    metres_per_unit=1.0,
    reference="zero",
)

CC_BASE = JointMap(
    name="cc_base",
    description="Reallusion Character Creator 'CC_Base' rig (CMU subject 5 re-hosting: cm, "
                "Y-up, 60 fps)",
    joints=_sided({
        "CC_Base_Hip": "pelvis",
        "CC_Base_Waist": "spine1",
        "CC_Base_Spine01": "spine2",
        "CC_Base_Spine02": "spine3",
        "CC_Base_NeckTwist02": "neck",
        "CC_Base_Head": "head",
        "CC_Base_{side}_Thigh": "{side}_hip",
        "CC_Base_{side}_Calf": "{side}_knee",
        "CC_Base_{side}_Foot": "{side}_ankle",
        "CC_Base_{side}_ToeBase": "{side}_foot",
        "CC_Base_{side}_Clavicle": "{side}_collar",
        "CC_Base_{side}_Upperarm": "{side}_shoulder",
        "CC_Base_{side}_Forearm": "{side}_elbow",
        "CC_Base_{side}_Hand": "{side}_wrist",
    }, "L", "R"),
    metres_per_unit=0.01,
    reference="auto",
)

CMU_CGSPEED = JointMap(
    name="cmu_cgspeed",
    description="CMU mocap skeleton of the cgspeed BVH conversions (root 'Hips', 31 joints, 120 fps)",
    joints=_sided({
        "Hips": "pelvis",
        "LowerBack": "spine1",
        "Spine": "spine2",
        "Spine1": "spine3",
        "Neck1": "neck",
        "Head": "head",
        "{side}UpLeg": "{side}_hip",
        "{side}Leg": "{side}_knee",
        "{side}Foot": "{side}_ankle",
        "{side}ToeBase": "{side}_foot",
        "{side}Shoulder": "{side}_collar",
        "{side}Arm": "{side}_shoulder",
        "{side}ForeArm": "{side}_elbow",
        "{side}Hand": "{side}_wrist",
    }, "Left", "Right"),
    metres_per_unit=0.056444,  # cgspeed units to metres (the conversion's documented scale)
    reference="first_frame",
)

JOINT_MAPS: dict[str, JointMap] = {m.name: m for m in (SMPL_BVH, CC_BASE, CMU_CGSPEED)}


def detect_joint_map(joint_names: Iterable[str]) -> JointMap:
    """The known map all of whose source joints appear in ``joint_names``.

    When several fit, the one driving the most SMPL joints wins.
    """
    names = set(joint_names)
    fitting = [m for m in JOINT_MAPS.values() if set(m.joints) <= names]
    if not fitting:
        sample = ", ".join(sorted(names)[:8])
        raise UnknownSkeletonError(
            f"no known joint map fits this skeleton (joints: {sample}, ...); known rigs: "
            f"{', '.join(JOINT_MAPS)}")
    return max(fitting, key=lambda m: len(m.joints))
