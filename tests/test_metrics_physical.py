"""Physical measures (PFC, PBC, foot skating, jitter, freezing) on motions with known answers."""

import numpy as np
import pytest

from backend.metrics.physical import (
    FreezeReport, foot_skating_ratio, freeze_report, frozen_fraction, jitter, pbc, pfc,
)
from protocol.skeleton import JOINT_INDEX, PELVIS_REST_HEIGHT, rest_joint_positions

FPS = 30.0
J = JOINT_INDEX
FEET = [J["left_ankle"], J["left_foot"], J["right_ankle"], J["right_foot"]]


def standing(frames: int) -> np.ndarray:
    """(T, 24, 3) rest pose with its soles on the floor (z = 0), facing -Y."""
    body = rest_joint_positions() + np.array([0.0, 0.0, PELVIS_REST_HEIGHT])
    return np.repeat(body[None], frames, axis=0)


def seconds(frames: int, fps: float = FPS) -> np.ndarray:
    return np.arange(frames, dtype=np.float64) / fps


# --- PFC ---------------------------------------------------------------------------

def test_standing_body_scores_exactly_zero():
    still = standing(60)
    assert pfc(still) == 0.0
    assert pbc(still) == 0.0


def test_pfc_known_answer_for_a_sliding_accelerating_body():
    """x = a t^2 / 2 for every joint: the root's acceleration is constant (normalised to
    1) and each foot joint's step from frame f+1 to f+2 is a (2f + 3) / (2 fps^2)."""
    a, frames = 2.0, 60
    pos = standing(frames)
    pos[..., 0] += 0.5 * a * seconds(frames)[:, None] ** 2
    f = np.arange(frames - 2)
    step = a * (2 * f + 3) / (2 * FPS**2)
    assert pfc(pos) == pytest.approx(10_000 * np.mean(step * step), rel=1e-9)


def test_planted_feet_score_lower_than_sliding_feet():
    a, frames = 2.0, 60
    sway = 0.5 * a * seconds(frames) ** 2
    sliding = standing(frames)
    sliding[..., 0] += sway[:, None]
    planted = sliding.copy()
    planted[:, FEET] = standing(frames)[:, FEET]  # root accelerates, feet stay put
    assert pfc(planted) == 0.0
    assert pfc(sliding) > 0.1
    one_joint_planted = sliding.copy()  # the left toe stays; min(left ankle, left toe) = 0
    one_joint_planted[:, J["left_foot"]] = standing(frames)[:, J["left_foot"]]
    assert pfc(one_joint_planted) == 0.0


def test_pfc_ignores_falling_but_not_pushing_up():
    """Only upward root acceleration needs support: free fall with sliding feet costs 0."""
    frames = 40
    slide = standing(frames)
    slide[..., 0] += 0.5 * seconds(frames)[:, None]  # feet slide at constant speed
    falling = slide.copy()
    falling[:, J["pelvis"], 2] -= 0.5 * 9.81 * seconds(frames) ** 2
    rising = slide.copy()
    rising[:, J["pelvis"], 2] += 0.5 * 9.81 * seconds(frames) ** 2
    assert pfc(falling) == 0.0
    # normalised root accel 1, both feet step 0.5 / 30 m per frame
    assert pfc(rising) == pytest.approx(10_000 * (0.5 / 30) ** 2, rel=1e-9)


def test_pfc_is_comparable_across_frame_rates():
    a = 2.0
    at30 = standing(61)
    at30[..., 0] += 0.5 * a * seconds(61)[:, None] ** 2
    at60 = standing(121)
    at60[..., 0] += 0.5 * a * seconds(121, 60.0)[:, None] ** 2
    assert pfc(at60, fps=60.0) == pytest.approx(pfc(at30), rel=0.03)


# --- PBC ---------------------------------------------------------------------------

def test_pbc_of_root_and_feet_motion_is_minus_pfc():
    """POPDG subtracts EDGE's foot term; with a still upper body nothing else remains."""
    frames = 50
    pos = standing(frames)
    lower = [J["pelvis"], *FEET]
    pos[:, lower, 0] += 0.5 * 2.0 * seconds(frames)[:, None] ** 2
    assert pfc(pos) > 0
    assert pbc(pos) == pytest.approx(-pfc(pos), rel=1e-12)


def test_pbc_upper_body_terms_and_weights():
    """Left collar accelerating uniformly (normalised accel 1), left wrist stepping 2 cm and
    left hand 3 cm a frame: 10,000 * 0.01 * min(0.02, 0.03) = 2. The neck with the head
    stepping 1 cm a frame: 10,000 * 0.1 * 0.01 = 10."""
    frames = 40
    f = np.arange(frames, dtype=np.float64)
    arm = standing(frames)
    arm[:, J["left_collar"], 1] += 0.5 * 0.1 * seconds(frames) ** 2
    arm[:, J["left_wrist"], 2] += 0.02 * f
    arm[:, J["left_hand"], 2] += 0.03 * f
    assert pfc(arm) == 0.0
    assert pbc(arm) == pytest.approx(2.0, rel=1e-9)

    head = standing(frames)
    head[:, J["neck"], 0] += 0.5 * 0.1 * seconds(frames) ** 2
    head[:, J["head"], 1] += 0.01 * f
    assert pbc(head) == pytest.approx(10.0, rel=1e-9)


