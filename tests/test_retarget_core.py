"""Retargeting core without Blender: bone maps, presets, detection, forward and inverse.

The rigs come from ``tests/retarget_rigs.py`` (Mixamo-, Rigify-, UE5-style and a full
SMPL-named rig, all in A-poses with odd rolls and other proportions), with rest
matrices computed as Blender computes them; the motion is synthetic but busy
(walking on a curve while turning, hops, swinging arms, bending knees and elbows).
Checks measure the result with the target's own forward kinematics and SMPL's,
independently of how the retargeter got there.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from blender_addon.core import bone_maps
from blender_addon.core import quaternions as quat
from blender_addon.core import retarget as rt
from blender_addon.core.bone_maps import BoneMap, BoneMapError
from blender_addon.core.retarget import RetargetError
from protocol.skeleton import JOINT_INDEX, JOINT_NAMES, LEG_LENGTH, OFFSETS, PARENTS
from tests import retarget_rigs as rigs

REPO = Path(__file__).resolve().parents[1]
FEET = ("left_ankle", "right_ankle", "left_foot", "right_foot")
NEXT_IN_CHAIN = {
    "pelvis": "spine1", "spine1": "spine2", "spine2": "spine3", "spine3": "neck", "neck": "head",
    **{f"{s}_{a}": f"{s}_{b}" for s in ("left", "right") for a, b in (
        ("hip", "knee"), ("knee", "ankle"), ("ankle", "foot"), ("collar", "shoulder"),
        ("shoulder", "elbow"), ("elbow", "wrist"), ("wrist", "hand"))},
}
"""Where each SMPL bone points, written out here independently of the code under test."""


@pytest.fixture(scope="module")
def motion() -> tuple[np.ndarray, np.ndarray]:
    return rigs.synthetic_motion(150)


def mixamo() -> tuple[BoneMap, rt.RigRest]:
    m = rigs.mixamo_object_matrix()
    specs = rigs.to_armature_space(rigs.mixamo_specs(prefix="mixamorig:"), m)
    return bone_maps.load_preset("mixamo").with_prefix("mixamorig:"), rigs.rig_rest(specs, m)


def rigify() -> tuple[BoneMap, rt.RigRest]:
    return bone_maps.load_preset("rigify"), rigs.rig_rest(rigs.rigify_specs())


def ue5(**kw) -> tuple[BoneMap, rt.RigRest]:
    return bone_maps.load_preset("ue5"), rigs.rig_rest(rigs.ue5_specs(**kw))


def full() -> tuple[BoneMap, rt.RigRest]:
    """Every SMPL joint mapped, onto an A-posed, rolled, longer-legged rig under a turned,
    scaled, moved object."""
    m = np.eye(4)
    m[:3, :3] = 2.0 * quat.to_matrix(rigs.axis_angle([0.3, 1.0, 0.2], 0.7))
    m[:3, 3] = [1.0, -2.0, 0.5]
    specs = rigs.to_armature_space(rigs.smpl_like_specs(), m)
    return bone_maps.load_preset("smpl"), rigs.rig_rest(specs, m)


def posed(rig: rt.RigRest, out: rt.TargetMotion) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    return rt.target_forward_kinematics(rig, out.rotations, locations=out.locations,
                                        object_location=out.object_location)


def smpl_world(rotations: np.ndarray, root: np.ndarray, yaw_degrees: float = 0.0):
    pos, rot = quat.forward_kinematics(rotations, root, OFFSETS, PARENTS)
    a = np.radians(yaw_degrees)
    yaw = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1.0]])
    return pos @ yaw.T, yaw @ rot @ yaw.T


def angles(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    cos = np.sum(a * b, -1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def quat_degrees(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle between rotations given as quaternions, accurate for tiny angles."""
    a, b = quat.normalize(np.asarray(a, np.float64)), quat.normalize(np.asarray(b, np.float64))
    rel = quat.multiply(quat.conjugate(a), b)
    return np.degrees(2 * np.arctan2(np.linalg.norm(rel[..., 1:], axis=-1), np.abs(rel[..., 0])))


