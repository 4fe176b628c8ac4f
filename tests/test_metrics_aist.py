"""AIST++ kinetic/geometric features and the FID / diversity metrics.

Known answers come from physics (constant velocity, a static body), geometry (a
standing T-pose, a raised hand), linear algebra (shifted or scaled Gaussians), and
from slow loop versions written here from the reference definitions (our reading
of ``aist_plusplus/features/utils.py``, ``manual.py`` and Bailando's ``kinetic.py``),
which the vectorised module must match.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from backend.metrics import aist_features as af
from backend.metrics import distribution as dist
from protocol.skeleton import JOINT_INDEX, JOINT_NAMES, PELVIS_REST_HEIGHT, rest_joint_positions

DT = 1.0 / 60.0


# --- slow reference-style loops (our own code, from the reference definitions) ----

def loop_kinetic(p: np.ndarray, quirk: bool) -> np.ndarray:
    """Per joint, per frame i = 1..T-1, per window offset: the reference's definition."""
    n_frames, n_joints, _ = p.shape
    window = 2
    out = []
    for joint in range(n_joints):
        horizontal = vertical = expenditure = 0.0
        for i in range(1, n_frames):
            step_sum, n_steps = np.zeros(3), 0
            acc_sum, n_acc = np.zeros(3), 0
            for j in range(-window, window + 1):
                k = i + j
                if k - 1 >= 0 and k < n_frames:
                    step_sum += p[k, joint] - p[k - 1, joint]
                    n_steps += 1
                if k - 1 >= 0 and k + 1 < n_frames:
                    ahead = (p[k + 1, joint] - p[k, joint]) / DT
                    if quirk:
                        behind = p[k, joint] - p[k - 1, joint] / DT
                    else:
                        behind = (p[k, joint] - p[k - 1, joint]) / DT
                    acc_sum += (ahead - behind) / DT
                    n_acc += 1
            velocity = step_sum / (n_steps * DT)
            horizontal += velocity[0] ** 2 + velocity[2] ** 2
            vertical += velocity[1] ** 2
            expenditure += np.linalg.norm(acc_sum / n_acc)
        out += [horizontal / (n_frames - 1), vertical / (n_frames - 1), expenditure / (n_frames - 1)]
    return np.array(out)


# The reference's body lengths, from the SMPL rest joint positions it hard-codes
# (aist_plusplus/features/manual.py, ManualFeatures.__init__), Y-up metres.
REF_L_SHOULDER = np.array([1.99113488e-01, 2.36807942e-01, -1.80702247e-02])
REF_L_ELBOW = np.array([4.54445392e-01, 2.21158922e-01, -4.10167128e-02])
REF_R_SHOULDER = np.array([-1.91692337e-01, 2.36928746e-01, -1.23055102e-02])
REF_L_HIP = np.array([5.64076714e-02, -3.23069185e-01, 1.09197125e-02])
REF_R_HIP = np.array([-6.24834076e-02, -3.31302464e-01, 1.50412619e-02])
HL = float(np.linalg.norm(REF_L_SHOULDER - REF_L_ELBOW))
SW = float(np.linalg.norm(REF_L_SHOULDER - REF_R_SHOULDER))
HW = float(np.linalg.norm(REF_L_HIP - REF_R_HIP))

