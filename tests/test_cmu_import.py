"""Every CMU dance capture in ../shared/data imports onto SMPL through its detected
rig (five rigs), standing on the floor and upright; the salsa runs at its decided
60 fps; and the left-right mirror is an exact reflection.

Fast on purpose: each file is parsed whole but retargeted only over its first
seconds; one file per new rig is retargeted whole for the figures that need a
whole dance (speed, floor work, torso and foot directions).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from backend.conventions import Y_UP_TO_Z_UP
from backend.motion.bvh import BvhMotion, bvh_forward_kinematics, load_bvh_clip, read_bvh, retarget_to_smpl
from backend.motion.clip import MotionClip
from backend.motion.joint_maps import (
    CC_BASE, CMU_BREAKDANCE, CMU_CGSPEED, CMU_SALSA, JointMap, detect_joint_map,
)
from backend.motion.kinematics import forward_kinematics_np
from backend.motion.mirror import MIRROR, mirror_clip, mirror_quaternions, partner_joints
from backend.motion.rotations import np_
from backend.motion.skeleton import JOINT_INDEX, JOINT_NAMES, OFFSETS
from tests.test_rotations import random_quaternions

CMU = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mocap" / "cmu"
needs_cmu = pytest.mark.skipif(not (CMU / "salsa").is_dir() or not (CMU / "breakdance").is_dir(),
                               reason="shared CMU mocap (with salsa/ and breakdance/) not present")

EXPECTED_RIG: dict[str, JointMap] = {"05": CC_BASE, "49": CMU_CGSPEED, "55": CMU_CGSPEED,
                                     "60": CMU_SALSA, "61": CMU_SALSA, "85": CMU_BREAKDANCE}
ALL_FILES = sorted(CMU.glob("**/*.bvh")) if CMU.is_dir() else []
SLICE_SECONDS = 8.0
"""Each file's first seconds are retargeted in the per-file test (the whole file is parsed)."""

FEET = [JOINT_INDEX[n] for n in ("left_ankle", "right_ankle", "left_foot", "right_foot")]


def positions_of(clip: MotionClip, offsets: np.ndarray | None = None) -> np.ndarray:
    mats = np_.quaternion_to_matrix(clip.rotations.astype(np.float64))
    return forward_kinematics_np(mats, clip.root_translation.astype(np.float64), offsets)[0]


def first_seconds(motion: BvhMotion, seconds: float, fps: float) -> BvhMotion:
    return dataclasses.replace(motion, values=motion.values[: int(seconds * fps) + 1])


def standing(p: np.ndarray) -> np.ndarray:
    """Frames with the head well above the pelvis (not floor work, not a deep fold)."""
    return p[:, JOINT_INDEX["head"], 2] - p[:, 0, 2] > 0.45


@pytest.fixture(scope="module")
def whole() -> dict[str, tuple[BvhMotion, MotionClip]]:
    """One representative file per new rig, retargeted whole (parsed once per module)."""
    out = {}
    for key, path in (("salsa", CMU / "salsa" / "60_01.bvh"), ("breakdance", CMU / "breakdance" / "85_12.bvh")):
        motion = read_bvh(path)
        out[key] = motion, retarget_to_smpl(motion, detect_joint_map(motion.names))
    return out


# ----------------------------------------------------------------------- every file


@needs_cmu
def test_the_library_is_all_here():
    """5 rigs, 58 files: 19 ballet (05), 10 modern (49), free dance (55_01), 24 salsa, 4 breakdance."""
    counts = {}
    for path in ALL_FILES:
        counts[path.name[:2]] = counts.get(path.name[:2], 0) + 1
    assert counts == {"05": 19, "49": 10, "55": 1, "60": 12, "61": 12, "85": 4}


