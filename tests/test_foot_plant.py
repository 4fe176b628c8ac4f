"""Foot planting without Blender: contact spans, blends, two-bone IK, planting on rigs.

The rigs are the retargeting tests' (``tests/retarget_rigs.py``: Mixamo-, Rigify-, UE5-style
and a SMPL-named rig under a turned, scaled object). The main checks use real dance capture
(CMU subject 5, modern dance) with the contact labels the backend's own importer gives it,
retargeted by the real retargeter; the structural checks (only the legs change, the hips come
down, a partial re-plant keeps the frames outside) use the retargeting tests' synthetic,
busy motion with labels put where its feet slide. Checks measure the planted rig with its
own forward kinematics.

The data used in this project was obtained from mocap.cs.cmu.edu. The database was
created with funding from NSF EIA-0196217.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

from blender_addon.core import foot_contacts as fc
from blender_addon.core import leg_ik
from blender_addon.core import quaternions as quat
from blender_addon.core import retarget as rt
from blender_addon.core.bone_maps import BoneMap
from backend.motion.bvh import load_bvh_clip
from tests import retarget_rigs as rigs
from tests.test_retarget_core import full, mixamo, rigify, ue5

RIGS = {"mixamo": mixamo, "rigify": rigify, "ue5": ue5, "smpl_like": full}
FRAMES = 150
MOCAP = Path(__file__).resolve().parents[2] / "shared" / "data" / "mocap" / "cmu"
CLIPS = ("05_07", "05_11")
FOOT_LABELS = ("left_ankle", "left_foot", "right_ankle", "right_foot")


# ----------------------------------------------------------------------------- spans and blends

def test_contact_spans_are_runs_over_the_threshold() -> None:
    labels = np.array([0, 0.6, 1, 1, 0.2, 0, 1, 0.5, 0.49, 1])
    assert fc.contact_spans(labels) == [fc.Span(1, 4), fc.Span(6, 8), fc.Span(9, 10)]
    assert fc.contact_spans(labels, min_frames=2) == [fc.Span(1, 4), fc.Span(6, 8)]
    assert fc.contact_spans([]) == [] and fc.contact_spans(np.zeros(5)) == []


def test_offsets_hold_inside_and_blend_continuously_outside() -> None:
    t = np.arange(40, dtype=np.float64)
    positions = np.stack([0.01 * t, np.zeros(40), 0.05 + 0.0 * t], axis=1)  # sliding 1 cm a frame
    spans = [fc.Span(10, 20), fc.Span(25, 30)]
    held = fc.held_positions(positions, spans, floor=0.1)
    assert held[0, 2] == 0.1  # never below the floor
    offset, weight = fc.plant_offsets(positions, spans, held, blend=4, max_step=1.0)
    planted = positions + offset
    for span, target in zip(spans, held):
        assert np.abs(planted[span.start:span.stop] - target).max() < 1e-12
        assert (weight[span.start:span.stop] == 1).all()
    assert weight[:5].max() == 0 and weight[35:].max() == 0 and (offset[35:] == 0).all()
    assert np.abs(np.diff(planted[:, 0])).max() < 0.03  # no jump at any edge
    assert ((weight >= 0) & (weight <= 1)).all()
    # A large correction blends over more frames: the foot moves at most ~max_step a frame.
    far = positions.copy()
    far[10:20, 0] += 0.5
    offset, _ = fc.plant_offsets(far, spans, fc.held_positions(far, spans, floor=0.0), blend=4, max_step=0.01)
    assert np.abs(np.diff((far + offset)[:, 0]))[:9].max() <= 0.011 + 0.01


def test_held_positions_join_the_frames_that_are_not_replanted() -> None:
    positions = np.zeros((20, 3))
    positions[:10, 0], positions[10:, 0] = 1.0, 2.0
    editable = np.arange(20) >= 10
    held = fc.held_positions(positions, [fc.Span(5, 15)], floor=-1.0, editable=editable)
    assert held[0, 0] == 1.0



def test_two_bone_ik_reaches_keeps_lengths_and_the_knee_plane() -> None:
    rng = np.random.default_rng(3)
    n = 200
    hip = rng.normal(size=(n, 3))
    knee = hip + np.array([0.0, -0.05, -0.45]) + 0.05 * rng.normal(size=(n, 3))
    ankle = knee + np.array([0.0, 0.05, -0.42]) + 0.05 * rng.normal(size=(n, 3))
    target = ankle + 0.1 * rng.normal(size=(n, 3))
    sol = leg_ik.two_bone_ik(hip, knee, ankle, target)
    l1, l2 = np.linalg.norm(knee - hip, axis=1), np.linalg.norm(ankle - knee, axis=1)
    assert np.abs(np.linalg.norm(sol.knee - hip, axis=1) - l1).max() < 1e-9
    assert np.abs(np.linalg.norm(sol.ankle - sol.knee, axis=1) - l2).max() < 1e-9
    reachable = np.linalg.norm(target - hip, axis=1) < leg_ik.MAX_REACH * (l1 + l2)
    assert np.abs(sol.ankle - target)[reachable].max() < 1e-9
    # The rotations it returns move the bones where it says.
    assert np.abs(np.einsum("tij,tj->ti", sol.thigh, knee - hip) - (sol.knee - hip)).max() < 1e-9
    assert np.abs(np.einsum("tij,tj->ti", sol.shin, ankle - knee) - (sol.ankle - sol.knee)).max() < 1e-9
    # The knee's hinge turns with the smallest swing: the knee stays on the same side.
    before = np.cross(knee - hip, ankle - knee)
    after = np.cross(sol.knee - hip, sol.ankle - sol.knee)
    assert (np.sum(np.einsum("tij,tj->ti", sol.thigh, before) * after, axis=1) > 0).all()


def test_two_bone_ik_stops_short_of_an_unreachable_target() -> None:
    hip = np.zeros((1, 3))
    knee, ankle = np.array([[0.0, 0.01, -0.5]]), np.array([[0.0, 0.0, -1.0]])
    sol = leg_ik.two_bone_ik(hip, knee, ankle, np.array([[0.0, 0.0, -3.0]]))
    assert np.all(np.isfinite(sol.ankle))
    assert sol.ankle[0, 2] < -0.99


# ----------------------------------------------------------------------------- planting on rigs

def _contacts(heads: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Labels on where each foot is low (heel and toe together: a flat foot): spans over
    which the test dance slides the foot by several centimetres."""
    out = {}
    for side in leg_ik.SIDES:
        pos = heads[f"{side}_ankle"]
        low = (pos[:, 2] < np.quantile(pos[:, 2], 0.45)).astype(np.float32)
        out[f"{side}_ankle"] = out[f"{side}_foot"] = low
    return out