def direction_errors(bone_map: BoneMap, heads: dict[str, np.ndarray], pos: np.ndarray) -> dict[str, float]:
    """Per mapped joint with a mapped joint further down its chain: the worst angle between
    the target's head-to-head direction and SMPL's joint-to-joint direction."""
    mapped = bone_map.joint_to_bone()
    out = {}
    for joint, bone in mapped.items():
        nxt = NEXT_IN_CHAIN.get(joint)
        while nxt is not None and nxt not in mapped:
            nxt = NEXT_IN_CHAIN.get(nxt)
        if nxt is not None:
            out[joint] = float(angles(heads[mapped[nxt]] - heads[bone],
                                      pos[:, JOINT_INDEX[nxt]] - pos[:, JOINT_INDEX[joint]]).max())
    return out


# ---------------------------------------------------------------------------- presets and maps

def test_presets_load_and_say_why() -> None:
    assert bone_maps.preset_names() == ("mixamo", "rigify", "smpl", "ue5")
    for name in bone_maps.preset_names():
        m = bone_maps.load_preset(name)
        assert "pelvis" in m.bones and m.notes, name
        assert set(m.bones) <= set(JOINT_NAMES)
    assert bone_maps.load_preset("smpl").bones == {j: j for j in JOINT_NAMES}
    assert bone_maps.load_preset("ue5").root == "root"
    assert bone_maps.load_preset("mixamo").root is None
    ue = bone_maps.load_preset("ue5").bones
    assert (ue["spine1"], ue["spine2"], ue["spine3"]) == ("spine_01", "spine_03", "spine_05")
    mix = bone_maps.load_preset("mixamo").bones
    assert (mix["left_collar"], mix["left_shoulder"], mix["left_hip"]) == ("LeftShoulder", "LeftArm", "LeftUpLeg")
    assert bone_maps.load_preset("rigify").bones["neck"] == "DEF-spine.004"


@pytest.mark.parametrize("specs, preset, prefix", [
    (rigs.mixamo_specs(prefix="mixamorig:"), "mixamo", "mixamorig:"),
    (rigs.mixamo_specs(prefix="mixamorig1:"), "mixamo", "mixamorig1:"),
    (rigs.mixamo_specs(prefix=""), "mixamo", ""),
    (rigs.rigify_specs(), "rigify", ""),
    (rigs.ue5_specs(), "ue5", ""),
    (rigs.smpl_like_specs(), "smpl", ""),
])
def test_detection_picks_the_preset_and_prefix(specs, preset: str, prefix: str) -> None:
    found = bone_maps.detect_preset(b.name for b in specs)
    assert (found.preset, found.prefix) == (preset, prefix), found.reason
    assert found.bone_map is not None and found.bone_map.bone("pelvis") in {b.name for b in specs}
    assert found.bone_map.missing_in(b.name for b in specs) == []


def test_detection_of_a_partial_rig_leaves_missing_bones_unmapped() -> None:
    names = [b.name for b in rigs.mixamo_specs(prefix="mixamorig7:") if "Toe" not in b.name]
    found = bone_maps.detect_preset(names)
    assert found.preset == "mixamo" and "missing" in found.reason
    assert "left_foot" not in found.bone_map.bones and "left_ankle" in found.bone_map.bones


def test_detection_says_why_it_found_nothing() -> None:
    nothing = bone_maps.detect_preset(["Bone", "Bone.001", "Cube"])
    assert nothing.bone_map is None and "no bone names match" in nothing.reason
    few = bone_maps.detect_preset(["Hips", "Spine", "Neck", "Head", "Tail", "Wing.L"])
    assert few.bone_map is None and "only" in few.reason
    assert bone_maps.detect_preset([]).reason == "the rig has no bones"


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    m = bone_maps.load_preset("ue5").without("left_foot").with_prefix("Armature_")
    path = bone_maps.save(m, tmp_path / "mine.json")
    back = bone_maps.load(path)
    assert back == m and back.bone("pelvis") == "Armature_pelvis" and back.root_bone == "Armature_root"


