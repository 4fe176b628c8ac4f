"""Test rigs and motion for the retargeting tests (numpy only: used with and without bpy).

The rigs imitate what animators bring: Mixamo-, Rigify- and UE5-style bone names and
hierarchies, an A-pose (arms 45 degrees down), rolls all over the place, other
proportions than SMPL (scaled, longer legs, wider shoulders), UE5's root bone on the
floor and its five spine bones, Rigify's twist segments and pelvis side bones, a
Mixamo rig in Y-up centimetres under an object turned +90 degrees about X and scaled
0.01 (what Blender's FBX importer makes of Mixamo files). Each rig is a list of
``BoneSpec`` in world space; ``rig_rest`` turns it into the ``RigRest`` the retargeter
reads, computing each bone's rest matrix from head, tail and roll exactly as Blender
does, so the core tests see the same numbers the Blender tests read back from bpy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from blender_addon.core import quaternions as quat
from blender_addon.core.retarget import RigRest
from protocol.skeleton import JOINT_INDEX, JOINT_NAMES, NUM_JOINTS, PARENTS, PELVIS_REST_HEIGHT, rest_joint_positions


@dataclass
class BoneSpec:
    name: str
    parent: str | None
    head: np.ndarray
    tail: np.ndarray
    roll: float = 0.0
    connected: bool = False


def axis_angle(axis, angle) -> np.ndarray:
    """Quaternions (..., 4) for rotations by ``angle`` (...) about ``axis`` (3,)."""
    axis = np.asarray(axis, dtype=np.float64)
    axis = axis / np.linalg.norm(axis)
    angle = np.asarray(angle, dtype=np.float64)
    return np.concatenate([np.cos(angle / 2)[..., None], np.sin(angle / 2)[..., None] * axis], axis=-1)


def blender_bone_matrix(head: np.ndarray, tail: np.ndarray, roll: float) -> np.ndarray:
    """A bone's rest orientation as Blender computes it (``vec_roll_to_mat3``): the
    shortest turn of +Y onto the bone, then ``roll`` about the bone."""
    direction = np.asarray(tail, dtype=np.float64) - np.asarray(head, dtype=np.float64)
    direction /= np.linalg.norm(direction)
    swing = quat.to_matrix(quat.rotation_between(np.array([0.0, 1.0, 0.0]), direction))
    return quat.to_matrix(axis_angle(direction, roll)) @ swing


def _rot(axis, angle) -> np.ndarray:
    return quat.to_matrix(axis_angle(axis, angle))


def humanoid_joints(scale: float = 1.0, legs: float = 1.0, shoulders: float = 1.0,
                    arm_down_degrees: float = 45.0) -> dict[str, np.ndarray]:
    """World positions of a body's joints (SMPL's joints, feet on z = 0), in an A-pose.

    Starts from SMPL's rest skeleton and changes it: legs ``legs`` times longer, the
    collar-to-shoulder span ``shoulders`` times wider, everything ``scale`` times larger,
    the arms turned ``arm_down_degrees`` down about the forward axis at the shoulders,
    the spine straightened a little (a different rest posture).
    """
    pos = rest_joint_positions().copy()
    offsets = np.zeros_like(pos)
    for j, p in enumerate(PARENTS):
        if p >= 0:
            offsets[j] = pos[j] - pos[p]
    for name in ("left_knee", "right_knee", "left_ankle", "right_ankle"):
        offsets[JOINT_INDEX[name]] *= legs
    for name in ("left_shoulder", "right_shoulder"):
        offsets[JOINT_INDEX[name]] *= shoulders
    for name in ("spine1", "spine2", "spine3", "neck"):
        offsets[JOINT_INDEX[name]][1] *= 0.3
    angle = np.radians(arm_down_degrees)
    for side, sign in (("left", 1.0), ("right", -1.0)):
        turn = _rot([0.0, 1.0, 0.0], sign * angle)
        for name in ("elbow", "wrist", "hand"):
            j = JOINT_INDEX[f"{side}_{name}"]
            offsets[j] = turn @ offsets[j]
    out = np.zeros_like(pos)
    for j, p in enumerate(PARENTS):
        out[j] = offsets[j] if p < 0 else out[p] + offsets[j]
    out *= scale
    out[:, 2] -= out[[JOINT_INDEX["left_foot"], JOINT_INDEX["right_foot"]], 2].min() - 0.03 * scale
    return {name: out[j] for j, name in enumerate(JOINT_NAMES)}


def _lerp(a: np.ndarray, b: np.ndarray, u: float) -> np.ndarray:
    return a + (b - a) * u


def _leaf_tail(head: np.ndarray, direction, length: float) -> np.ndarray:
    d = np.asarray(direction, dtype=np.float64)
    return head + length * d / np.linalg.norm(d)


def mixamo_specs(prefix: str = "mixamorig:", scale: float = 1.15) -> list[BoneSpec]:
    """A Mixamo-style rig: 1.15x SMPL, legs 8% longer, A-pose, fingers and end bones."""
    j = humanoid_joints(scale=scale, legs=1.08)
    P = prefix
    bones = [
        BoneSpec(P + "Hips", None, j["pelvis"], j["spine1"], 0.0),
        BoneSpec(P + "Spine", P + "Hips", j["spine1"], j["spine2"], 0.1, True),
        BoneSpec(P + "Spine1", P + "Spine", j["spine2"], j["spine3"], -0.2, True),
        BoneSpec(P + "Spine2", P + "Spine1", j["spine3"], j["neck"], 0.3, True),
        BoneSpec(P + "Neck", P + "Spine2", j["neck"], j["head"], 0.0, True),
        BoneSpec(P + "Head", P + "Neck", j["head"], j["head"] + [0, 0, 0.2 * scale], 0.5, True),
        BoneSpec(P + "HeadTop_End", P + "Head", j["head"] + [0, 0, 0.2 * scale], j["head"] + [0, 0, 0.25 * scale], 0.0, True),
    ]
    for side, S in (("left", "Left"), ("right", "Right")):
        r = 1.0 if side == "left" else -1.0
        bones += [
            BoneSpec(P + f"{S}Shoulder", P + "Spine2", j[f"{side}_collar"], j[f"{side}_shoulder"], 0.7 * r),
            BoneSpec(P + f"{S}Arm", P + f"{S}Shoulder", j[f"{side}_shoulder"], j[f"{side}_elbow"], 1.2 * r, True),
            BoneSpec(P + f"{S}ForeArm", P + f"{S}Arm", j[f"{side}_elbow"], j[f"{side}_wrist"], -0.9 * r, True),
            BoneSpec(P + f"{S}Hand", P + f"{S}ForeArm", j[f"{side}_wrist"], j[f"{side}_hand"], 2.0 * r, True),
            BoneSpec(P + f"{S}HandMiddle1", P + f"{S}Hand", j[f"{side}_hand"],
                     _leaf_tail(j[f"{side}_hand"], j[f"{side}_hand"] - j[f"{side}_wrist"], 0.04), 0.0, True),
            BoneSpec(P + f"{S}UpLeg", P + "Hips", j[f"{side}_hip"], j[f"{side}_knee"], 0.2 * r),
            BoneSpec(P + f"{S}Leg", P + f"{S}UpLeg", j[f"{side}_knee"], j[f"{side}_ankle"], -0.4 * r, True),
            BoneSpec(P + f"{S}Foot", P + f"{S}Leg", j[f"{side}_ankle"], j[f"{side}_foot"], 0.9 * r, True),
            BoneSpec(P + f"{S}ToeBase", P + f"{S}Foot", j[f"{side}_foot"],
                     j[f"{side}_foot"] + [0, -0.08 * scale, 0], 0.0, True),
            BoneSpec(P + f"{S}Toe_End", P + f"{S}ToeBase", j[f"{side}_foot"] + [0, -0.08 * scale, 0],
                     j[f"{side}_foot"] + [0, -0.1 * scale, 0], 0.0, True),
        ]
    return bones


def rigify_specs(scale: float = 0.95) -> list[BoneSpec]:
    """A Rigify-style deform rig: 0.95x SMPL, legs 15% longer, shoulders wider, A-pose,
    two neck bones, twist segments on every limb and DEF-pelvis side bones."""
    j = humanoid_joints(scale=scale, legs=1.15, shoulders=1.1, arm_down_degrees=40.0)
    mid_neck = _lerp(j["neck"], j["head"], 0.5)
    bones = [
        BoneSpec("DEF-spine", None, j["pelvis"], j["spine1"], 0.0),
        BoneSpec("DEF-spine.001", "DEF-spine", j["spine1"], j["spine2"], 0.0, True),
        BoneSpec("DEF-spine.002", "DEF-spine.001", j["spine2"], j["spine3"], 0.0, True),
        BoneSpec("DEF-spine.003", "DEF-spine.002", j["spine3"], j["neck"], 0.0, True),
        BoneSpec("DEF-spine.004", "DEF-spine.003", j["neck"], mid_neck, 0.0, True),
        BoneSpec("DEF-spine.005", "DEF-spine.004", mid_neck, j["head"], 0.0, True),
        BoneSpec("DEF-spine.006", "DEF-spine.005", j["head"], j["head"] + [0, 0, 0.22 * scale], 0.0, True),
    ]
    for side, S in (("left", "L"), ("right", "R")):
        r = 1.0 if side == "left" else -1.0
        hip, knee, ankle, toe = j[f"{side}_hip"], j[f"{side}_knee"], j[f"{side}_ankle"], j[f"{side}_foot"]
        sh, el, wr, hand = j[f"{side}_shoulder"], j[f"{side}_elbow"], j[f"{side}_wrist"], j[f"{side}_hand"]
        bones += [
            BoneSpec(f"DEF-pelvis.{S}", "DEF-spine", j["pelvis"], j["pelvis"] + [0.1 * r * scale, 0.05, 0.1], -0.3 * r),
            BoneSpec(f"DEF-thigh.{S}", f"DEF-pelvis.{S}", hip, _lerp(hip, knee, 0.5), 0.1 * r),
            BoneSpec(f"DEF-thigh.{S}.001", f"DEF-thigh.{S}", _lerp(hip, knee, 0.5), knee, 0.1 * r, True),
            BoneSpec(f"DEF-shin.{S}", f"DEF-thigh.{S}.001", knee, _lerp(knee, ankle, 0.5), 0.05 * r, True),
            BoneSpec(f"DEF-shin.{S}.001", f"DEF-shin.{S}", _lerp(knee, ankle, 0.5), ankle, 0.05 * r, True),
            BoneSpec(f"DEF-foot.{S}", f"DEF-shin.{S}.001", ankle, toe, 0.0, True),
            BoneSpec(f"DEF-toe.{S}", f"DEF-foot.{S}", toe, toe + [0, -0.07 * scale, 0], 0.0, True),
            BoneSpec(f"DEF-shoulder.{S}", "DEF-spine.003", j[f"{side}_collar"] + [0, -0.03, 0], sh, 0.4 * r),
            BoneSpec(f"DEF-upper_arm.{S}", f"DEF-shoulder.{S}", sh, _lerp(sh, el, 0.5), 3.0 * r),
            BoneSpec(f"DEF-upper_arm.{S}.001", f"DEF-upper_arm.{S}", _lerp(sh, el, 0.5), el, 3.0 * r, True),
            BoneSpec(f"DEF-forearm.{S}", f"DEF-upper_arm.{S}.001", el, _lerp(el, wr, 0.5), 1.5 * r, True),
            BoneSpec(f"DEF-forearm.{S}.001", f"DEF-forearm.{S}", _lerp(el, wr, 0.5), wr, 1.5 * r, True),
            BoneSpec(f"DEF-hand.{S}", f"DEF-forearm.{S}.001", wr, hand, -1.0 * r, True),
        ]
    return bones


def ue5_specs(scale: float = 1.0, facing_plus_y: bool = False) -> list[BoneSpec]:
    """A UE5-style mannequin: root on the floor, five spine bones, two neck bones, twist
    bones off the path, legs 10% longer, and tails that do not follow the limbs (as after
    an FBX import without automatic bone orientation). Optionally facing +Y."""
    j = humanoid_joints(scale=scale, legs=1.1, shoulders=1.05, arm_down_degrees=50.0)
    if facing_plus_y:
        half = _rot([0.0, 0.0, 1.0], np.pi)
        j = {k: half @ v for k, v in j.items()}
    odd = np.array([0.3, 0.5, 0.8])  # tails point along fixed, limb-unrelated directions

    def tail(head, k=0):
        d = _rot([0.0, 0.0, 1.0], 0.7 * k) @ odd
        return head + 0.08 * scale * d / np.linalg.norm(d)

    s1, s2, s3, nk, hd = j["spine1"], j["spine2"], j["spine3"], j["neck"], j["head"]
    pelvis = j["pelvis"]
    bones = [
        BoneSpec("root", None, np.zeros(3), np.array([0.0, 0.0, 0.1 * scale]), 0.0),
        BoneSpec("pelvis", "root", pelvis, tail(pelvis, 1), 0.4),
        BoneSpec("spine_01", "pelvis", s1, tail(s1, 2), -0.6),
        BoneSpec("spine_02", "spine_01", _lerp(s1, s2, 0.5), tail(_lerp(s1, s2, 0.5), 3), 0.2),
        BoneSpec("spine_03", "spine_02", s2, tail(s2, 4), 1.1),
        BoneSpec("spine_04", "spine_03", _lerp(s2, s3, 0.5), tail(_lerp(s2, s3, 0.5), 5), 0.0),
        BoneSpec("spine_05", "spine_04", s3, tail(s3, 6), 0.9),
        BoneSpec("neck_01", "spine_05", nk, tail(nk, 7), -1.3),
        BoneSpec("neck_02", "neck_01", _lerp(nk, hd, 0.5), tail(_lerp(nk, hd, 0.5), 8), 0.2),
        BoneSpec("head", "neck_02", hd, tail(hd, 9), 2.2),
    ]
    for n, (side, s) in enumerate((("left", "l"), ("right", "r"))):
        sh, el, wr = j[f"{side}_shoulder"], j[f"{side}_elbow"], j[f"{side}_wrist"]
        k = 10 + 10 * n
        bones += [
            BoneSpec(f"clavicle_{s}", "spine_05", j[f"{side}_collar"], tail(j[f"{side}_collar"], k), 0.3),
            BoneSpec(f"upperarm_{s}", f"clavicle_{s}", sh, tail(sh, k + 1), -2.0),
            BoneSpec(f"upperarm_twist_01_{s}", f"upperarm_{s}", _lerp(sh, el, 0.5), tail(_lerp(sh, el, 0.5), k + 2), 0.0),
            BoneSpec(f"lowerarm_{s}", f"upperarm_{s}", el, tail(el, k + 3), 1.7),
            BoneSpec(f"hand_{s}", f"lowerarm_{s}", wr, tail(wr, k + 4), -0.5),
            BoneSpec(f"thigh_{s}", "pelvis", j[f"{side}_hip"], tail(j[f"{side}_hip"], k + 5), 0.8),
            BoneSpec(f"thigh_twist_01_{s}", f"thigh_{s}", _lerp(j[f"{side}_hip"], j[f"{side}_knee"], 0.3),
                     tail(j[f"{side}_knee"], k + 6), 0.0),
            BoneSpec(f"calf_{s}", f"thigh_{s}", j[f"{side}_knee"], tail(j[f"{side}_knee"], k + 7), -0.2),
            BoneSpec(f"foot_{s}", f"calf_{s}", j[f"{side}_ankle"], tail(j[f"{side}_ankle"], k + 8), 2.9),
            BoneSpec(f"ball_{s}", f"foot_{s}", j[f"{side}_foot"], tail(j[f"{side}_foot"], k + 9), 0.0),
        ]
    return bones


def smpl_like_specs(scale: float = 1.1) -> list[BoneSpec]:
    """Every SMPL joint as a bone named after it, A-pose, rolls, longer legs: a full map."""
    j = humanoid_joints(scale=scale, legs=1.12, arm_down_degrees=35.0)
    leaf = {"head": [0, 0, 1], "left_hand": [1, 0, -1], "right_hand": [-1, 0, -1],
            "left_foot": [0, -1, 0], "right_foot": [0, -1, 0]}
    primary = {"pelvis": "spine1", "spine3": "neck"}
    children = {name: [JOINT_NAMES[c] for c in range(NUM_JOINTS) if PARENTS[c] == i] for i, name in enumerate(JOINT_NAMES)}
    bones = []
    for i, name in enumerate(JOINT_NAMES):
        child = primary.get(name) or (children[name][0] if children[name] else None)
        t = j[child] if child else _leaf_tail(j[name], leaf[name], 0.08 * scale)
        bones.append(BoneSpec(name, JOINT_NAMES[PARENTS[i]] if PARENTS[i] >= 0 else None, j[name], t, 0.37 * i - 3.0))
    return bones


def mixamo_object_matrix() -> np.ndarray:
    """What Blender's FBX importer gives a Mixamo armature: +90 degrees about X, scale 0.01."""
    m = np.eye(4)
    m[:3, :3] = 0.01 * _rot([1.0, 0.0, 0.0], np.pi / 2)
    return m