@needs_cmu
@pytest.mark.parametrize("path", ALL_FILES, ids=[p.stem for p in ALL_FILES])
def test_every_file_imports_on_the_floor_and_upright(path):
    motion = read_bvh(path)
    joint_map = detect_joint_map(motion.names)
    assert joint_map is EXPECTED_RIG[path.name[:2]]
    source_fps = joint_map.source_fps or motion.fps
    part = first_seconds(motion, SLICE_SECONDS, source_fps)
    clip = retarget_to_smpl(part, joint_map)
    kept = part.num_frames - (1 if joint_map.reference == "first_frame" else 0) - joint_map.lead_in_frames
    assert clip.fps == 30 and clip.num_frames == -(-kept // round(source_fps / 30))
    p = positions_of(clip)
    z = p[..., 2]
    assert np.isfinite(p).all() and clip.contacts.shape == (clip.num_frames, 9)
    up = standing(p)
    assert up.mean() > (0.3 if joint_map is CMU_BREAKDANCE else 0.5)
    # Feet on the floor: where the dancer stands, the lowest foot joint sits a few cm up
    # (the foot joints are 2 cm above the sole), and nothing is far underground.
    sole = z[up][:, FEET].min(-1)
    # 05_06 has a cartwheel: SMPL's hand, not its foot, sets the floor there, and SMPL's
    # arms are longer for its legs than the CC rig's, so it stands ~12 cm up elsewhere.
    assert 0.0 < np.median(sole) < (0.15 if path.stem == "05_06" else 0.09), np.median(sole)
    assert z.min() > -0.06
    # Upright at a human size: head over the pelvis, torso near vertical when standing.
    assert 1.3 < np.median(z[up, JOINT_INDEX["head"]]) < 1.7
    torso = p[up, JOINT_INDEX["neck"]] - p[up, 0]
    tilt = np.degrees(np.arccos(torso[:, 2] / np.linalg.norm(torso, axis=-1)))
    assert np.median(tilt) < 30, np.median(tilt)


def fastest_joint_steps(motion: BvhMotion, frames: int) -> np.ndarray:
    """Per frame, how far (file units) the fastest joint moves to the next, root removed."""
    p = bvh_forward_kinematics(dataclasses.replace(motion, values=motion.values[:frames]))[0]
    return np.linalg.norm(np.diff(p - p[:, :1], axis=0), axis=-1).max(-1)


@needs_cmu
@pytest.mark.parametrize("path", [CMU / "49_09.bvh", CMU / "55_01.bvh", CMU / "salsa" / "60_01.bvh",
                                  CMU / "salsa" / "61_07.bvh", CMU / "breakdance" / "85_03.bvh"],
                         ids=lambda p: p.stem)
def test_calibration_frames_are_dropped(path):
    """A calibration pose spliced before the dance shows as a jump: the cgspeed files'
    T-pose frame 0, and the salsa files' 7-frame blend out of a rest pose. Whatever the
    map drops covers the jump, and the clip's first frames move like the rest."""
    motion = read_bvh(path)
    joint_map = detect_joint_map(motion.names)
    dropped = joint_map.lead_in_frames + (1 if joint_map.reference == "first_frame" else 0)
    steps = fastest_joint_steps(motion, 300)
    typical = np.median(steps)
    assert (steps[:dropped] > 2 * typical).sum() >= dropped - 2  # what is dropped is the jump
    assert (steps[dropped:dropped + 5] < 5 * typical).all()  # and the rest moves like a dance


# ----------------------------------------------------------------------- salsa frame rate


@needs_cmu
def test_salsa_plays_at_60_fps_not_the_files_120(whole):
    motion, clip = whole["salsa"]
    assert motion.fps == 120 and CMU_SALSA.source_fps == 60
    kept = motion.num_frames - CMU_SALSA.lead_in_frames
    assert clip.num_frames == -(-kept // 2)  # 60 -> 30: every 2nd frame
    assert clip.seconds == pytest.approx(kept / 60, abs=0.05)
    frame_for_frame = retarget_to_smpl(first_seconds(motion, 1.0, 60), CMU_SALSA, fps=None)
    assert frame_for_frame.fps == 60 and frame_for_frame.num_frames == 61 - CMU_SALSA.lead_in_frames


# ----------------------------------------------------------------------- the new rigs, whole


@needs_cmu
@pytest.mark.parametrize("key, speed_range, floor_work", [
    ("salsa", (0.4, 0.8), (0.0, 0.01)),       # all upright; README: ~0.5 m/s at 60 fps
    ("breakdance", (1.0, 1.7), (0.04, 0.2)),  # README: 1.3 m/s, head below hips ~ a tenth
], ids=["salsa", "breakdance"])
def test_new_rigs_move_like_their_dance(whole, key, speed_range, floor_work):
    _, clip = whole[key]
    p = positions_of(clip)
    speed = np.linalg.norm(np.diff(p, axis=0), axis=-1).mean() * clip.fps
    assert speed_range[0] < speed < speed_range[1], speed
    head_down = (p[:, JOINT_INDEX["head"], 2] < p[:, 0, 2]).mean()
    assert floor_work[0] <= head_down <= floor_work[1], head_down


@needs_cmu
@pytest.mark.parametrize("key", ["salsa", "breakdance"])
def test_new_rigs_follow_the_source_bones(whole, key):
    """Limbs, feet (the salsa foot through its End Site), the hip and shoulder lines and
    the whole torso point where the source's do, frame by frame."""
    motion, _ = whole[key]
    joint_map = detect_joint_map(motion.names)
    clip = retarget_to_smpl(motion, joint_map, fps=None)
    p = positions_of(clip)
    source, rotations = bvh_forward_kinematics(motion)
    source, rotations = source[joint_map.lead_in_frames:] @ Y_UP_TO_Z_UP.T, rotations[joint_map.lead_in_frames:]
    index = {n: i for i, n in enumerate(motion.names)}
    points = {smpl: source[:, index[name]] for name, smpl in joint_map.joints.items()}
    for name, smpl in joint_map.end_sites.items():  # the End Site in world space
        tip = np.einsum("tab,b->ta", rotations[:, index[name]], motion.end_sites[index[name]])
        points[smpl] = source[:, index[name]] + tip @ Y_UP_TO_Z_UP.T
    pairs = [(f"{s}_{a}", f"{s}_{b}") for s in ("left", "right") for a, b in (
        ("shoulder", "elbow"), ("elbow", "wrist"), ("hip", "knee"), ("knee", "ankle"), ("ankle", "foot"))]
    pairs += [("right_hip", "left_hip"), ("right_collar", "left_collar"), ("pelvis", "neck")]
    for a, b in pairs:
        ours = p[:, JOINT_INDEX[b]] - p[:, JOINT_INDEX[a]]
        theirs = points[b] - points[a]
        cos = (ours * theirs).sum(-1) / np.linalg.norm(ours, axis=-1) / np.linalg.norm(theirs, axis=-1)
        assert np.degrees(np.median(np.arccos(np.clip(cos, -1, 1)))) < 5, (a, b)


# ----------------------------------------------------------------------- mirroring


def symmetric_offsets() -> np.ndarray:
    """SMPL's rest offsets made exactly left-right symmetric (each pair averaged with
    its partner's reflection, centre joints on the plane x = 0)."""
    partners = partner_joints()
    return (OFFSETS + OFFSETS[partners] @ MIRROR) / 2


def dance_clip() -> MotionClip:
    """A real dance when the data is here (its contacts are real), else random poses."""
    path = CMU / "55_01.bvh"
    if path.is_file():
        return load_bvh_clip(path)
    rng = np.random.default_rng(3)
    q = random_quaternions(40 * 24, seed=3).reshape(40, 24, 4)
    return MotionClip(q, rng.normal(size=(40, 3)), contacts=rng.random((40, 2)),
                      contact_names=("left_ankle", "right_ankle"))


def test_quaternion_mirror_is_the_reflected_rotation():
    q = random_quaternions(200, seed=5)
    r = np_.quaternion_to_matrix(q)
    assert np.allclose(np_.quaternion_to_matrix(mirror_quaternions(q)), MIRROR @ r @ MIRROR, atol=1e-12)


def test_mirror_fk_is_the_reflected_dance():
    """On a symmetric skeleton the mirrored clip's joints are exactly the original's,
    reflected across x = 0, with left and right swapped; on SMPL's own slightly
    asymmetric skeleton they match to within its asymmetry (a few cm at the hands)."""
    clip = dance_clip()
    mirrored = mirror_clip(clip)
    partners = partner_joints()
    for offsets, tolerance in ((symmetric_offsets(), 1e-5), (None, 0.05)):
        original = positions_of(clip, offsets)
        expected = original[:, partners] @ MIRROR
        assert np.abs(positions_of(mirrored, offsets) - expected).max() < tolerance
    # Contacts: the left foot's labels are the right foot's, and so on.
    names = clip.contact_names
    for k, name in enumerate(names):
        partner = JOINT_NAMES[partners[JOINT_INDEX[name]]]
        assert np.array_equal(mirrored.contacts[:, k], clip.contacts[:, names.index(partner)])
    assert mirrored.fps == clip.fps
    assert np.array_equal(mirrored.rotations[..., 0], clip.rotations[:, partners, 0])  # w kept


def test_mirror_twice_is_the_identity():
    clip = dance_clip()
    twice = mirror_clip(mirror_clip(clip))
    assert np.array_equal(twice.rotations, clip.rotations)
    assert np.array_equal(twice.root_translation, clip.root_translation)
    assert np.array_equal(twice.contacts, clip.contacts) and twice.contact_names == clip.contact_names