# (kind, joints..., threshold or angle range), in the reference order.
GEOMETRIC_TABLE = [
    ("nmove", "neck", "right_hip", "left_hip", "right_wrist", 1.8 * HL),
    ("nmove", "neck", "left_hip", "right_hip", "left_wrist", 1.8 * HL),
    ("nplane", "spine3", "neck", "neck", "right_wrist", 0.2 * HL),
    ("nplane", "spine3", "neck", "neck", "left_wrist", 0.2 * HL),
    ("move", "spine1", "spine3", "spine3", "right_wrist", 1.8 * HL),
    ("move", "spine1", "spine3", "spine3", "left_wrist", 1.8 * HL),
    ("angle", "right_elbow", "right_shoulder", "right_elbow", "right_wrist", (0, 110)),
    ("angle", "left_elbow", "left_shoulder", "left_elbow", "left_wrist", (0, 110)),
    ("nplane", "left_shoulder", "right_shoulder", "left_wrist", "right_wrist", 2.5 * SW),
    ("move", "left_wrist", "right_wrist", "right_wrist", "left_wrist", 1.4 * HL),
    ("move", "right_wrist", "pelvis", "left_wrist", "pelvis", 1.4 * HL),
    ("move", "left_wrist", "pelvis", "right_wrist", "pelvis", 1.4 * HL),
    ("fast", "right_wrist", 2.5 * HL),
    ("fast", "left_wrist", 2.5 * HL),
    ("plane", "pelvis", "left_hip", "left_foot", "right_ankle", 0.38 * HL),
    ("plane", "pelvis", "right_hip", "right_foot", "left_ankle", 0.38 * HL),
    ("nplane", "ZERO", "UP", "FLOOR", "right_ankle", 1.2 * HL),
    ("nplane", "ZERO", "UP", "FLOOR", "left_ankle", 1.2 * HL),
    ("nplane", "left_hip", "right_hip", "left_ankle", "right_ankle", 2.1 * HW),
    ("angle", "right_knee", "right_hip", "right_knee", "right_ankle", (0, 110)),
    ("angle", "left_knee", "left_hip", "left_knee", "left_ankle", (0, 110)),
    ("fast", "right_ankle", 2.5 * HL),
    ("fast", "left_ankle", 2.5 * HL),
    ("angle", "neck", "pelvis", "right_shoulder", "right_elbow", (25, 180)),
    ("angle", "neck", "pelvis", "left_shoulder", "left_elbow", (25, 180)),
    ("angle", "neck", "pelvis", "right_hip", "right_knee", (50, 180)),
    ("angle", "neck", "pelvis", "left_hip", "left_knee", (50, 180)),
    ("plane", "right_ankle", "neck", "left_ankle", "pelvis", 0.5 * HL),
    ("angle", "neck", "pelvis", "ZERO", "UP", (70, 110)),
    ("nplane", "ZERO", "DOWN", "FLOOR", "right_wrist", -1.2 * HL),
    ("nplane", "ZERO", "DOWN", "FLOOR", "left_wrist", -1.2 * HL),
    ("fast", "pelvis", 2.3 * HL),
]


def loop_geometric(p: np.ndarray) -> np.ndarray:
    """Frame by frame, feature by feature, scalar arithmetic (reference definitions)."""
    per_frame = 1.0 / 120.0  # the reference helpers' default, never overridden

    def get(name: str, f: int) -> np.ndarray:
        if name == "ZERO":
            return np.zeros(3)
        if name == "UP":
            return np.array([0.0, 1.0, 0.0])
        if name == "DOWN":
            return np.array([0.0, -1.0, 0.0])
        if name == "FLOOR":
            return np.array([0.0, min(p[f, :, 1]), 0.0])
        return p[f, JOINT_INDEX[name]]

    rows = []
    with np.errstate(invalid="ignore", divide="ignore"):
        for f in range(1, len(p)):
            row = []
            for kind, *args in GEOMETRIC_TABLE:
                limit = args[-1]
                if kind == "fast":
                    speed = np.linalg.norm(get(args[0], f) - get(args[0], f - 1)) / per_frame
                    row.append(speed > limit)
                    continue
                a, b, c, d = (get(n, f) for n in args[:4])
                if kind == "nmove":
                    moved = (d - a) - (get(args[3], f - 1) - get(args[0], f - 1))
                    normal = np.cross(c - a, b - a)
                    row.append(np.dot(moved, normal) / np.linalg.norm(normal) / per_frame > limit)
                elif kind == "move":
                    moved = (c - a) - (get(args[2], f - 1) - get(args[0], f - 1))
                    row.append(np.dot(moved, b - a) / np.linalg.norm(b - a) / per_frame > limit)
                elif kind == "plane":
                    normal = np.cross(c - a, b - a)
                    row.append(np.dot(normal, d - a) / np.linalg.norm(normal) > limit)
                elif kind == "nplane":
                    row.append(np.dot(b - a, d - c) / np.linalg.norm(b - a) > limit)
                else:  # angle
                    u, w = b - a, d - c
                    angle = np.degrees(np.arccos(np.dot(u, w) / (np.linalg.norm(u) * np.linalg.norm(w))))
                    row.append(limit[0] < angle < limit[1])
            rows.append(row)
    return np.array(rows, dtype=np.float64).mean(axis=0)