@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "expected a JSON object"),
    ('{"name": "x"}', "no 'bones'"),
    ('{"bones": {"pelvis": "Hips"}}', "'name' must be a non-empty string"),
    ('{"name": "x", "bones": {"pelvis": "Hips", "left_toe": "Toe"}}', "unknown SMPL joint names \\['left_toe'\\]"),
    ('{"name": "x", "bones": {"pelvis": 3}}', "joint 'pelvis' must map to a bone name"),
    ('{"name": "x", "bones": ["Hips"]}', "'bones' must be an object"),
    ('{"name": "x", "bones": {"pelvis": "Hips", "spine1": "Hips"}}', "mapped to more than one joint"),
    ('{"name": "x", "root": 5, "bones": {"pelvis": "Hips"}}', "'root' must be a bone name or null"),
    ('{"name": "x", "bone": {}, "bones": {"pelvis": "Hips"}}', "unknown keys \\['bone'\\]"),
    ('{"name": "x", "version": 2, "bones": {"pelvis": "Hips"}}', "version 2 is not supported"),
    ('{"name": "x", "root": "Hips", "bones": {"pelvis": "Hips"}}', "also mapped to a joint"),
])
def test_bad_bone_map_files_give_clear_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(BoneMapError, match=message) as info:
        bone_maps.load(path)
    assert str(path) in str(info.value)


def test_missing_file_and_preset() -> None:
    with pytest.raises(BoneMapError, match="cannot read bone map"):
        bone_maps.load("/nonexistent/map.json")
    with pytest.raises(BoneMapError, match="no bone map preset 'maya'"):
        bone_maps.load_preset("maya")


# ---------------------------------------------------------------------------- forward

@pytest.mark.parametrize("make", [mixamo, rigify, ue5, full])
def test_every_mapped_bone_follows_smpl(make, motion) -> None:
    rotations, root = motion
    bone_map, rig = make()
    out = rt.to_target(rotations, root, bone_map, rig, "OBJECT")
    _, heads = posed(rig, out)
    pos, _ = smpl_world(rotations, root)
    errors = direction_errors(bone_map, heads, pos)
    assert len(errors) >= 15
    assert max(errors.values()) < 0.01, errors


def test_sides_line_up_at_the_hips_and_chest(motion) -> None:
    """The pelvis and chest take their twist from the hips and collars."""
    rotations, root = motion
    bone_map, rig = rigify()
    out = rt.to_target(rotations, root, bone_map, rig, "PELVIS")
    _, heads = posed(rig, out)
    pos, _ = smpl_world(rotations, root)
    for left, right, up_from, up_to in (("left_hip", "right_hip", "pelvis", "spine1"),
                                        ("left_collar", "right_collar", "spine3", "neck")):
        axis = pos[:, JOINT_INDEX[up_to]] - pos[:, JOINT_INDEX[up_from]]
        axis /= np.linalg.norm(axis, axis=1, keepdims=True)

        def flat(v):
            return v - np.sum(v * axis, 1, keepdims=True) * axis

        target = flat(heads[bone_map.bone(left)] - heads[bone_map.bone(right)])
        smpl = flat(pos[:, JOINT_INDEX[left]] - pos[:, JOINT_INDEX[right]])
        assert angles(target, smpl).max() < 3.0, left


def test_leaves_turn_as_smpl_turns_them(motion) -> None:
    rotations, root = motion
    bone_map, rig = mixamo()
    out = rt.to_target(rotations, root, bone_map, rig, "OBJECT")
    rots, _ = posed(rig, out)
    _, smpl_rot = smpl_world(rotations, root)
    for joint in ("head", "left_wrist", "right_wrist", "left_foot", "right_foot"):
        turned = rots[bone_map.bone(joint)] @ rots[bone_map.bone(joint)][:1].swapaxes(-1, -2)
        j = JOINT_INDEX[joint]
        want = smpl_rot[:, j] @ smpl_rot[:1, j].swapaxes(-1, -2)
        assert np.abs(turned - want).max() < 1e-6, joint