def to_armature_space(specs: list[BoneSpec], object_matrix: np.ndarray) -> list[BoneSpec]:
    """The same bones with heads and tails in the armature's space (world specs in)."""
    inv = np.linalg.inv(object_matrix)

    def point(p):
        return (inv @ np.append(p, 1.0))[:3]

    return [BoneSpec(b.name, b.parent, point(b.head), point(b.tail), b.roll, b.connected) for b in specs]


def rig_rest(specs: list[BoneSpec], object_matrix: np.ndarray | None = None) -> RigRest:
    """A ``RigRest`` from armature-space bone specs, with Blender's rest matrices."""
    return RigRest(
        names=tuple(b.name for b in specs),
        parents=tuple(b.parent for b in specs),
        heads=np.array([b.head for b in specs], dtype=np.float64),
        tails=np.array([b.tail for b in specs], dtype=np.float64),
        matrices=np.array([blender_bone_matrix(b.head, b.tail, b.roll) for b in specs]),
        connected=tuple(b.connected for b in specs),
        object_matrix=np.eye(4) if object_matrix is None else object_matrix,
    )


def synthetic_motion(frames: int = 120, fps: float = 30.0) -> tuple[np.ndarray, np.ndarray]:
    """A non-trivial SMPL motion: walking on a curve while turning, swinging and raising
    the arms, bending the knees and elbows, twisting the spine, nodding; feet touch down.

    Returns local rotations (T, 24, 4) and the pelvis path (T, 3).
    """
    t = np.arange(frames) / fps
    w = 2 * np.pi * 0.8
    rot = np.tile(np.array([1.0, 0.0, 0.0, 0.0]), (frames, NUM_JOINTS, 1))
    X, Y, Z = [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]

    def put(name, *parts):
        q = np.tile(np.array([1.0, 0.0, 0.0, 0.0]), (frames, 1))
        for axis, angle in parts:
            q = quat.multiply(q, axis_angle(axis, angle))
        rot[:, JOINT_INDEX[name]] = q

    put("pelvis", (Z, 0.9 * np.sin(0.35 * w * t) + 0.4 * t), (X, 0.1 * np.sin(w * t)))
    for side, phase in (("left", 0.0), ("right", np.pi)):
        s = 1.0 if side == "left" else -1.0
        put(f"{side}_hip", (X, -0.5 * np.sin(w * t + phase)), (Y, 0.1 * s * np.sin(w * t)))
        put(f"{side}_knee", (X, 0.6 * (1 + np.sin(w * t + phase + 1.0))))
        put(f"{side}_ankle", (X, -0.25 * np.sin(w * t + phase)))
        put(f"{side}_foot", (X, 0.2 * np.sin(w * t + phase)))
        put(f"{side}_collar", (Z, 0.15 * s * np.sin(w * t)))
        put(f"{side}_shoulder", (Y, s * (0.5 + 0.6 * np.sin(0.5 * w * t + phase))), (Z, 0.5 * np.sin(w * t + phase)),
            (X, 0.3 * np.cos(w * t)))
        put(f"{side}_elbow", (Z, s * 0.8 * (1 + np.sin(w * t + phase))), (X, 0.3 * np.sin(0.5 * w * t)))
        put(f"{side}_wrist", (X, 0.4 * np.sin(1.5 * w * t)), (Z, 0.3 * s * np.cos(w * t)))
        put(f"{side}_hand", (Z, 0.3 * s * np.sin(w * t)))
    put("spine1", (X, 0.2 * np.sin(0.5 * w * t)), (Z, 0.2 * np.sin(w * t)))
    put("spine2", (Y, 0.15 * np.sin(0.7 * w * t)), (Z, 0.15 * np.sin(w * t)))
    put("spine3", (X, 0.1 * np.cos(w * t)), (Z, 0.1 * np.sin(w * t)))
    put("neck", (X, 0.3 * np.sin(w * t)))
    put("head", (Z, 0.4 * np.sin(0.5 * w * t)), (X, 0.2 * np.cos(w * t)))
    root = np.stack([0.6 * np.sin(0.3 * w * t), -0.5 * t, PELVIS_REST_HEIGHT - 0.08 * (1 + np.sin(2 * w * t))], 1)
    # Put the lowest foot joint on SMPL's floor (as the backend's clips are): feet touch down.
    positions, _ = quat.forward_kinematics(rot, root, _offsets(), PARENTS)
    feet = [JOINT_INDEX[n] for n in ("left_ankle", "right_ankle", "left_foot", "right_foot")]
    rest_low = (rest_joint_positions()[feet, 2] + PELVIS_REST_HEIGHT).min()
    root[:, 2] -= positions[:, feet, 2].min(axis=1) - rest_low
    # And a few hops, so that some frames have both feet in the air.
    root[:, 2] += 0.15 * np.clip(np.sin(0.5 * w * t), 0.0, None) ** 4
    return rot, root


def _offsets() -> np.ndarray:
    from protocol.skeleton import OFFSETS
    return OFFSETS