# --- foot skating --------------------------------------------------------------------

def test_planted_feet_do_not_skate():
    assert foot_skating_ratio(standing(60)) == 0.0


def test_sliding_on_the_floor_skates_every_frame():
    pos = standing(60)
    pos[..., 0] += 1.0 * seconds(60)[:, None]  # 1 m/s along the floor
    assert foot_skating_ratio(pos) == 1.0


def test_slow_drift_is_below_the_speed_threshold():
    pos = standing(60)
    pos[..., 0] += 0.2 * seconds(60)[:, None]  # 0.2 m/s < 0.3 m/s
    assert foot_skating_ratio(pos) == 0.0


def test_sliding_in_the_air_is_not_skating():
    pos = standing(60)
    pos[..., 0] += 1.0 * seconds(60)[:, None]
    lifted = pos.copy()
    lifted[..., 2] += 0.2  # 20 cm up: above the 5 cm threshold
    assert foot_skating_ratio(lifted) == 0.0
    skimming = pos.copy()
    skimming[..., 2] += 0.03  # 3 cm up still counts as on the floor
    assert foot_skating_ratio(skimming) == 1.0


def test_skating_share_counts_frames_with_any_sliding_foot():
    pos = standing(61)
    # only the right foot (ankle and toe) slides, and only during the first 30 steps
    slide = np.minimum(np.arange(61), 30) * (1.0 / FPS)
    pos[:, [J["right_ankle"], J["right_foot"]], 0] += slide[:, None]
    assert foot_skating_ratio(pos) == pytest.approx(30 / 60)


# --- jitter ------------------------------------------------------------------------

def test_constant_velocity_has_no_jitter():
    pos = standing(50)
    pos += seconds(50)[:, None, None] * np.array([0.7, -0.3, 0.1])
    assert jitter(pos) == pytest.approx(0.0, abs=1e-6)


def test_cubic_trajectory_has_jerk_six_a():
    a = 1.5
    pos = standing(50)
    pos[..., 1] += a * seconds(50)[:, None] ** 3
    assert jitter(pos) == pytest.approx(6 * a, rel=1e-6)
    assert jitter(pos[::2], fps=15.0) == pytest.approx(6 * a, rel=1e-6)


def test_noise_raises_jitter():
    rng = np.random.default_rng(1)
    pos = standing(50)
    assert jitter(pos + rng.normal(scale=0.005, size=pos.shape)) > 10.0


# --- freezing ----------------------------------------------------------------------

def bobbing(frames: int, moving_frames: int) -> np.ndarray:
    """Bob up and down once a second for ``moving_frames``, then hold still."""
    t = seconds(frames)
    z = 0.05 * np.sin(2 * np.pi * np.minimum(t, moving_frames / FPS))
    pos = standing(frames)
    pos[..., 2] += z[:, None]
    return pos


def test_moving_then_still_for_a_third_reports_a_third_frozen():
    report = freeze_report(bobbing(181, 120))  # 6 s: moves 4 s, stands 2 s
    assert isinstance(report, FreezeReport)
    assert len(report.window_energy_ratio) == 6
    assert report.frozen_windows == 2
    assert report.frozen_fraction == pytest.approx(1 / 3)
    assert report.min_ratio == 0.0
    np.testing.assert_allclose(report.window_energy_ratio[:4], 1.5, rtol=1e-6)
    assert frozen_fraction(bobbing(181, 120)) == pytest.approx(1 / 3)


def test_steady_motion_has_no_frozen_windows():
    report = freeze_report(bobbing(181, 181))
    assert report.frozen_windows == 0
    assert report.frozen_fraction == 0.0
    np.testing.assert_allclose(report.window_energy_ratio, 1.0, rtol=1e-6)


def test_a_body_that_never_moves_is_all_frozen():
    report = freeze_report(standing(91))
    assert report.frozen_fraction == 1.0
    assert report.frozen_windows == len(report.window_energy_ratio) == 3


# --- bad input ---------------------------------------------------------------------

@pytest.mark.parametrize("measure", [pfc, pbc, foot_skating_ratio, jitter, frozen_fraction])
def test_bad_input_raises_clearly(measure):
    bad = standing(30)
    bad[5, 0, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        measure(bad)
    with pytest.raises(ValueError, match="positions must be"):
        measure(np.zeros((30, 24)))
    with pytest.raises(ValueError, match="positions must be"):
        measure(np.zeros((30, 24, 2)))
    with pytest.raises(ValueError, match="fps"):
        measure(standing(30), fps=-1.0)
    with pytest.raises(ValueError, match="frames"):
        measure(standing(1))


@pytest.mark.parametrize("measure", [pfc, pbc, foot_skating_ratio])
def test_contact_measures_need_the_smpl_joints(measure):
    with pytest.raises(ValueError, match=r"\(T, 24, 3\)"):
        measure(np.zeros((30, 22, 3)))