def test_unmapped_bones_keep_their_rest_relation(motion) -> None:
    rotations, root = motion
    bone_map, rig = ue5()
    out = rt.to_target(rotations, root, bone_map, rig, "ROOT_BONE")
    for name in ("spine_02", "spine_04", "neck_02"):
        np.testing.assert_allclose(np.abs(out.rotations[name][:, 0]), 1.0, atol=1e-9)
    assert "upperarm_twist_01_l" not in out.rotations  # off every mapped chain: left alone
    assert set(bone_map.joint_to_bone().values()) <= set(out.rotations)


def test_the_smpl_rig_gets_the_wire_unchanged(motion) -> None:
    """On a rig shaped like the built-in one (identity rests, SMPL heads), nothing changes."""
    rotations, root = motion
    heads = rt.SMPL_REST_POSITIONS
    rig = rt.RigRest(names=JOINT_NAMES, parents=tuple(JOINT_NAMES[p] if p >= 0 else None for p in PARENTS),
                     heads=heads, tails=heads + [0.0, 0.06, 0.0], matrices=np.tile(np.eye(3), (24, 1, 1)))
    out = rt.to_target(rotations, root, bone_maps.load_preset("smpl"), rig, "PELVIS")
    assert out.scale == pytest.approx(1.0) and out.yaw_degrees == 0.0
    for j, name in enumerate(JOINT_NAMES):
        assert quat_degrees(out.rotations[name], rotations[:, j]).max() < 1e-5
    np.testing.assert_allclose(out.locations["pelvis"], root - heads[0], atol=1e-9)


# ---------------------------------------------------------------------------- partial maps

def test_unmapped_joints_fold_into_their_parents(motion) -> None:
    rotations, root = motion
    bone_map, rig = mixamo()
    partial = bone_map.without("spine2", "left_elbow", "right_knee", "left_collar")
    out = rt.to_target(rotations, root, partial, rig, "OBJECT")
    _, heads = posed(rig, out)
    pos, _ = smpl_world(rotations, root)
    errors = direction_errors(partial, heads, pos)
    # Spine reaches Spine2 across the unmapped spine2, LeftArm the wrist across the elbow,
    # RightUpLeg the ankle across the knee.
    for joint in ("spine1", "left_shoulder", "right_hip", "spine3", "pelvis"):
        assert errors[joint] < 0.01, (joint, errors[joint])
    for bone in ("mixamorig:Spine1", "mixamorig:LeftForeArm", "mixamorig:RightLeg", "mixamorig:LeftShoulder"):
        np.testing.assert_allclose(np.abs(out.rotations[bone][:, 0]), 1.0, atol=1e-9)


def test_folded_joints_come_back_carried_by_their_parent(motion) -> None:
    rotations, root = motion
    bone_map, rig = full()
    partial = bone_map.without("left_elbow")
    out = rt.to_target(rotations, root, partial, rig, "PELVIS")
    back, back_root = rt.to_smpl(partial, rig, out.rotations, locations=out.locations, root_mode="PELVIS")
    assert quat_degrees(back[:, JOINT_INDEX["left_elbow"]], [1.0, 0, 0, 0]).max() < 1e-4
    # The shoulder took the elbow's bend: the wrist still lands in the same direction.
    pos, _ = smpl_world(rotations, root)
    pos_back, _ = smpl_world(back.astype(np.float64), back_root.astype(np.float64))
    s, w = JOINT_INDEX["left_shoulder"], JOINT_INDEX["left_wrist"]
    assert angles(pos_back[:, w] - pos_back[:, s], pos[:, w] - pos[:, s]).max() < 0.01
    # The wrist keeps its world orientation (so its local rotation now absorbs the
    # difference); every joint off that arm comes back as it was.
    _, world = smpl_world(rotations, root)
    _, world_back = smpl_world(back.astype(np.float64), back_root.astype(np.float64))
    assert np.abs(world_back[:, w] - world[:, w]).max() < 1e-5
    arm = {JOINT_INDEX[n] for n in ("left_shoulder", "left_elbow", "left_wrist")}
    untouched = [j for j in range(24) if j not in arm]
    assert quat_degrees(back[:, untouched], rotations[:, untouched]).max() < 1e-3