# --- helpers --------------------------------------------------------------------

def standing_aist(n_frames: int = 6) -> np.ndarray:
    """A motionless T-pose standing on the floor, Y-up, 60 fps (via our conversion)."""
    ours = rest_joint_positions() + np.array([0.0, 0.0, PELVIS_REST_HEIGHT])
    return af.to_aist_frame(np.repeat(ours[None], n_frames, axis=0), fps=60.0)


def random_motion(rng: np.random.Generator, n_frames: int, offset: float = 0.0) -> np.ndarray:
    """Rest pose (Y-up) plus smooth random joint wiggles and a drifting root."""
    base = standing_aist(1)[0]
    wiggle = np.cumsum(rng.normal(scale=0.012, size=(n_frames, 24, 3)), axis=0)
    drift = np.cumsum(rng.normal(scale=0.01, size=(n_frames, 1, 3)), axis=0)
    return base[None] + wiggle + drift + offset


# --- to_aist_frame ----------------------------------------------------------------

def test_to_aist_frame_lengths() -> None:
    clip = np.zeros((31, 24, 3))
    assert af.to_aist_frame(clip, fps=30.0).shape == (61, 24, 3)  # 1 s at 60 fps
    assert af.to_aist_frame(clip, fps=60.0).shape == (31, 24, 3)
    assert af.to_aist_frame(clip, fps=24.0).shape == (76, 24, 3)  # 1.25 s -> 75 + 1
    assert af.to_aist_frame(np.zeros((10, 24, 3)), fps=30.0).shape == (19, 24, 3)


def test_to_aist_frame_axes_are_a_proper_rotation() -> None:
    points = np.array([[[0.0, 0.0, 1.0], [0.0, -1.0, 0.0], [1.0, 0.0, 0.0]]])
    up, forward, side = af.to_aist_frame(points, fps=60.0)[0]
    np.testing.assert_allclose(up, [0.0, 1.0, 0.0])       # Z = 1 m ends at Y = 1 m
    np.testing.assert_allclose(forward, [0.0, 0.0, 1.0])  # our facing -Y is SMPL's +Z
    np.testing.assert_allclose(side, [1.0, 0.0, 0.0])
    # Images of x, y, z keep their handedness: det = +1, not a reflection.
    basis = af.to_aist_frame(np.eye(3)[None], fps=60.0)[0]
    assert np.linalg.det(basis) == pytest.approx(1.0)


