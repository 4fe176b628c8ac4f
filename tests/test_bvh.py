"""BVH reading (any skeleton), retargeting the real CMU captures onto SMPL, and the
SMPL writer's round trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from backend.conventions import Y_UP_TO_Z_UP
from backend.motion.bvh import (
    BvhError, bvh_forward_kinematics, load_bvh_clip, read_bvh, resample_motion, retarget_to_smpl,
    write_bvh,
)
from backend.motion.clip import MotionClip
from backend.motion.joint_maps import (
    CC_BASE, CMU_CGSPEED, SMPL_BVH, UnknownSkeletonError, detect_joint_map,
)
from backend.motion.kinematics import forward_kinematics_np
from backend.motion.rotations import np_
from backend.motion.skeleton import JOINT_INDEX, JOINT_NAMES, NUM_JOINTS, PELVIS_REST_HEIGHT
from tests.test_rotations import random_quaternions, same_rotation_quat

CMU = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mocap" / "cmu"
CC_FILE, CGSPEED_FILE = CMU / "05_03.bvh", CMU / "55_01.bvh"  # a short CC_Base trial; the CMU rig
needs_cmu = pytest.mark.skipif(not CGSPEED_FILE.is_file(), reason="shared CMU mocap not present")

TOY = """HIERARCHY
ROOT Hips
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Xrotation Yrotation Zrotation
  JOINT Chest
  {
    OFFSET 0 10 0
    CHANNELS 3 Yrotation Xrotation Zrotation
    JOINT Slider
    {
      OFFSET 0 5 0
      CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
      End Site
      {
        OFFSET 0 3 0
      }
    }
  }
  JOINT Knee
  {
    OFFSET 0 -10 0
    CHANNELS 1 Xrotation
    End Site
    {
      OFFSET 0 -5 0
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.5
1 2 3 90 0 0  0 0 0  2 0 0 10 20 30  0
0 0 0 0 0 0  90 0 0  2 0 0 0 0 0  30
"""


def axis_rotation(axis: str, degrees: float) -> np.ndarray:
    aa = np.zeros(3)
    aa["XYZ".index(axis)] = np.radians(degrees)
    return np_.axis_angle_to_matrix(aa)


def test_parse_toy_hierarchy_and_channels(tmp_path):
    (tmp_path / "toy.bvh").write_text(TOY)
    m = read_bvh(tmp_path / "toy.bvh")
    assert m.names == ("Hips", "Chest", "Slider", "Knee") and m.parents == (-1, 0, 1, 0)
    assert m.num_frames == 2 and m.fps == 2.0
    assert np.allclose(m.end_sites[2], [0, 3, 0]) and np.allclose(m.end_sites[3], [0, -5, 0])
    local = m.local_rotations()
    # Euler order as listed: Slider's "Z X Y" channels give Rz @ Rx @ Ry.
    expected = axis_rotation("Z", 10) @ axis_rotation("X", 20) @ axis_rotation("Y", 30)
    assert np.allclose(local[0, 2], expected)
    assert np.allclose(local[1, 3], axis_rotation("X", 30))  # a one-channel joint
    positions, _ = bvh_forward_kinematics(m)
    # Frame 0: root at (1,2,3) turned 90 degrees about X, so +Y offsets point along +Z; the
    # Slider's position channels (2,0,0) replace its OFFSET.
    assert np.allclose(positions[0], [[1, 2, 3], [1, 2, 13], [3, 2, 13], [1, 2, -7]])
    # Frame 1: the Chest turns 90 degrees about Y, carrying the Slider's (2,0,0) to (0,0,-2).
    assert np.allclose(positions[1], [[0, 0, 0], [0, 10, 0], [0, 10, -2], [0, -10, 0]])


@pytest.mark.parametrize("text, code", [
    (TOY.replace("MOTION", "MOTON"), "not_bvh"),
    (TOY[: TOY.rindex("30")], "truncated_motion"),
    (TOY.replace("Xrotation Yrotation Zrotation\n  JOINT", "Xrotation Yrotation Wrotation\n  JOINT"),
     "unknown_channel"),
    (TOY.replace("  JOINT Knee\n  {", "  JOINT Knee\n"), "bad_hierarchy"),
    (TOY.replace("Frames: 2", "Frames: two"), "bad_motion"),
])
def test_bad_files_have_codes(tmp_path, text, code):
    (tmp_path / "bad.bvh").write_text(text)
    with pytest.raises(BvhError) as err:
        read_bvh(tmp_path / "bad.bvh")
    assert err.value.code == code


def test_unknown_skeleton_and_missing_joints(tmp_path):
    (tmp_path / "toy.bvh").write_text(TOY)
    with pytest.raises(UnknownSkeletonError) as err:
        load_bvh_clip(tmp_path / "toy.bvh")
    assert err.value.code == "unknown_skeleton"
    with pytest.raises(BvhError) as err:
        retarget_to_smpl(read_bvh(tmp_path / "toy.bvh"), CC_BASE)
    assert err.value.code == "joint_not_found"


# ----------------------------------------------------------------- real CMU captures


def smpl_positions(clip: MotionClip) -> np.ndarray:
    mats = np_.quaternion_to_matrix(clip.rotations.astype(np.float64))
    return forward_kinematics_np(mats, clip.root_translation.astype(np.float64))[0]


LIMBS = [(f"{side}_{a}", f"{side}_{b}") for side in ("left", "right")
         for a, b in (("shoulder", "elbow"), ("elbow", "wrist"), ("hip", "knee"), ("knee", "ankle"))]


@needs_cmu
@pytest.mark.parametrize("path, joint_map", [(CC_FILE, CC_BASE), (CGSPEED_FILE, CMU_CGSPEED)],
                         ids=["cc_base", "cmu_cgspeed"])
def test_real_capture_retargets_plausibly(path, joint_map):
    motion = read_bvh(path)
    assert detect_joint_map(motion.names) is joint_map
    clip = retarget_to_smpl(motion, joint_map)
    step = round(motion.fps / 30)
    source_frames = motion.num_frames - (1 if joint_map.reference == "first_frame" else 0)
    assert clip.fps == 30 and clip.num_frames == -(-source_frames // step)
    p = smpl_positions(clip)
    z = p[..., 2]
    feet = [JOINT_INDEX[n] for n in ("left_ankle", "right_ankle", "left_foot", "right_foot")]
    # Upright: head above pelvis above feet on average; a plausible standing height.
    assert z[:, JOINT_INDEX["head"]].mean() > z[:, 0].mean() + 0.3 > z[:, feet].mean() + 0.3
    assert 1.2 < np.median(z[:, JOINT_INDEX["head"]]) < 1.7
    assert 0.7 < z[:, 0].mean() < 1.05
    # On the floor: the lowest foot joint touches down (within a few cm) and stays near it.
    lowest_foot = z[:, feet].min(-1)
    assert -0.05 < lowest_foot.min() < 0.05 and np.median(lowest_foot) < 0.15
    # Root travel matches the source's, rescaled from its legs to SMPL's (within reason).
    source_root = bvh_forward_kinematics(motion)[0][:, 0] @ Y_UP_TO_Z_UP.T * joint_map.metres_per_unit
    source_root = source_root[-source_frames:][::step]
    travel = np.linalg.norm(np.diff(clip.root_translation[:, :2], axis=0), axis=-1).sum()
    source_travel = np.linalg.norm(np.diff(source_root[:, :2], axis=0), axis=-1).sum()
    assert 0.6 < travel / source_travel < 1.4 and travel > 0.5
    assert clip.contacts.shape == (clip.num_frames, 9) and 0.2 < clip.contacts[:, :4].mean() < 0.95


@needs_cmu
@pytest.mark.parametrize("path, joint_map", [(CC_FILE, CC_BASE), (CGSPEED_FILE, CMU_CGSPEED)],
                         ids=["cc_base", "cmu_cgspeed"])
def test_limb_directions_follow_the_source(path, joint_map):
    motion = read_bvh(path)
    clip = retarget_to_smpl(motion, joint_map, fps=None)  # frame for frame
    source = bvh_forward_kinematics(motion)[0] @ Y_UP_TO_Z_UP.T
    if joint_map.reference == "first_frame":
        source = source[1:]  # the calibration T-pose is not part of the clip
    assert clip.num_frames == source.shape[0]
    p = smpl_positions(clip)
    by_smpl = {smpl: motion.names.index(name) for name, smpl in joint_map.joints.items()}
    for a, b in LIMBS:
        ours = p[:, JOINT_INDEX[b]] - p[:, JOINT_INDEX[a]]
        theirs = source[:, by_smpl[b]] - source[:, by_smpl[a]]
        cos = (ours * theirs).sum(-1) / np.linalg.norm(ours, axis=-1) / np.linalg.norm(theirs, axis=-1)
        angles = np.degrees(np.arccos(np.clip(cos, -1, 1)))
        assert np.median(angles) < 10, (a, b, np.median(angles))


@needs_cmu
def test_knees_and_elbows_bend_about_their_hinges():
    """Limb twist comes from the knee/elbow hinge seen over the clip, so SMPL's knees bend
    about X and its elbows about Z (its own rest-pose hinges), whatever twist the ballet
    reference frame caught the limbs in (without it, this file's right elbow bends
    mostly about the wrong axis)."""
    clip = load_bvh_clip(CC_FILE)
    aa = np_.quaternion_to_axis_angle(clip.rotations.astype(np.float64))
    for joint, axis in (("left_knee", 0), ("right_knee", 0), ("left_elbow", 2), ("right_elbow", 2)):
        a = aa[:, JOINT_INDEX[joint]]
        angle = np.linalg.norm(a, axis=-1)
        bent = angle > np.radians(20)
        assert bent.sum() > 10
        assert np.median(np.abs(a[bent, axis]) / angle[bent]) > 0.9, joint


# ----------------------------------------------------------------- writing and resampling


def random_clip(frames: int, fps: float, seed: int) -> MotionClip:
    q = random_quaternions(frames * NUM_JOINTS, seed).reshape(frames, NUM_JOINTS, 4)
    root = np.random.default_rng(seed).normal(size=(frames, 3)) + [0, 0, 1]
    return MotionClip(q, root, fps)


def test_write_read_round_trip(tmp_path):
    clip = random_clip(25, 30.0, seed=1)
    path = write_bvh(clip, tmp_path / "dance.bvh")
    raw = read_bvh(path)
    assert set(raw.names) == set(JOINT_NAMES) and raw.names[0] == "pelvis"
    assert raw.offsets[0, 1] == pytest.approx(PELVIS_REST_HEIGHT)  # Y-up, metres
    assert np.allclose(raw.values[:, :3], clip.root_translation @ Y_UP_TO_Z_UP, atol=1e-6)
    assert detect_joint_map(raw.names) is SMPL_BVH
    back = load_bvh_clip(path, place_on_floor=False)
    assert back.num_frames == clip.num_frames and back.fps == 30
    assert same_rotation_quat(back.rotations.astype(np.float64), clip.rotations).max() < 1e-4
    assert np.abs(back.root_translation - clip.root_translation).max() < 1e-4


def test_every_second_frame_from_60fps(tmp_path):
    clip = random_clip(11, 60.0, seed=2)
    back = load_bvh_clip(write_bvh(clip, tmp_path / "d.bvh"), place_on_floor=False)
    assert back.num_frames == 6
    assert same_rotation_quat(back.rotations.astype(np.float64), clip.rotations[::2]).max() < 1e-4


def test_slerp_for_uneven_rates():
    """50 -> 30 fps: a joint spinning at a constant rate keeps spinning at that rate."""
    frames, omega = 51, 2.0  # rad/s about Z
    t = np.arange(frames) / 50.0
    aa = np.zeros((frames, 1, 3))
    aa[:, 0, 2] = omega * t
    root = np.stack([t, 2 * t, np.zeros_like(t)], -1)
    q, r = resample_motion(np_.axis_angle_to_quaternion(aa), root, 50.0, 30.0)
    t_out = np.arange(31) / 30.0
    assert q.shape == (31, 1, 4)
    expected = np.zeros((31, 1, 3))
    expected[:, 0, 2] = omega * t_out
    assert same_rotation_quat(q, np_.axis_angle_to_quaternion(expected)).max() < 1e-9
    assert np.allclose(r[:, 0], t_out) and np.allclose(r[:, 1], 2 * t_out)