def test_a_map_without_pelvis_or_with_absent_bones_is_refused(motion) -> None:
    rotations, root = motion
    bone_map, rig = mixamo()
    with pytest.raises(RetargetError, match="does not map the pelvis"):
        rt.to_target(rotations, root, bone_map.without("pelvis"), rig)
    with pytest.raises(RetargetError, match="names bones the rig lacks"):
        rt.to_target(rotations, root, bone_map.with_prefix("other:"), rig)


# ---------------------------------------------------------------------------- inverse

@pytest.mark.parametrize("make, modes", [
    (full, ("OBJECT", "PELVIS")),
    (ue5, ("OBJECT", "ROOT_BONE", "PELVIS")),
    (mixamo, ("OBJECT",)),
    (lambda: ue5(facing_plus_y=True), ("ROOT_BONE",)),
])
def test_forward_then_inverse_round_trips(make, modes, motion) -> None:
    rotations, root = motion
    bone_map, rig = make()
    mapped = [JOINT_INDEX[j] for j in bone_map.joints]
    for mode in modes:
        out = rt.to_target(rotations, root, bone_map, rig, mode)
        back, back_root = rt.to_smpl(bone_map, rig, out.rotations, locations=out.locations,
                                     object_location=out.object_location, root_mode=mode)
        assert back.shape == (len(rotations), 24, 4) and back_root.shape == (len(rotations), 3)
        assert quat_degrees(back[:, mapped], rotations[:, mapped]).max() < 1e-3, mode
        np.testing.assert_allclose(back_root, root, atol=1e-5, err_msg=mode)
        unmapped = [j for j in range(24) if j not in mapped]
        np.testing.assert_allclose(np.abs(back[:, unmapped, 0]), 1.0, atol=1e-6)


def test_in_place_reads_back_without_travel(motion) -> None:
    rotations, root = motion
    bone_map, rig = rigify()
    out = rt.to_target(rotations, root, bone_map, rig, "IN_PLACE")
    back, back_root = rt.to_smpl(bone_map, rig, out.rotations, locations=out.locations, root_mode="IN_PLACE")
    np.testing.assert_allclose(back_root[:, :2], 0.0, atol=1e-5)
    np.testing.assert_allclose(back_root[:, 2], root[:, 2], atol=1e-5)


# ---------------------------------------------------------------------------- root motion

