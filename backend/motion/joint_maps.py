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

Two more facts some rigs need:

* ``end_sites``: a rig without a joint where SMPL has one (the salsa rig has no toe
  joint) can name a source joint whose End Site stands in for it. The End Site then
  gives the parent SMPL bone its direction (the foot points where the source foot
  points); the SMPL joint itself keeps the identity rotation, as it has no source
  rotation of its own.
* ``source_fps``: the file's true frame rate where its ``Frame Time`` is wrong (the
  salsa trials, see ``CMU_SALSA``); None trusts the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
    end_sites: Mapping[str, str] = field(default_factory=dict)
    """Source joint whose End Site marks an SMPL joint the rig lacks -> that SMPL joint."""
    source_fps: float | None = None
    """The capture's true frame rate when the file's Frame Time is wrong; None: trust it."""
    lead_in_frames: int = 0
    """Frames at the start of every file that are not dance (a calibration pose and the
    conversion's blend out of it); dropped before anything else."""

    def __post_init__(self) -> None:
        smpl = list(self.joints.values()) + list(self.end_sites.values())
        unknown = set(smpl) - set(JOINT_NAMES)
        if unknown:
            raise ValueError(f"joint map {self.name}: not SMPL joints: {sorted(unknown)}")
        if len(set(smpl)) != len(smpl):
            raise ValueError(f"joint map {self.name}: an SMPL joint is driven twice")
        if self.up_axis not in ("Y", "Z") or self.reference not in ("zero", "first_frame", "auto"):
            raise ValueError(f"joint map {self.name}: bad up_axis or reference")
        if self.lead_in_frames < 0:
            raise ValueError(f"joint map {self.name}: lead_in_frames must be >= 0")
        if self.source_fps is not None and self.source_fps <= 0:
            raise ValueError(f"joint map {self.name}: source_fps must be positive")


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

# The salsa frame rate. The files' Frame Time says 1/120 s; another conversion of the
# same trials says 60 fps, and CMU captured some subjects at 60 Hz. The motion decides:
# measured over all 24 trials (780 s at 60 fps, 390 s at 120), compared with salsa's
# tempo (150-220 BPM, a step on 6 of every 8 counts: 1.9-2.75 steps/s) and with the
# other CMU dance here:
#
#                                      read at 60 fps   read at 120 fps   other dance
#   steps/s (ankle lands after 0.1 s+)      2.25             3.46          ballet 1.2, breakdance 2.4
#   -> tempo at 6 steps per 8 counts       180 BPM          277 BPM        salsa 150-220 BPM
#   mean joint speed (30 fps output)       0.66 m/s         1.29 m/s       ballet 0.82, free 0.75,
#                                                                          breakdance 1.33
#   turn rate of the pelvis, 99th pct.     1.3 rev/s        2.4 rev/s      ballet pirouettes 1.4
#   fastest turn (0.2 s window)            2.0 rev/s        3.9 rev/s      ballet 2.5, breakdance 3.2
#
# At 60 fps the dancers step at a typical salsa tempo (180 BPM), move about as fast as
# the free dancer and the ballet dancer, and spin like the ballet dancer's pirouettes.
# At 120 fps they would step at 277 BPM, move as fast as the breakdancer, and spin
# faster than the pirouettes and the breakdancer's windmills. So: 60 fps.
CMU_SALSA = JointMap(
    name="cmu_salsa",
    description="CMU 'BVH conversion release' rig (root 'hip', lShldr/lThigh/lShin/lFoot ...; "
                "salsa trials 60_* and 61_*: metres, Y-up, file says 120 fps, really 60)",
    joints=_sided({
        "hip": "pelvis",
        "abdomen": "spine1",
        "chest": "spine3",
        "neck": "neck",
        "head": "head",
        "{side}Thigh": "{side}_hip",
        "{side}Shin": "{side}_knee",
        "{side}Foot": "{side}_ankle",
        "{side}Collar": "{side}_collar",
        "{side}Shldr": "{side}_shoulder",
        "{side}ForeArm": "{side}_elbow",
        "{side}Hand": "{side}_wrist",
    }, "l", "r"),
    end_sites={"lFoot": "left_foot", "rFoot": "right_foot"},  # no toe joint: the foot's tip
    metres_per_unit=1.0,
    # The zero pose is a T-pose facing +Z, but the files hold no T-pose frame (only
    # the blend out of one, below), and "auto" (which finds that zero pose) also takes
    # limb twist from the knee and elbow hinges, which this rig's elbows need (in 60_01
    # the bent elbows' axis lies along SMPL's elbow axis to a median 0.88 with the zero
    # pose's twist, 1.00 with the hinge's).
    reference="auto",
    source_fps=60.0,  # the files say 120; see the note above
    # Every trial opens with the same 7-frame blend out of a rest pose: the hands swing
    # 0.24, 0.23, 0.15, 0.06 m per frame from arms-out to the dance (the median step of
    # the fastest joint is 0.01 m), then the motion runs smoothly from frame 7.
    lead_in_frames=7,
)

CMU_BREAKDANCE = JointMap(
    name="cmu_breakdance",
    description="22-joint low-poly 'Neo_' rig of the CMU subject 85 breakdance re-hosting "
                "(root 'Neo_Hips', cm, Y-up, 30 fps, T-pose at rest)",
    joints=_sided({
        "Neo_Hips": "pelvis",
        "Neo_Spine": "spine1",
        "Neo_Spine1": "spine2",
        "Neo_Spine2": "spine3",
        "Neo_Neck": "neck",
        "Neo_Head": "head",
        "Neo_{side}UpLeg": "{side}_hip",
        "Neo_{side}Leg": "{side}_knee",
        "Neo_{side}Foot": "{side}_ankle",
        "Neo_{side}ToeBase": "{side}_foot",
        "Neo_{side}Shoulder": "{side}_collar",
        "Neo_{side}Arm": "{side}_shoulder",
        "Neo_{side}ForeArm": "{side}_elbow",
        "Neo_{side}Hand": "{side}_wrist",
    }, "Left", "Right"),
    metres_per_unit=0.01,
    # The zero pose is a T-pose facing +Z; the files start mid-dance (no calibration
    # frame). "auto", as for the salsa rig, to take limb twist from the hinges.
    reference="auto",
)

JOINT_MAPS: dict[str, JointMap] = {
    m.name: m for m in (SMPL_BVH, CC_BASE, CMU_CGSPEED, CMU_SALSA, CMU_BREAKDANCE)}


def detect_joint_map(joint_names: Iterable[str]) -> JointMap:
    """The known map all of whose source joints appear in ``joint_names``.

    When several fit, the one driving the most SMPL joints wins.
    """
    names = set(joint_names)
    fitting = [m for m in JOINT_MAPS.values() if set(m.joints) | set(m.end_sites) <= names]
    if not fitting:
        sample = ", ".join(sorted(names)[:8])
        raise UnknownSkeletonError(
            f"no known joint map fits this skeleton (joints: {sample}, ...); known rigs: "
            f"{', '.join(JOINT_MAPS)}")
    return max(fitting, key=lambda m: len(m.joints))
