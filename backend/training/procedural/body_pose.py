"""A phrase plan turned into joint rotations: feet, pelvis, torso, legs and arms
(``pose_body`` says in which order, and why)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

from backend.motion.kinematics import forward_kinematics_np
from backend.motion.rotations import np_ as rot
from backend.motion.skeleton import JOINT_INDEX, NUM_JOINTS, OFFSETS, PELVIS_REST_HEIGHT, SOLE_BELOW_FOOT_JOINT
from backend.training.procedural.beat_shapes import pulse, snap
from backend.training.procedural.foot_planner import FootPlanner
from backend.training.procedural.limb_ik import ARMS, LEGS, unit
from backend.training.procedural.lower_moves import SIDE, LowerMove, lower_move
from backend.training.procedural.plan import BodyStyle, Phrase
from backend.training.procedural.timeline import Timeline
from backend.training.procedural.upper_moves import UpperPose, upper_move


FOOT_JOINTS = {"hip": (1, 2), "knee": (4, 5), "ankle": (7, 8), "toe": (10, 11)}
ANKLE_HEIGHT = np.array([SOLE_BELOW_FOOT_JOINT - OFFSETS[10][2], SOLE_BELOW_FOOT_JOINT - OFFSETS[11][2]])
"""Height of each ankle joint when its foot is flat on the floor (toe base SOLE above z = 0)."""
PELVIS_AHEAD_OF_ANKLES = float((OFFSETS[1] + OFFSETS[4] + OFFSETS[7])[1])
"""How far (m, along +Y) the ankles sit behind the pelvis in the rest pose."""


def _rot_z(angle: np.ndarray) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    z, o = np.zeros_like(c), np.ones_like(c)
    return np.stack([c, -s, z, s, c, z, z, z, o], -1).reshape(np.shape(angle) + (3, 3))


def _max_pelvis_height(pelvis_xy: np.ndarray, pelvis_rot: np.ndarray, ankles: np.ndarray) -> np.ndarray:
    """Highest pelvis z (T,) from which both legs still reach their ankle targets."""
    limit = np.full(len(pelvis_xy), np.inf)
    for foot, hip in enumerate(FOOT_JOINTS["hip"]):
        leg = LEGS[foot]
        reach = 0.995 * leg.max_stretch * (np.linalg.norm(leg.upper) + np.linalg.norm(leg.lower))
        hip_offset = pelvis_rot @ OFFSETS[hip]
        dxy = np.linalg.norm(pelvis_xy + hip_offset[:, :2] - ankles[:, foot, :2], axis=-1)
        vertical = np.sqrt(np.maximum(reach**2 - dxy**2, 0.0))
        limit = np.minimum(limit, ankles[:, foot, 2] + vertical - hip_offset[:, 2])
    return limit


def pose_body(tl: Timeline, phrases: list[Phrase], weights: np.ndarray, style: BodyStyle,
              energy: np.ndarray, amp: np.ndarray, height: np.ndarray, sharp: np.ndarray,
              fps: float) -> tuple[np.ndarray, np.ndarray]:
    """Local rotation matrices (T, 24, 3, 3) and pelvis positions (T, 3).

    Order matters: feet are planned first, the pelvis follows the feet (and stays low
    enough for them), the torso and head follow the pelvis, then IK fits the legs
    between pelvis and feet and the arms between shoulders and wrist targets.
    """
    n = len(tl.phase)
    half_time = tl.pulse_seconds > 1.5 * 60.0 / tl.bpm
    planner = FootPlanner(style, max_swing=0.45 if half_time else 1.0)
    moves = []
    for p in phrases:
        a = float(np.interp(tl.time_of(p.start + p.length / 2) * fps, np.arange(n), amp))
        moves.append(lower_move(p.lower, p.length, a, style, p.variant))
        planner.add_phrase(p, moves[-1])
    ankle_xy, lift, foot_yaw, toe_pitch = planner.trajectories(tl.phase)
    ankles = np.concatenate([ankle_xy, (ANKLE_HEIGHT + lift)[..., None]], axis=-1)  # (T, 2, 3)

    local = np.tile(np.eye(3), (n, NUM_JOINTS, 1, 1))
    root, hips = _pelvis_motion(tl, planner, moves, weights, style, energy, amp, ankles, lift, fps)
    local[:, 0] = hips.rotation
    upper = _blend_upper_moves(tl, phrases, weights, style, amp, height, sharp)
    _pose_torso(local, upper, hips, style, amp, sharp, tl.phase)
    positions, globals_ = forward_kinematics_np(local, root)
    _solve_legs(local, positions, hips.rotation, ankles, foot_yaw, toe_pitch)
    _solve_arms(local, positions, globals_, upper, style)
    return local, root


@dataclass
class _Hips:
    """The pelvis motion and what the torso needs to know about it."""

    rotation: np.ndarray  # (T, 3, 3) global
    facing: np.ndarray  # (T,) body facing yaw
    yaw: np.ndarray  # (T,) pelvis yaw (facing plus hip twist)
    roll: np.ndarray  # (T,) side tilt from the weight shift
    pitch: np.ndarray  # (T,) forward tilt
    dip: np.ndarray  # (T,) the beat pulse of the bounce, 1 on beats


def _pelvis_motion(tl: Timeline, planner: FootPlanner, moves: list[LowerMove], weights: np.ndarray,
                   style: BodyStyle, energy: np.ndarray, amp: np.ndarray, ankles: np.ndarray, lift: np.ndarray,
                   fps: float) -> tuple[np.ndarray, _Hips]:
    """Pelvis position (T, 3) over the weighted foot, dipping on the beat, and its rotation."""
    ph = tl.phase
    bounce_scale = sum(w * m.bounce for w, m in zip(weights, moves))
    sway = sum(w * m.sway for w, m in zip(weights, moves))
    twist = sum(w * m.twist for w, m in zip(weights, moves))
    dip = pulse(ph, 1.2)
    standing = 1 - (lift > 0).any(axis=1)
    w_left = planner.weight_left(ph) + 0.25 * sway * np.minimum(amp, 1.2) * snap(ph, 1.0) * standing
    w_left = gaussian_filter1d(np.clip(w_left, 0.1, 0.9), 0.02 * fps, mode="nearest")
    facing = planner.facing(ph)
    yaw = facing + 0.6 * twist * amp * snap(ph, 1.0)
    roll = -0.35 * (w_left - 0.5) * np.minimum(amp, 1.3)  # the weighted hip rises
    pitch = 0.04 + 0.05 * dip * amp
    rotation = _rot_z(yaw) @ rot.axis_angle_to_matrix(np.stack([pitch, roll, np.zeros_like(roll)], -1))

    support = ankles[:, 1, :2] + w_left[:, None] * (ankles[:, 0, :2] - ankles[:, 1, :2])
    ahead = np.stack([np.sin(facing), -np.cos(facing)], -1) * PELVIS_AHEAD_OF_ANKLES
    xy = gaussian_filter1d(support + ahead, 0.025 * fps, axis=0, mode="nearest")  # light: keeps the holds on beats
    airborne = lift.min(axis=1)  # both feet up: a jump carries the pelvis up too
    z = (PELVIS_REST_HEIGHT - style.knee_bend - style.bounce * (0.4 + 0.8 * energy) * bounce_scale * dip
         + 0.9 * airborne)
    # Never higher than the legs can reach; the lowering is widened and smoothed so it does not jerk.
    excess = np.maximum(z - (_max_pelvis_height(xy, rotation, ankles) - 0.004), 0.0)
    width = max(1, int(round(0.1 * fps)))
    widened = np.lib.stride_tricks.sliding_window_view(np.pad(excess, width, mode="edge"), 2 * width + 1).max(-1)
    excess = np.maximum(gaussian_filter1d(widened, width / 2.0, mode="nearest"), excess)
    root = np.concatenate([xy, (z - excess)[:, None]], axis=-1)
    return root, _Hips(rotation, facing, yaw, roll, pitch, dip)


def _blend_upper_moves(tl: Timeline, phrases: list[Phrase], weights: np.ndarray, style: BodyStyle,
                       amp: np.ndarray, height: np.ndarray, sharp: np.ndarray) -> UpperPose:
    """Each phrase's upper-body move where its cross-fade weight is non-zero, summed."""
    n = len(tl.phase)
    upper = UpperPose.zeros(n)
    bar = tl.bar_phase
    for w, p in zip(weights, phrases):
        active = w > 0
        if not active.any():
            continue
        part = upper_move(p.upper, tl.phase[active], bar[active], amp[active], height[active], sharp[active],
                          style, p.variant)
        full = UpperPose.zeros(n)
        for name in ("wrist", "pole", "spine", "collar", "head"):
            getattr(full, name)[active] = getattr(part, name)
        upper.add(full, w)
    return upper


