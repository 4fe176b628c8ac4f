"""Kinetic and geometric motion features of the AIST++ evaluation protocol.

FID_k and FID_g, the distribution metrics every music-to-dance paper reports on
AIST++ (FACT, Bailando, EDGE, POPDG, ...), compare two sets of clips through two
hand-made feature vectors per clip. To put our numbers next to the published ones,
the features have to be computed the way those papers computed them, in their frame
and at their rate, bugs included. This module does that, vectorised, from the
definitions in the reference code (read, not copied):

* ``google/aistplusplus_api``: ``aist_plusplus/features/utils.py`` (finite
  differences, plane and angle tests) and ``aist_plusplus/features/manual.py`` (the
  32 boolean features); FACT's ``tools/calculate_scores.py`` (``google-research/mint``)
  imports its ``kinetic.py`` too;
* ``lisiyao21/Bailando``: ``utils/features/kinetic.py`` (frame time 1/60, Y-up,
  window 2; read in copies carried by derived repositories), ``utils/features/manual_new.py`` (identical to the AIST++ ``manual.py``)
  and ``utils/metrics_new.py`` (root subtraction before extraction);
* both descend from ``facebookresearch/fairmotion``
  (``fairmotion/tasks/clustering/features``).

Conventions of the reference protocol: SMPL joint positions (24 joints, SMPL order),
metres, 60 fps, **Y-up**. Ours: 30 fps, Z-up, characters facing -Y. See
``to_aist_frame`` for the conversion and the metrics documentation for the account.

Kinetic features (72 = 24 joints x 3), per joint, with ``dt = 1/60`` s and a window
of 2 frames each side:

* average horizontal kinetic energy: mean over frames of ``|v_xz|^2`` (m^2/s^2);
* average vertical kinetic energy: mean over frames of ``v_y^2`` (m^2/s^2);
* average energy expenditure: mean over frames of ``|a|`` (m/s^2),

where ``v`` and ``a`` are the window means of the one-frame velocity and the
second-difference acceleration (per unit mass and without the 1/2; the names are
the reference's).

The reference's ``calc_average_acceleration`` has a misplaced parenthesis: it
computes the backward velocity as ``p[k] - p[k-1] / dt`` instead of
``(p[k] - p[k-1]) / dt``. The FID_k tables of FACT and Bailando (and of the papers
that reuse their code) were computed with it, so ``kinetic_features(..., quirk=True)``
reproduces it; ``quirk=False`` is the physics.
"""

from __future__ import annotations

import numpy as np

from backend.conventions import Y_UP_TO_Z_UP
from protocol.skeleton import JOINT_INDEX, NUM_JOINTS, OFFSETS, PARENTS

AIST_FPS: float = 60.0
"""Frame rate of the AIST++ motions and of the reference feature extractors."""

KINETIC_FRAME_TIME: float = 1.0 / AIST_FPS
"""Seconds per frame in the kinetic features (Bailando ``KineticFeatures`` default)."""

KINETIC_WINDOW: int = 2
"""Frames each side over which velocity and acceleration are averaged (reference)."""

GEOMETRIC_VELOCITY_FRAME_TIME: float = 1.0 / 120.0
"""Seconds per frame the reference's geometric velocity tests assume.

``aist_plusplus/features/utils.py`` gives its velocity helpers a default
``time_per_frame=1/120`` and ``manual.py`` never overrides it, although the data are
60 fps: every velocity there reads twice the true speed. Kept for comparability."""

KINETIC_FEATURE_NAMES: tuple[str, ...] = tuple(
    f"{joint}:{kind}"
    for joint in (
        "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee",
        "spine2", "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot",
        "neck", "left_collar", "right_collar", "head", "left_shoulder",
        "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
        "left_hand", "right_hand",
    )
    for kind in ("horizontal_energy", "vertical_energy", "expenditure")
)
"""Names of the 72 kinetic features, in the reference's order (joint-major)."""