def _setup(name: str):  # noqa: ANN202
    bone_map, rig = RIGS[name]()
    rot, root = rigs.synthetic_motion(FRAMES)
    root = root.copy()
    root[:, :2] = 0.3 * (root[:, :2] - root[:1, :2])  # slower travel: feet slide, but reachably
    motion = rt.to_target(rot, root, bone_map, rig, "PELVIS")
    heads = leg_ik.leg_heads(rig, bone_map, motion.rotations, locations=motion.locations)
    return bone_map, rig, motion, heads


@lru_cache(maxsize=None)
def _capture(clip: str):  # noqa: ANN202
    path = MOCAP / f"{clip}.bvh"
    if not path.is_file():
        pytest.fail(f"no mocap at {path} (see shared/data/README.md)")
    return load_bvh_clip(path)


def _real(name: str, clip: str):  # noqa: ANN202
    bone_map, rig = RIGS[name]()
    c = _capture(clip)
    motion = rt.to_target(c.rotations.astype(np.float64), c.root_translation.astype(np.float64), bone_map, rig,
                          "PELVIS")
    labels = {n: c.contacts[:, i] for i, n in enumerate(c.contact_names) if n in FOOT_LABELS}
    assert set(labels) == set(FOOT_LABELS)
    heads = leg_ik.leg_heads(rig, bone_map, motion.rotations, locations=motion.locations)
    return bone_map, rig, motion, labels, heads