def _pose_torso(local: np.ndarray, upper: UpperPose, hips: _Hips, style: BodyStyle, amp: np.ndarray,
                sharp: np.ndarray, ph: np.ndarray) -> None:
    """Spine, neck, head and collars: the move, plus posture, a nod on the beat, and
    undoing most of the hip roll and twist so the chest stays upright and facing."""
    chest = upper.spine.copy()
    chest[:, 0] += style.lean + 0.04 * amp * hips.dip - (hips.pitch - 0.04)
    chest[:, 1] -= 0.8 * hips.roll
    chest[:, 2] -= 0.6 * (hips.yaw - hips.facing)
    for joint, share in (("spine1", 0.3), ("spine2", 0.35), ("spine3", 0.35)):
        local[:, JOINT_INDEX[joint]] = rot.axis_angle_to_matrix(share * chest)
    head = upper.head.copy()
    head[:, 0] += style.nod * amp * pulse(ph, sharp) - 0.6 * style.lean
    head[:, 1] -= 0.3 * chest[:, 1]
    for joint, share in (("neck", 0.4), ("head", 0.6)):
        local[:, JOINT_INDEX[joint]] = rot.axis_angle_to_matrix(share * head)
    for side, joint in enumerate((JOINT_INDEX["left_collar"], JOINT_INDEX["right_collar"])):
        shrug, forward = upper.collar[:, side, 0], upper.collar[:, side, 1]
        s = SIDE[side]
        local[:, joint] = rot.axis_angle_to_matrix(np.stack([np.zeros_like(shrug), -s * shrug, -s * forward], -1))