GEOMETRIC_FEATURE_NAMES: tuple[str, ...] = (
    "right_hand_moving_forward",      # 0  velocity along the torso plane's normal
    "left_hand_moving_forward",       # 1
    "right_hand_above_neck",          # 2  offset along spine3->neck beyond the neck
    "left_hand_above_neck",           # 3
    "chest_rising_fast",              # 4  see the note on f_move in geometric_features
    "chest_rising_fast_duplicate",    # 5  identical to 4 in the reference
    "right_elbow_bent",               # 6
    "left_elbow_bent",                # 7
    "hands_far_apart_sideways",       # 8
    "hands_moving_apart",             # 9
    "left_hand_moving_along_right_hand_to_root",   # 10
    "right_hand_moving_along_left_hand_to_root",   # 11
    "right_hand_fast",                # 12
    "left_hand_fast",                 # 13
    "right_ankle_off_left_leg_plane", # 14
    "left_ankle_off_right_leg_plane", # 15
    "right_foot_raised",              # 16
    "left_foot_raised",               # 17
    "feet_far_apart_sideways",        # 18
    "right_knee_bent",                # 19
    "left_knee_bent",                 # 20
    "right_foot_fast",                # 21
    "left_foot_fast",                 # 22
    "right_upper_arm_lifted",         # 23
    "left_upper_arm_lifted",          # 24
    "right_thigh_lifted",             # 25
    "left_thigh_lifted",              # 26
    "root_off_ankles_neck_plane",     # 27
    "torso_horizontal",               # 28
    "right_hand_low",                 # 29
    "left_hand_low",                  # 30
    "root_fast",                      # 31
)
"""Our names for the 32 geometric features, in the reference's order."""


def _rest_bone_length(joint_a: str, joint_b: str) -> float:
    """Distance between two joints of the zero-shape SMPL body in its rest pose.

    The reference hard-codes three such distances from SMPL rest joint positions
    (``ManualFeatures.__init__`` in ``aist_plusplus/features/manual.py``); the
    positions it lists are the ones ``protocol.skeleton`` tabulates (same source, the
    SMPL model), so we derive them instead of repeating literals. A test checks the
    values against the reference's numbers.
    """
    positions = np.zeros((NUM_JOINTS, 3))
    for joint, parent in enumerate(PARENTS):
        if parent >= 0:
            positions[joint] = positions[parent] + OFFSETS[joint]
    return float(np.linalg.norm(positions[JOINT_INDEX[joint_a]] - positions[JOINT_INDEX[joint_b]]))


HUMERUS_LENGTH: float = _rest_bone_length("left_shoulder", "left_elbow")
"""``hl`` of the reference (~0.2568 m), the unit of most geometric thresholds."""
SHOULDER_WIDTH: float = _rest_bone_length("left_shoulder", "right_shoulder")
"""``sw`` of the reference (~0.3908 m)."""
HIP_WIDTH: float = _rest_bone_length("left_hip", "right_hip")
"""``hw`` of the reference (~0.1192 m)."""

_Z_UP_TO_Y_UP: np.ndarray = Y_UP_TO_Z_UP.T
"""-90 degrees about X: ``(x, y, z) -> (x, z, -y)``; the inverse of our importer's."""