def test_to_aist_frame_keeps_linear_motion_exactly() -> None:
    rng = np.random.default_rng(0)
    start, velocity = rng.normal(size=(24, 3)), rng.normal(size=(24, 3))
    for fps in (30.0, 24.0, 50.0):
        t_in = np.arange(37) / fps
        clip = start + velocity * t_in[:, None, None]
        out = af.to_aist_frame(clip, fps=fps)
        t_out = np.arange(out.shape[0]) / 60.0
        assert t_out[-1] <= t_in[-1] + 1e-12 and t_out[-1] + 1 / 60 > t_in[-1]
        expected = (start + velocity * t_out[:, None, None]) @ np.array(
            [[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])  # row form of (x, y, z) -> (x, z, -y)
        np.testing.assert_allclose(out, expected, atol=1e-12)
    # 30 fps: every original sample is kept, at the even 60 fps frames.
    clip = rng.normal(size=(8, 24, 3))
    np.testing.assert_allclose(af.to_aist_frame(clip, 30.0)[::2], af.to_aist_frame(clip, 60.0))


# --- kinetic features ---------------------------------------------------------------

def test_constant_velocity_energies_and_no_expenditure() -> None:
    t = np.arange(40) * DT
    offsets = np.random.default_rng(1).normal(size=(24, 3))
    v_horizontal = np.array([0.6, 0.0, -0.8])  # |v_xz| = 1.0 m/s in the Y-up frame
    clip = offsets + v_horizontal * t[:, None, None]
    features = af.kinetic_features(clip).reshape(24, 3)
    np.testing.assert_allclose(features[:, 0], 1.0, rtol=1e-9)
    np.testing.assert_allclose(features[:, 1], 0.0, atol=1e-12)
    np.testing.assert_allclose(features[:, 2], 0.0, atol=1e-6)

    rising = offsets + np.array([0.0, 0.5, 0.0]) * t[:, None, None]
    features = af.kinetic_features(rising).reshape(24, 3)
    np.testing.assert_allclose(features[:, 0], 0.0, atol=1e-12)
    np.testing.assert_allclose(features[:, 1], 0.25, rtol=1e-9)


def test_constant_velocity_through_our_convention() -> None:
    """Our Z is the vertical, our X/Y the horizontal, whatever the input fps."""
    body = rest_joint_positions()
    t = np.arange(30) / 30.0
    up = body + np.array([0.0, 0.0, 0.7]) * t[:, None, None]
    kinetic, _ = af.extract_features(up, fps=30.0)
    np.testing.assert_allclose(kinetic.reshape(24, 3)[:, 1], 0.49, rtol=1e-9)
    np.testing.assert_allclose(kinetic.reshape(24, 3)[:, 0], 0.0, atol=1e-12)
    sideways = body + np.array([0.3, -0.4, 0.0]) * t[:, None, None]
    kinetic, _ = af.extract_features(sideways, fps=30.0)
    np.testing.assert_allclose(kinetic.reshape(24, 3)[:, 0], 0.25, rtol=1e-9)


def test_quirk_changes_only_expenditure() -> None:
    clip = random_motion(np.random.default_rng(2), 30)
    right = af.kinetic_features(clip, quirk=False).reshape(24, 3)
    bugged = af.kinetic_features(clip, quirk=True).reshape(24, 3)
    np.testing.assert_array_equal(right[:, :2], bugged[:, :2])
    assert np.all(np.abs(bugged[:, 2] - right[:, 2]) > 1.0)


def test_quirk_gives_a_static_body_away_from_the_origin_an_acceleration() -> None:
    """With v_prev = p[k] - p[k-1]/dt, a still joint at p has "acceleration"
    ((0) - (p - p/dt)) / dt = p (1/dt^2 - 1/dt): 3540 m/s^2 per metre at 60 fps."""
    still = standing_aist(8)
    right = af.kinetic_features(still, quirk=False).reshape(24, 3)
    bugged = af.kinetic_features(still, quirk=True).reshape(24, 3)
    np.testing.assert_allclose(right, 0.0, atol=1e-9)
    distance = np.linalg.norm(still[0], axis=-1)
    np.testing.assert_allclose(bugged[:, 2], distance * (60.0**2 - 60.0), rtol=1e-9)
    np.testing.assert_allclose(bugged[:, :2], 0.0, atol=1e-9)
    # At the origin the bug has nothing to scale.
    np.testing.assert_allclose(af.kinetic_features(np.zeros((8, 24, 3)), quirk=True), 0.0)


def test_root_subtraction_makes_the_quirk_independent_of_where_the_clip_starts() -> None:
    body = rest_joint_positions()
    still = np.repeat(body[None], 5, axis=0)
    near, _ = af.extract_features(still, quirk=True)
    far, _ = af.extract_features(still + np.array([3.0, -2.0, 1.0]), quirk=True)
    np.testing.assert_allclose(near, far, rtol=1e-9)
    # Joints at distance r from the pelvis read 3540 r under the quirk.
    r = np.linalg.norm(body - body[0], axis=-1)
    np.testing.assert_allclose(near.reshape(24, 3)[:, 2], r * 3540.0, rtol=1e-9)


@pytest.mark.parametrize("quirk", [False, True])
@pytest.mark.parametrize("n_frames", [3, 4, 6, 41])
def test_kinetic_matches_loop_definition(quirk: bool, n_frames: int) -> None:
    rng = np.random.default_rng(n_frames)
    for offset in (0.0, 1.5):
        clip = random_motion(rng, n_frames, offset)
        fast = af.kinetic_features(clip, quirk=quirk)
        slow = loop_kinetic(clip, quirk)
        assert fast.shape == (72,)
        np.testing.assert_allclose(fast, slow, rtol=1e-6, atol=1e-9)


# --- geometric features -------------------------------------------------------------

def test_reference_body_lengths() -> None:
    assert af.HUMERUS_LENGTH == pytest.approx(HL, abs=1e-6)
    assert af.SHOULDER_WIDTH == pytest.approx(SW, abs=1e-6)
    assert af.HIP_WIDTH == pytest.approx(HW, abs=1e-6)


def test_joint_order_is_smpl() -> None:
    for index, name in [(0, "pelvis"), (3, "spine1"), (9, "spine3"), (10, "left_foot"),
                        (12, "neck"), (20, "left_wrist"), (21, "right_wrist"),
                        (22, "left_hand"), (23, "right_hand")]:
        assert JOINT_NAMES[index] == name


def test_standing_t_pose_known_features() -> None:
    features = af.geometric_features(standing_aist())
    names = af.GEOMETRIC_FEATURE_NAMES
    assert len(names) == 32 and features.shape == (32,)
    value = dict(zip(names, features, strict=True))
    expected = {
        # nothing moves: every velocity test is off
        **{n: 0.0 for n in names if "moving" in n or "fast" in n or "rising" in n},
        "right_hand_above_neck": 0.0, "left_hand_above_neck": 0.0,  # arms horizontal
        "right_elbow_bent": 0.0, "left_elbow_bent": 0.0,            # straight (~180 deg)
        "right_knee_bent": 0.0, "left_knee_bent": 0.0,
        "hands_far_apart_sideways": 1.0,   # wrist to wrist ~1.44 m > 2.5 sw ~0.98 m
        "feet_far_apart_sideways": 0.0,    # ankles ~0.17 m apart < 2.1 hw ~0.25 m
        "right_foot_raised": 0.0, "left_foot_raised": 0.0,  # ankles ~0.07 m over toes
        "right_upper_arm_lifted": 1.0, "left_upper_arm_lifted": 1.0,  # ~90 deg to spine
        "right_thigh_lifted": 0.0, "left_thigh_lifted": 0.0,  # thighs along the spine
        "torso_horizontal": 0.0,           # upright: ~180 deg to up
        "right_hand_low": 0.0, "left_hand_low": 0.0,  # wrists ~1.4 m above the floor
    }
    for name, want in expected.items():
        assert value[name] == want, name


def test_raised_hand_and_low_hand_switch_their_features() -> None:
    pose = standing_aist(4)
    shoulder = pose[:, JOINT_INDEX["right_shoulder"]]
    for joint, height in [("right_elbow", 0.26), ("right_wrist", 0.52), ("right_hand", 0.6)]:
        pose[:, JOINT_INDEX[joint]] = shoulder + np.array([0.0, height, 0.0])
    value = dict(zip(af.GEOMETRIC_FEATURE_NAMES, af.geometric_features(pose), strict=True))
    assert value["right_hand_above_neck"] == 1.0
    assert value["left_hand_above_neck"] == 0.0

    pose = standing_aist(4)
    floor = pose[0, :, 1].min()
    pose[:, JOINT_INDEX["left_wrist"], 1] = floor + 0.05
    value = dict(zip(af.GEOMETRIC_FEATURE_NAMES, af.geometric_features(pose), strict=True))
    assert value["left_hand_low"] == 1.0 and value["right_hand_low"] == 0.0


def test_hand_speed_uses_the_reference_frame_time() -> None:
    """Threshold 2.5 hl ~ 0.64 m/s, but the reference divides a 60 fps step by 1/120 s:
    a wrist at a true 0.4 m/s reads 0.8 m/s and counts as fast; 0.2 m/s does not."""
    for speed, want in [(0.4, 1.0), (0.2, 0.0)]:
        pose = standing_aist(10)
        pose[:, JOINT_INDEX["right_wrist"], 0] += speed * DT * np.arange(10)
        value = dict(zip(af.GEOMETRIC_FEATURE_NAMES, af.geometric_features(pose), strict=True))
        assert value["right_hand_fast"] == want
        assert value["left_hand_fast"] == 0.0


def varied_motion(rng: np.random.Generator, n_frames: int) -> np.ndarray:
    """A distorted, arbitrarily tilted body (Y-up) that wanders slowly or fast."""
    pose = standing_aist(1)[0] + rng.normal(scale=0.2, size=(24, 3))
    pose = pose @ Rotation.random(random_state=int(rng.integers(1 << 31))).as_matrix().T
    steps = rng.normal(scale=rng.choice([0.001, 0.004, 0.01]), size=(n_frames, 24, 3))
    return pose[None] + np.cumsum(steps, axis=0)


def test_geometric_matches_loop_definition() -> None:
    rng = np.random.default_rng(7)
    seen_true = np.zeros(32, dtype=bool)
    seen_false = np.zeros(32, dtype=bool)
    for n_frames in (2, 5, 20) * 10:
        clip = varied_motion(rng, n_frames)
        fast = af.geometric_features(clip)
        np.testing.assert_array_equal(fast, loop_geometric(clip))
        assert fast[4] == fast[5]  # the reference's duplicate
        seen_true |= fast > 0
        seen_false |= fast < 1
    assert np.all(seen_true & seen_false)  # every test came out both ways somewhere


def test_extract_features_shapes_and_translation_invariance() -> None:
    clip = random_motion(np.random.default_rng(3), 20) @ np.array(
        [[1.0, 0, 0], [0, 0, 1.0], [0, -1.0, 0]])  # back to our Z-up
    kinetic, geometric = af.extract_features(clip, fps=30.0)
    assert kinetic.shape == (72,) and geometric.shape == (32,)
    moved_k, moved_g = af.extract_features(clip + np.array([5.0, 1.0, 0.0]), fps=30.0)
    np.testing.assert_allclose(moved_k, kinetic, rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(moved_g, geometric)


# --- bad inputs -----------------------------------------------------------------------

def test_feature_inputs_are_validated() -> None:
    good = standing_aist(5)
    with pytest.raises(ValueError):
        af.kinetic_features(good[:, :23])
    with pytest.raises(ValueError):
        af.kinetic_features(good[:2])
    with pytest.raises(ValueError):
        af.geometric_features(good[:1])
    bad = good.copy()
    bad[2, 3, 1] = np.nan
    for fn in (af.kinetic_features, af.geometric_features):
        with pytest.raises(ValueError):
            fn(bad)
    with pytest.raises(ValueError):
        af.to_aist_frame(good, fps=0.0)
    with pytest.raises(ValueError):
        af.to_aist_frame(good[0], fps=30.0)
    with pytest.raises(ValueError):
        af.extract_features(good[:1], fps=30.0)  # one frame spans no time
    with pytest.raises(ValueError):
        af.extract_features(np.zeros((5, 24, 2)), fps=30.0)


# --- FID and diversity ---------------------------------------------------------------

def test_fid_of_identical_sets_is_zero() -> None:
    x = np.random.default_rng(4).normal(size=(300, 6))
    assert dist.fid(x, x) == pytest.approx(0.0, abs=1e-6)
    assert dist.fid(x, x) >= 0.0


def test_fid_of_a_shifted_set_is_the_squared_shift_and_grows() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(200, 5)) @ rng.normal(size=(5, 5))
    direction = rng.normal(size=5)
    direction /= np.linalg.norm(direction)
    values = []
    for length in (0.5, 1.0, 2.0, 4.0):
        value = dist.fid(x + length * direction, x)
        assert value == pytest.approx(length**2, rel=1e-6, abs=1e-6)
        values.append(value)
    assert values == sorted(values) and len(set(values)) == 4


def test_fid_of_a_scaled_set() -> None:
    """x vs 2x: |mu|^2 + tr S + 4 tr S - 2 * 2 tr S = |mu|^2 + tr S (sample cov, ddof 1)."""
    x = np.random.default_rng(6).normal(loc=0.3, size=(150, 4))
    expected = x.mean(axis=0) @ x.mean(axis=0) + np.trace(np.cov(x, rowvar=False))
    assert dist.fid(2.0 * x, x) == pytest.approx(expected, rel=1e-6)


def test_fid_falls_back_to_an_offset_when_the_root_is_not_finite(monkeypatch) -> None:
    real_sqrtm = dist.linalg.sqrtm
    calls = []

    def flaky_sqrtm(matrix, *args, **kwargs):
        calls.append(matrix)
        if len(calls) == 1:
            return np.full_like(matrix, np.inf)
        return real_sqrtm(matrix, *args, **kwargs)

    monkeypatch.setattr(dist.linalg, "sqrtm", flaky_sqrtm)
    x = np.random.default_rng(8).normal(size=(50, 3))
    cov = np.cov(x, rowvar=False)
    value = dist.fid(x + np.array([1.0, 0.0, 0.0]), x)
    shifted = cov + 1e-5 * np.eye(3)
    np.testing.assert_allclose(calls[1], shifted @ shifted)
    # tr(S) + tr(S) - 2 tr(S + eps I) = -6 eps, plus the shift's 1.0
    assert value == pytest.approx(1.0 - 6e-5, rel=1e-9)


def test_diversity_known_answers() -> None:
    clip = np.random.default_rng(9).normal(size=(1, 7))
    assert dist.diversity(np.repeat(clip, 5, axis=0)) == 0.0
    d = 2.5
    two = np.array([[0.0, 0.0, 0.0], [0.0, d * 0.6, d * 0.8]])
    assert dist.diversity(two) == pytest.approx(d)
    triangle = np.array([[0.0, 0.0], [3.0, 0.0], [3.0, 4.0]])  # sides 3, 4, 5
    assert dist.diversity(triangle) == pytest.approx(4.0)


def test_normalize_by_reference() -> None:
    rng = np.random.default_rng(10)
    ref = rng.normal(loc=[1.0, -2.0, 5.0], scale=[0.5, 3.0, 1.0], size=(100, 3))
    ref[:, 2] = 5.0  # a constant dimension
    gen = ref[:10] + 1.0
    ref_n, gen_n = dist.normalize_by_reference(ref, gen)
    np.testing.assert_allclose(ref_n.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(ref_n[:, :2].std(axis=0), 1.0, rtol=1e-9)
    assert np.all(ref_n[:, 2] == 0.0)
    np.testing.assert_allclose(gen_n[:, :2] - ref_n[:10, :2], np.broadcast_to(1.0 / ref[:, :2].std(axis=0), (10, 2)), rtol=1e-9)
    assert np.all(np.abs(gen_n[:, 2]) > 1e9)  # 1 / (0 + 1e-10): the reference's epsilon


def test_fid_and_diversity_normalises_first() -> None:
    rng = np.random.default_rng(11)
    ref_k = rng.normal(scale=[1.0, 10.0, 100.0], size=(80, 3))
    ref_g = rng.uniform(size=(80, 4))
    shift = np.array([1.0, 10.0, 0.0])
    result = dist.fid_and_diversity(ref_k + shift, ref_k, ref_g, ref_g)
    assert set(result) == {"fid_k", "fid_g", "div_k", "div_g", "div_k_reference", "div_g_reference"}
    scaled_shift = shift / (ref_k.std(axis=0) + 1e-10)
    assert result["fid_k"] == pytest.approx(scaled_shift @ scaled_shift, rel=1e-6)
    assert result["fid_g"] == pytest.approx(0.0, abs=1e-6)
    assert result["div_k"] == pytest.approx(result["div_k_reference"], rel=1e-12)
    assert result["div_g"] == pytest.approx(result["div_g_reference"], rel=1e-12)
    ref_n, _ = dist.normalize_by_reference(ref_g, ref_g)
    assert result["div_g_reference"] == pytest.approx(dist.diversity(ref_n))


def test_distribution_inputs_are_validated() -> None:
    x = np.random.default_rng(12).normal(size=(10, 3))
    with pytest.raises(ValueError, match="at least 2"):
        dist.fid(x[:1], x)
    with pytest.raises(ValueError, match="at least 2"):
        dist.diversity(x[:1])
    with pytest.raises(ValueError, match="dimensions differ"):
        dist.fid(x[:, :2], x)
    with pytest.raises(ValueError, match="dimensions differ"):
        dist.fid_and_diversity(x, x, x[:, :2], x)
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        dist.normalize_by_reference(bad, x)
    with pytest.raises(ValueError, match="NaN"):
        dist.fid(x, bad)
    with pytest.raises(ValueError, match="2-D"):
        dist.diversity(x[0])