def test_root_modes_put_the_travel_where_they_say(motion) -> None:
    rotations, root = motion
    bone_map, rig = ue5()
    results = {}
    for mode in rt.ROOT_MODES:
        out = rt.to_target(rotations, root, bone_map, rig, mode)
        results[mode] = (out, posed(rig, out)[1])
    s = results["OBJECT"][0].scale
    rest = dict(zip(rig.names, rig.heads))

    obj, heads = results["OBJECT"]
    assert obj.object_location is not None
    np.testing.assert_allclose(obj.locations["pelvis"], 0.0)
    np.testing.assert_allclose(obj.locations["root"], 0.0)
    np.testing.assert_allclose(obj.object_location[:, :2], s * root[:, :2], atol=1e-9)

    bone, heads_rb = results["ROOT_BONE"]
    assert bone.object_location is None
    np.testing.assert_allclose(heads_rb["root"][:, 2], 0.0, atol=1e-9)          # on the floor
    np.testing.assert_allclose(heads_rb["root"][:, :2], s * root[:, :2], atol=1e-9)
    np.testing.assert_allclose(heads_rb["pelvis"][:, :2] - heads_rb["root"][:, :2],
                               np.tile(rest["pelvis"][:2], (len(root), 1)), atol=1e-9)

    pelvis, heads_p = results["PELVIS"]
    np.testing.assert_allclose(pelvis.locations["root"], 0.0)
    np.testing.assert_allclose(heads_p["root"], 0.0, atol=1e-12)

    in_place, heads_i = results["IN_PLACE"]
    np.testing.assert_allclose(heads_i["pelvis"][:, :2], np.tile(rest["pelvis"][:2], (len(root), 1)), atol=1e-9)

    # Every mode moves the pelvis to the same world place (apart from IN_PLACE's travel) ...
    for mode in ("ROOT_BONE", "PELVIS"):
        np.testing.assert_allclose(results[mode][1]["pelvis"], heads["pelvis"], atol=1e-9, err_msg=mode)
    np.testing.assert_allclose(heads_i["pelvis"][:, 2], heads["pelvis"][:, 2], atol=1e-9)
    # ... and with the same pose: only the root channels differ.
    for mode in rt.ROOT_MODES:
        np.testing.assert_allclose(results[mode][0].rotations["thigh_l"], obj.rotations["thigh_l"])


def test_root_bone_mode_needs_a_root_and_unknown_modes_are_refused(motion) -> None:
    rotations, root = motion
    bone_map, rig = mixamo()
    with pytest.raises(RetargetError, match="ROOT_BONE needs a root bone"):
        rt.to_target(rotations, root, bone_map, rig, "ROOT_BONE")
    with pytest.raises(RetargetError, match="unknown root mode 'HIPS'"):
        rt.to_target(rotations, root, bone_map, rig, "HIPS")


def test_a_connected_pelvis_cannot_carry_location(motion) -> None:
    rotations, root = motion
    bone_map, rig = ue5()
    connected = tuple(n == "pelvis" for n in rig.names)
    rig = rt.RigRest(rig.names, rig.parents, rig.heads, rig.tails, rig.matrices, connected)
    with pytest.raises(RetargetError, match="'pelvis' is connected"):
        rt.to_target(rotations, root, bone_map, rig, "PELVIS")
    rt.to_target(rotations, root, bone_map, rig, "OBJECT")  # the object can


def test_travel_scales_with_leg_length(motion) -> None:
    rotations, root = motion
    specs = rigs.mixamo_specs(prefix="", scale=1.0)
    bone_map = bone_maps.load_preset("mixamo")
    small = rt.to_target(rotations, root, bone_map, rigs.rig_rest(specs), "PELVIS")
    big_specs = [rigs.BoneSpec(b.name, b.parent, 2.0 * b.head, 2.0 * b.tail, b.roll, b.connected) for b in specs]
    big = rt.to_target(rotations, root, bone_map, rigs.rig_rest(big_specs), "PELVIS")
    legs = rigs.humanoid_joints(scale=1.0, legs=1.08)
    expected = (np.linalg.norm(legs["left_knee"] - legs["left_hip"])
                + np.linalg.norm(legs["left_ankle"] - legs["left_knee"])) / LEG_LENGTH
    assert small.scale == pytest.approx(expected, rel=1e-9)
    assert big.scale == pytest.approx(2 * expected, rel=1e-9)
    travel_small = small.locations["Hips"] - small.locations["Hips"][0]
    travel_big = big.locations["Hips"] - big.locations["Hips"][0]
    np.testing.assert_allclose(travel_big, 2 * travel_small, atol=1e-9)
    # The object's scale counts too: a rig at 0.01 scale in centimetres has metres' legs.
    assert rt.leg_scale(*mixamo()) == pytest.approx(1.15 * expected, rel=1e-6)
    # An explicit scale wins.
    assert rt.to_target(rotations, root, bone_map, rigs.rig_rest(specs), scale=0.5).scale == 0.5