def _check_positions(positions: np.ndarray, name: str, min_frames: int) -> np.ndarray:
    """Validate a (T, 24, 3) finite float array with at least ``min_frames`` frames."""
    array = np.asarray(positions, dtype=np.float64)
    if array.ndim != 3 or array.shape[1:] != (NUM_JOINTS, 3):
        raise ValueError(f"{name} must have shape (T, {NUM_JOINTS}, 3), got {array.shape}")
    if array.shape[0] < min_frames:
        raise ValueError(f"{name} needs at least {min_frames} frames, got {array.shape[0]}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return array


def to_aist_frame(positions: np.ndarray, fps: float = 30.0) -> np.ndarray:
    """Our joint positions (T, J, 3), Z-up at ``fps``, as AIST++ sees them: Y-up, 60 fps.

    Rotation: ``(x, y, z) -> (x, z, -y)``, -90 degrees about X, the transpose of
    ``backend.conventions.Y_UP_TO_Z_UP`` that our AIST++ importer applies. Up (+Z)
    becomes +Y, our forward (-Y) becomes +Z (SMPL's forward in its Y-up frame), and an
    AIST++ clip imported and converted back gets its own coordinates again (up to a
    constant translation, which the root subtraction removes). It is a proper
    rotation; a reflection would flip the sign of the cross products in the geometric
    features. Every feature here depends on the up axis only, not on the heading.

    Resampling: linear interpolation of positions at ``t = k / 60`` s over the clip's
    time span ``(T - 1) / fps``, giving ``floor((T - 1) * 60 / fps) + 1`` frames (a 30
    fps clip of T frames gives 2T - 1). Linear interpolation keeps every original
    sample, reproduces constant-velocity motion exactly, keeps the frame-to-frame
    velocities of the source (so the kinetic energies barely move) and cannot
    overshoot (no invented extrema for the geometric tests); a spline would invent
    curvature between samples. The acceleration features see the source's velocity
    changes concentrated on the original sample times, which the 5-frame window
    averages. At ``fps == 60`` nothing is resampled.
    """
    array = np.asarray(positions, dtype=np.float64)
    if array.ndim != 3 or array.shape[-1] != 3 or array.shape[0] < 1:
        raise ValueError(f"positions must have shape (T, J, 3) with T >= 1, got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError("positions contain NaN or infinite values")
    if not (np.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps}")
    rotated = array @ Y_UP_TO_Z_UP  # row vectors: (C^T p)^T = p^T C
    n_in = rotated.shape[0]
    if np.isclose(fps, AIST_FPS, rtol=0.0, atol=1e-9) or n_in == 1:
        return rotated.copy()
    # A tiny tolerance so that, e.g., 30 fps gives exactly 2T - 1 frames.
    n_out = int(np.floor((n_in - 1) * AIST_FPS / fps + 1e-9)) + 1
    source_index = np.arange(n_out) * (fps / AIST_FPS)
    left = np.minimum(np.floor(source_index).astype(np.int64), n_in - 2)
    weight = np.clip(source_index - left, 0.0, 1.0)[:, None, None]
    return (1.0 - weight) * rotated[left] + weight * rotated[left + 1]


def _window_means(values: np.ndarray, n_frames: int, window: int) -> np.ndarray:
    """For each frame i = 1..n_frames-1, the mean of ``values[k - 1]`` over valid k.

    ``values`` holds one entry per k = 1..K (K = len(values)); the window is
    k in [i - window, i + window] clipped to [1, K], which is exactly the set of
    offsets the reference's loops keep (its ``continue`` conditions).
    """
    n_values = values.shape[0]
    padded = np.zeros((n_frames + 2 * window,) + values.shape[1:])
    padded[1 + window : 1 + window + n_values] = values  # padded[k + window] = value k
    total = np.zeros((n_frames - 1,) + values.shape[1:])
    for offset in range(2 * window + 1):  # index i + offset for i = 1..n_frames-1
        total += padded[1 + offset : n_frames + offset]
    frame = np.arange(1, n_frames)
    count = np.minimum(n_values, frame + window) - np.maximum(1, frame - window) + 1
    return total / count.reshape((-1,) + (1,) * (values.ndim - 1))


def kinetic_features(positions_aist: np.ndarray, quirk: bool = False) -> np.ndarray:
    """The 72 kinetic features of a (T, 24, 3) Y-up 60 fps clip (module docstring).

    Layout: joint-major, ``[horizontal energy, vertical energy, expenditure]`` per
    joint (``KINETIC_FEATURE_NAMES``). Each is a mean over frames i = 1..T-1 of a
    window mean around i, as in the reference (Bailando ``utils/features/kinetic.py``,
    ``extract_kinetic_features``).

    ``quirk=True`` uses the reference's acceleration, ``(v_next - v_prev_bug) / dt``
    with ``v_prev_bug = p[k] - p[k-1] / dt``: it equals the true second difference
    plus ``p[k] * (1/dt^2 - 1/dt)``, so it grows with the joint's distance from the
    origin (3540 m/s^2 per metre at 60 fps) and a motionless body still "spends
    energy". ``quirk=False`` is ``(p[k+1] - 2 p[k] + p[k-1]) / dt^2``.

    Returns float64 (the reference casts to float32).
    """
    p = _check_positions(positions_aist, "positions_aist", 3)
    dt = KINETIC_FRAME_TIME
    n_frames = p.shape[0]

    step = p[1:] - p[:-1]  # one entry per k = 1..T-1
    velocity = _window_means(step, n_frames, KINETIC_WINDOW) / dt  # (T-1, 24, 3)
    horizontal = np.mean(velocity[..., 0] ** 2 + velocity[..., 2] ** 2, axis=0)
    vertical = np.mean(velocity[..., 1] ** 2, axis=0)

    forward = (p[2:] - p[1:-1]) / dt  # one entry per k = 1..T-2
    if quirk:
        backward = p[1:-1] - p[:-2] / dt
    else:
        backward = (p[1:-1] - p[:-2]) / dt
    acceleration = _window_means((forward - backward) / dt, n_frames, KINETIC_WINDOW)
    expenditure = np.mean(np.linalg.norm(acceleration, axis=-1), axis=0)

    return np.stack([horizontal, vertical, expenditure], axis=1).reshape(-1)


# --- geometric features ------------------------------------------------------------

def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Row-wise normalised vectors; a zero row becomes NaN, so every test on it is False
    (the reference divides by the zero norm and compares the NaN, with the same result)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)


def _along(vectors: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """Signed length of each vector's component along the matching direction."""
    with np.errstate(invalid="ignore"):
        return np.einsum("ij,ij->i", vectors, _unit_rows(directions))


def _angle_degrees(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Angle between matching rows, degrees (NaN for a zero vector, as in the reference)."""
    with np.errstate(invalid="ignore"):
        cosine = np.einsum("ij,ij->i", _unit_rows(first), _unit_rows(second))
        return np.degrees(np.arccos(cosine))


class _FramePairs:
    """Every frame f >= 1 of a clip beside frame f - 1, and the reference's tests on them.

    One method per test function of the reference (``f_move``, ``f_nmove``, ``f_plane``,
    ``f_nplane``, ``f_angle``, ``f_fast``), each returning a (T - 1,) boolean per frame.
    """

    def __init__(self, p: np.ndarray):
        self.cur, self.prev = p[1:], p[:-1]
        n_tests = self.cur.shape[0]
        self.up = np.tile([0.0, 1.0, 0.0], (n_tests, 1))
        self.origin = np.zeros_like(self.up)
        self.floor = np.zeros((n_tests, 3))
        self.floor[:, 1] = self.cur[..., 1].min(axis=1)  # reference "y_min": lowest joint, this frame

    def at(self, name: str) -> np.ndarray:
        return self.cur[:, JOINT_INDEX[name]]

    def before(self, name: str) -> np.ndarray:
        return self.prev[:, JOINT_INDEX[name]]

    def relative_velocity(self, base: str, point: str) -> np.ndarray:
        """Velocity of ``point`` relative to ``base`` (per reference frame time)."""
        at, before = self.at, self.before
        return ((at(point) - at(base)) - (before(point) - before(base))) / GEOMETRIC_VELOCITY_FRAME_TIME

    def moving_along(self, base: str, toward: str, point: str, threshold: float) -> np.ndarray:
        """Reference f_move: point's velocity relative to base, along base -> toward."""
        return _along(self.relative_velocity(base, point), self.at(toward) - self.at(base)) > threshold

    def moving_across(self, base: str, first: str, second: str, point: str, threshold: float) -> np.ndarray:
        """Reference f_nmove: point's velocity relative to base, along the normal
        (second - base) x (first - base) of the plane through base, first, second."""
        normal = np.cross(self.at(second) - self.at(base), self.at(first) - self.at(base))
        return _along(self.relative_velocity(base, point), normal) > threshold

    def beyond_plane(self, a: str, b: str, c: str, point: str, threshold: float) -> np.ndarray:
        """Reference f_plane: signed distance of point from plane (a, b, c), normal
        (c - a) x (b - a)."""
        normal = np.cross(self.at(c) - self.at(a), self.at(b) - self.at(a))
        return _along(self.at(point) - self.at(a), normal) > threshold

    @staticmethod
    def beyond_offset(start: np.ndarray, end: np.ndarray, anchor: np.ndarray,
                      point: np.ndarray, threshold: float) -> np.ndarray:
        """Reference f_nplane: offset of point from anchor along start -> end."""
        return _along(point - anchor, end - start) > threshold

    @staticmethod
    def angle_within(a_from: np.ndarray, a_to: np.ndarray, b_from: np.ndarray,
                     b_to: np.ndarray, low: float, high: float) -> np.ndarray:
        """Reference f_angle: low < angle(a_to - a_from, b_to - b_from) < high (deg)."""
        angle = _angle_degrees(a_to - a_from, b_to - b_from)
        with np.errstate(invalid="ignore"):
            return (angle > low) & (angle < high)

    def fast(self, name: str, threshold: float) -> np.ndarray:
        """Reference f_fast: one-frame speed above threshold."""
        return np.linalg.norm(self.at(name) - self.before(name), axis=-1) / GEOMETRIC_VELOCITY_FRAME_TIME > threshold


def geometric_features(positions_aist: np.ndarray) -> np.ndarray:
    """The 32 boolean geometric features, averaged over frames 1..T-1 (fraction true).

    After Müller, Röder and Clausen (SIGGRAPH 2005), as the AIST++ API implements
    them (``aist_plusplus/features/manual.py``; Bailando's ``manual_new.py`` is the
    same): same joints, thresholds, order (``GEOMETRIC_FEATURE_NAMES``). Input is
    (T, 24, 3), Y-up, 60 fps. Frame f is tested against frame f - 1 where a velocity
    is needed. Thresholds are multiples of the fixed SMPL rest-pose lengths
    ``HUMERUS_LENGTH``, ``SHOULDER_WIDTH``, ``HIP_WIDTH`` (not of the clip's own body),
    as the reference does. Reference behaviours kept on purpose:

    * velocities divide a one-frame displacement by 1/120 s
      (``GEOMETRIC_VELOCITY_FRAME_TIME``), twice the true speed at 60 fps;
    * the reference's ``f_move(j1, j2, j3, j4)`` tests the velocity of ``j3`` relative
      to ``j1`` along ``j1 -> j2`` and never reads ``j4``: features 4 and 5 ("hand
      moving up", on belly, chest, chest, wrist) therefore test the chest against the
      belly and are identical;
    * "up" and the floor are +Y and the lowest joint of the current frame.

    Comparisons are strict (``>``, and ``lo < angle < hi``); a degenerate direction
    (zero-length vector) makes its test False, as the reference's NaN does.
    """
    f = _FramePairs(_check_positions(positions_aist, "positions_aist", 2))
    tests = _hand_tests(f) + _foot_tests(f) + _whole_body_tests(f)
    return np.stack(tests, axis=1).astype(np.float64).mean(axis=0)


def _hand_tests(f: _FramePairs) -> list[np.ndarray]:
    """Features 0-13 (``GEOMETRIC_FEATURE_NAMES``): hands, elbows and chest."""
    j, hl, sw = f.at, HUMERUS_LENGTH, SHOULDER_WIDTH
    return [
        f.moving_across("neck", "right_hip", "left_hip", "right_wrist", 1.8 * hl),
        f.moving_across("neck", "left_hip", "right_hip", "left_wrist", 1.8 * hl),
        f.beyond_offset(j("spine3"), j("neck"), j("neck"), j("right_wrist"), 0.2 * hl),
        f.beyond_offset(j("spine3"), j("neck"), j("neck"), j("left_wrist"), 0.2 * hl),
        f.moving_along("spine1", "spine3", "spine3", 1.8 * hl),
        f.moving_along("spine1", "spine3", "spine3", 1.8 * hl),
        f.angle_within(j("right_elbow"), j("right_shoulder"), j("right_elbow"), j("right_wrist"), 0, 110),
        f.angle_within(j("left_elbow"), j("left_shoulder"), j("left_elbow"), j("left_wrist"), 0, 110),
        f.beyond_offset(j("left_shoulder"), j("right_shoulder"), j("left_wrist"), j("right_wrist"), 2.5 * sw),
        f.moving_along("left_wrist", "right_wrist", "right_wrist", 1.4 * hl),
        f.moving_along("right_wrist", "pelvis", "left_wrist", 1.4 * hl),
        f.moving_along("left_wrist", "pelvis", "right_wrist", 1.4 * hl),
        f.fast("right_wrist", 2.5 * hl),
        f.fast("left_wrist", 2.5 * hl),
    ]


def _foot_tests(f: _FramePairs) -> list[np.ndarray]:
    """Features 14-22: feet and knees."""
    j, hl, hw = f.at, HUMERUS_LENGTH, HIP_WIDTH
    return [
        f.beyond_plane("pelvis", "left_hip", "left_foot", "right_ankle", 0.38 * hl),
        f.beyond_plane("pelvis", "right_hip", "right_foot", "left_ankle", 0.38 * hl),
        f.beyond_offset(f.origin, f.up, f.floor, j("right_ankle"), 1.2 * hl),
        f.beyond_offset(f.origin, f.up, f.floor, j("left_ankle"), 1.2 * hl),
        f.beyond_offset(j("left_hip"), j("right_hip"), j("left_ankle"), j("right_ankle"), 2.1 * hw),
        f.angle_within(j("right_knee"), j("right_hip"), j("right_knee"), j("right_ankle"), 0, 110),
        f.angle_within(j("left_knee"), j("left_hip"), j("left_knee"), j("left_ankle"), 0, 110),
        f.fast("right_ankle", 2.5 * hl),
        f.fast("left_ankle", 2.5 * hl),
    ]


def _whole_body_tests(f: _FramePairs) -> list[np.ndarray]:
    """Features 23-31: limbs against the torso, the torso against the floor, the root."""
    j, hl = f.at, HUMERUS_LENGTH
    return [
        f.angle_within(j("neck"), j("pelvis"), j("right_shoulder"), j("right_elbow"), 25, 180),
        f.angle_within(j("neck"), j("pelvis"), j("left_shoulder"), j("left_elbow"), 25, 180),
        f.angle_within(j("neck"), j("pelvis"), j("right_hip"), j("right_knee"), 50, 180),
        f.angle_within(j("neck"), j("pelvis"), j("left_hip"), j("left_knee"), 50, 180),
        f.beyond_plane("right_ankle", "neck", "left_ankle", "pelvis", 0.5 * hl),
        f.angle_within(j("neck"), j("pelvis"), f.origin, f.up, 70, 110),
        f.beyond_offset(f.origin, -f.up, f.floor, j("right_wrist"), -1.2 * hl),
        f.beyond_offset(f.origin, -f.up, f.floor, j("left_wrist"), -1.2 * hl),
        f.fast("pelvis", 2.3 * hl),
    ]


def extract_features(positions: np.ndarray, fps: float = 30.0,
                     quirk: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(kinetic 72, geometric 32) features of one clip in our convention.

    Converts with ``to_aist_frame`` (Y-up, 60 fps), then subtracts the first frame's
    pelvis position from every joint of every frame, as Bailando's evaluation does
    (``calc_and_save_feats`` in ``utils/metrics_new.py``) before extracting. The
    subtraction changes nothing in the correct physics (differences only) nor in the
    geometric tests (all relative), but it does change the quirky expenditure, which
    depends on absolute positions; with it, ``quirk=True`` matches the published
    pipeline for clips that share its frame.
    """
    p = _check_positions(positions, "positions", 1)
    aist = to_aist_frame(p, fps)
    if aist.shape[0] < 3:
        raise ValueError(
            f"the clip spans {aist.shape[0]} frames at 60 fps; the features need at least 3"
        )
    aist = aist - aist[0, JOINT_INDEX["pelvis"]]
    return kinetic_features(aist, quirk=quirk), geometric_features(aist)