def _solve_legs(local: np.ndarray, positions: np.ndarray, pelvis_rot: np.ndarray, ankles: np.ndarray,
                foot_yaw: np.ndarray, toe_pitch: np.ndarray) -> None:
    """Hip, knee and ankle rotations that put each ankle on its target, foot flat (or toes down in the air)."""
    n = len(ankles)
    zeros = np.zeros(n)
    for foot in (0, 1):
        hip, knee, ankle = FOOT_JOINTS["hip"][foot], FOOT_JOINTS["knee"][foot], FOOT_JOINTS["ankle"][foot]
        yaw = foot_yaw[:, foot]
        toes = np.stack([np.sin(yaw), -np.cos(yaw), zeros], -1)
        outward = SIDE[foot] * np.stack([np.cos(yaw), np.sin(yaw), zeros], -1)
        pole = toes + 0.15 * outward  # knees point over the toes, a little outwards
        g_thigh, g_shank = LEGS[foot].solve(positions[:, hip], ankles[:, foot], pole)
        g_foot = _rot_z(yaw) @ rot.axis_angle_to_matrix(np.stack([toe_pitch[:, foot], zeros, zeros], -1))
        local[:, hip] = np.swapaxes(pelvis_rot, -1, -2) @ g_thigh
        local[:, knee] = np.swapaxes(g_thigh, -1, -2) @ g_shank
        local[:, ankle] = np.swapaxes(g_shank, -1, -2) @ g_foot


def _solve_arms(local: np.ndarray, positions: np.ndarray, globals_: np.ndarray, upper: UpperPose,
                style: BodyStyle) -> None:
    """Shoulder and elbow rotations that put each wrist on its target, given in the chest frame."""
    g_chest = globals_[:, JOINT_INDEX["spine3"]]
    asym = (style.asymmetry, 1.0 / style.asymmetry)
    rest = np.array([0.07, 0.1, -0.44])
    for side, (collar, shoulder, elbow) in enumerate(((13, 16, 18), (14, 17, 19))):
        mirror = np.array([SIDE[side], -1.0, 1.0])  # (out, forward, up) -> chest x, y, z
        wrist = upper.wrist[:, side].copy()
        wrist[:, 1:] = rest[1:] + asym[side] * (wrist[:, 1:] - rest[1:])  # not sideways: claps still meet
        target = positions[:, shoulder] + np.einsum("tij,tj->ti", g_chest, wrist * mirror)
        pole = np.einsum("tij,tj->ti", g_chest, unit(upper.pole[:, side]) * mirror)
        g_upper, g_fore = ARMS[side].solve(positions[:, shoulder], target, pole)
        local[:, shoulder] = np.swapaxes(globals_[:, collar], -1, -2) @ g_upper
        local[:, elbow] = np.swapaxes(g_upper, -1, -2) @ g_fore