@pytest.mark.parametrize("make", [mixamo, rigify, ue5, full])
def test_feet_stay_on_the_floor(make, motion) -> None:
    """Whenever SMPL's lowest foot joint is at its standing height, so is the target's."""
    rotations, root = motion
    bone_map, rig = make()
    out = rt.to_target(rotations, root, bone_map, rig, "OBJECT")
    _, heads = posed(rig, out)
    pos, _ = smpl_world(rotations, root)
    _, rest = rt.target_forward_kinematics(rig, {})  # one frame, at rest
    feet = [bone_map.bone(f) for f in FEET]
    low = np.min([heads[b][:, 2] for b in feet], axis=0)
    low_rest = min(rest[b][0, 2] for b in feet)
    smpl_low = pos[:, [JOINT_INDEX[f] for f in FEET], 2].min(axis=1)
    smpl_rest_low = rt.SMPL_REST_POSITIONS[[JOINT_INDEX[f] for f in FEET], 2].min()
    np.testing.assert_allclose(low - low_rest, out.scale * (smpl_low - smpl_rest_low), atol=1e-9)
    assert (smpl_low - smpl_rest_low < 1e-6).sum() > 50  # the motion does stand on the floor
    assert (smpl_low - smpl_rest_low > 0.05).sum() > 5   # and hops


def test_a_rig_facing_the_other_way_dances_its_own_way(motion) -> None:
    rotations, root = motion
    bone_map, rig = ue5(facing_plus_y=True)
    out = rt.to_target(rotations, root, bone_map, rig, "PELVIS")
    assert abs(out.yaw_degrees) == pytest.approx(180.0)
    _, heads = posed(rig, out)
    pos, _ = smpl_world(rotations, root, 180.0)
    assert max(direction_errors(bone_map, heads, pos).values()) < 0.01
    # Forward for the rig is +Y: SMPL walking towards -Y makes it walk towards +Y.
    assert heads["pelvis"][-1, 1] - heads["pelvis"][0, 1] > 0.5


def test_bad_inputs_are_refused(motion) -> None:
    rotations, root = motion
    bone_map, rig = ue5()
    with pytest.raises(RetargetError, match="rotations must be"):
        rt.to_target(rotations[:, :10], root, bone_map, rig)
    with pytest.raises(RetargetError, match="root must be"):
        rt.to_target(rotations, root[:5], bone_map, rig)
    bad = rotations.copy()
    bad[3, 2, 0] = np.nan
    with pytest.raises(RetargetError, match="non-finite"):
        rt.to_target(bad, root, bone_map, rig)
    squashed = np.diag([1.0, 1.0, 2.0, 1.0])
    with pytest.raises(RetargetError, match="not uniform"):
        rt.to_target(rotations, root, bone_map, rt.RigRest(rig.names, rig.parents, rig.heads, rig.tails,
                                                           rig.matrices, object_matrix=squashed))
    with pytest.raises(RetargetError, match="parents that do not exist"):
        rt.RigRest(("a",), ("b",), np.zeros((1, 3)), np.ones((1, 3)), np.eye(3)[None])


def test_one_frame_and_long_motions(motion) -> None:
    rotations, root = motion
    bone_map, rig = ue5()
    one = rt.to_target(rotations[:1], root[:1], bone_map, rig, "ROOT_BONE")
    assert one.rotations["pelvis"].shape == (1, 4) and one.locations["root"].shape == (1, 3)
    long_rot = np.concatenate([rotations] * 40)  # 6000 frames: 200 s of dance
    long_root = np.concatenate([root] * 40)
    out = rt.to_target(long_rot, long_root, bone_map, rig, "ROOT_BONE")
    assert out.rotations["head"].shape == (6000, 4)


def test_core_never_imports_bpy() -> None:
    code = ("import sys; import blender_addon.core.retarget, blender_addon.core.bone_maps; "
            "assert 'bpy' not in sys.modules, 'bpy imported'")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)