@pytest.mark.parametrize("clip", CLIPS)
@pytest.mark.parametrize("name", sorted(RIGS))
def test_planted_feet_hold_still_stay_above_the_floor_and_knees_do_not_snap(name: str, clip: str) -> None:
    bone_map, rig, motion, labels, heads = _real(name, clip)
    result = leg_ik.plant_feet(rig, bone_map, motion.rotations, labels, locations=motion.locations)
    rotations = {**motion.rotations, **result.rotations}
    locations = {**motion.locations, **result.locations}
    after = leg_ik.leg_heads(rig, bone_map, rotations, locations=locations)
    space = rt._RigSpace(rig)
    floor = min(space.heads[rig.index[bone_map.bone(j)], 2] for j in labels)
    slid, spans = 0.0, 0
    for joint, label in labels.items():
        for span in fc.contact_spans(label):  # the labels' own spans, before merging flicker
            part = after[joint][span.start:span.stop]
            moved = np.abs(part - part[0]).max()
            slid = max(slid, float(np.abs(heads[joint][span.start:span.stop] - heads[joint][span.start]).max()))
            assert moved <= 0.01, (joint, span, moved)
            assert part[:, 2].min() >= floor - 0.01
            spans += 1
    assert spans >= 8 and slid > 0.02, "the capture's feet should slide before planting"
    for side in leg_ik.SIDES:
        # No knee snaps: at most 10 degrees a frame, or the capture's own largest step where the
        # dancer's knee itself moves faster (05_07 has a 10.6 degree step).
        own = np.abs(np.diff(leg_ik.knee_angles(heads, side))).max()
        jump = np.abs(np.diff(leg_ik.knee_angles(after, side))).max()
        assert jump <= max(10.0, own + 0.5), (side, jump, own)
    # Bone lengths: the legs' heads stay as far apart as before.
    for side in leg_ik.SIDES:
        for a, b in (("hip", "knee"), ("knee", "ankle")):
            d0 = np.linalg.norm(heads[f"{side}_{b}"] - heads[f"{side}_{a}"], axis=1)
            d1 = np.linalg.norm(after[f"{side}_{b}"] - after[f"{side}_{a}"], axis=1)
            assert np.abs(d1 - d0).max() < 1e-6


def test_flickering_labels_merge_into_one_span() -> None:
    labels = np.array([1, 1, 0, 1, 1, 0, 0, 0, 1], dtype=np.float32)
    assert fc.contact_spans(labels, max_gap=2) == [fc.Span(0, 5), fc.Span(8, 9)]
    assert fc.contact_spans(labels, max_gap=3) == [fc.Span(0, 9)]


@pytest.mark.parametrize("name", sorted(RIGS))
def test_planting_touches_only_leg_rotations_and_the_pelvis(name: str) -> None:
    bone_map, rig, motion, heads = _setup(name)
    result = leg_ik.plant_feet(rig, bone_map, motion.rotations, _contacts(heads), locations=motion.locations)
    legs = {bone_map.bone(f"{s}_{j}") for s in leg_ik.SIDES for j in ("hip", "knee", "ankle")}
    assert set(result.rotations) <= legs
    assert set(result.locations) <= {bone_map.bone("pelvis")}
    # Frames without a correction keep their numbers exactly.
    for bone, q in result.rotations.items():
        assert np.array_equal(q[~result.changed], np.asarray(motion.rotations[bone], np.float64)[~result.changed])


def test_hips_come_down_when_a_leg_cannot_reach() -> None:
    bone_map, rig, motion, heads = _setup("smpl_like")
    # Hold the left ankle 15 cm below where the dance puts it over frames 40-80: out of reach
    # unless the pelvis drops.
    labels = {"left_ankle": np.zeros(FRAMES, np.float32)}
    labels["left_ankle"][40:80] = 1.0
    lowered = {k: np.asarray(v, np.float64).copy() for k, v in motion.rotations.items()}
    straight = quat.normalize(np.tile([1.0, 0.0, 0.0, 0.0], (FRAMES, 1)))
    for j in ("left_hip", "left_knee"):  # a straight leg during the span: nothing left to reach
        lowered[j][40:80] = straight[40:80]
    result = leg_ik.plant_feet(rig, bone_map, lowered, labels, locations=motion.locations)
    assert result.hip_drop.max() >= 0.0
    rotations = {**lowered, **result.rotations}
    after = leg_ik.leg_heads(rig, bone_map, rotations, locations={**motion.locations, **result.locations})
    part = after["left_ankle"][40:80]
    assert np.abs(part - part[0]).max() <= 0.01
    assert np.abs(np.diff(result.hip_drop)).max() < 0.05  # no jump


def test_planting_on_frames_outside_the_range_keeps_them() -> None:
    bone_map, rig, motion, heads = _setup("mixamo")
    editable = np.zeros(FRAMES, dtype=bool)
    editable[50:100] = True
    result = leg_ik.plant_feet(rig, bone_map, motion.rotations, _contacts(heads), locations=motion.locations,
                               editable=editable)
    assert not result.changed[~editable].any()


def test_a_map_without_legs_is_refused() -> None:
    bone_map, rig = mixamo()
    arms_only = BoneMap(name="arms", bones={"pelvis": bone_map.bone("pelvis")})
    with pytest.raises(rt.RetargetError, match="no complete leg"):
        leg_ik.plant_feet(rig, arms_only, {bone_map.bone("pelvis"): np.tile([1.0, 0, 0, 0], (3, 1))}, {})
