"""The upper-body moves, each as wrist targets, elbow poles and torso angles per frame.

Wrist targets are authored in the chest frame (out, forward, up from the shoulder, in
metres) and reached by ``limb_ik``; every move is a function of the pulse phase, so
its accents fall on beats. The affinity of each move to the music is ``plan.UPPER_MOVES``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from backend.training.procedural.beat_shapes import pulse, snap
from backend.training.procedural.plan import BodyStyle

LEFT, RIGHT = 0, 1
_POLE_DOWN = np.array([0.15, -0.8, -1.0])
"""Elbow pole of arms hanging down: elbows out a little and back."""


@dataclass
class UpperPose:
    """Arm targets (out, forward, up from the shoulder, metres), elbow poles, torso angles."""

    wrist: np.ndarray  # (T, 2, 3) left, right
    pole: np.ndarray  # (T, 2, 3)
    spine: np.ndarray  # (T, 3) chest rotation vector (x: lean fwd, y: bend left, z: twist left)
    collar: np.ndarray  # (T, 2, 2) shrug up, forward
    head: np.ndarray  # (T, 3) nod down, tilt left, turn left

    @classmethod
    def zeros(cls, n: int) -> "UpperPose":
        return cls(np.zeros((n, 2, 3)), np.zeros((n, 2, 3)), np.zeros((n, 3)), np.zeros((n, 2, 2)), np.zeros((n, 3)))

    def add(self, other: "UpperPose", weight: np.ndarray) -> None:
        w = weight[:, None]
        self.wrist += other.wrist * w[:, :, None]
        self.pole += other.pole * w[:, :, None]
        self.spine += other.spine * w
        self.collar += other.collar * w[:, :, None]
        self.head += other.head * w


@dataclass(frozen=True)
class _Beat:
    """Where a move is evaluated, all (T,): pulse phase ``ph``, bar phase, amplitude ``a``,
    arm height ``h``, sharpness; and the body style's arm spread and the phrase's variant."""

    ph: np.ndarray
    bar: np.ndarray
    a: np.ndarray
    h: np.ndarray
    sharp: np.ndarray
    spread: float
    variant: int

    @property
    def ones(self) -> np.ndarray:
        return np.ones(len(self.ph))


def _lerp(a: np.ndarray, b: np.ndarray, u: np.ndarray) -> np.ndarray:
    return a + (np.asarray(b) - np.asarray(a)) * u[:, None]


def upper_move(name: str, ph: np.ndarray, bar: np.ndarray, a: np.ndarray, h: np.ndarray,
               sharp: np.ndarray, style: BodyStyle, variant: int) -> UpperPose:
    """One upper-body move evaluated at pulse phases ``ph`` (all arrays (T,))."""
    move = _MOVES.get(name)
    if move is None:
        raise ValueError(f"unknown upper-body move {name!r}")
    pose = UpperPose.zeros(len(ph))
    pose.pole[:] = _POLE_DOWN
    move(pose, _Beat(ph, bar, a, h, sharp, style.arm_spread, variant))
    return pose


def _relaxed(pose: UpperPose, b: _Beat) -> None:
    down = np.array([0.04 + b.spread, 0.1, -0.44])
    sway = snap(b.ph, b.sharp)
    for side, sign in ((LEFT, 1), (RIGHT, -1)):
        pose.wrist[:, side] = down + np.stack([0 * b.ones, 0.08 * b.a * sign * sway, 0.04 * b.a * pulse(b.ph)], -1)
    pose.spine[:, 2] = 0.07 * b.a * sway
    pose.head[:, 1] = 0.05 * b.a * sway


def _swing(pose: UpperPose, b: _Beat) -> None:
    sway = snap(b.ph, b.sharp)
    for side, sign in ((LEFT, 1), (RIGHT, -1)):
        fwd = 0.08 + 0.2 * b.a * sign * sway
        pose.wrist[:, side] = np.stack([0.07 + b.spread + 0 * b.ones, fwd, -0.42 + 0.3 * np.maximum(fwd, 0)], -1)
    pose.spine[:, 2] = -0.08 * b.a * sway


def _pump(pose: UpperPose, b: _Beat) -> None:
    chamber = np.array([0.16, 0.26, -0.12])
    top = np.array([0.1 + b.spread, 0.14, 0.34])
    up = (1.0 + snap(b.ph, 2 * b.sharp)) / 2.0  # up on one beat, chambered on the next
    u = [up, up] if b.variant == 0 else [up, 1.0 - up]
    for side in (LEFT, RIGHT):
        reach = np.minimum(b.a, 1.2) * u[side]
        pose.wrist[:, side] = _lerp(chamber, top, reach)
        pose.wrist[:, side, 2] += b.h * reach
    pose.pole[:] = [0.9, -0.2, -1.0]
    pose.spine[:, 0] = -0.06 * b.a * (u[0] + u[1]) / 2
    pose.collar[:, :, 0] = 0.12 * np.stack(u, -1)  # shoulders go up with the fists


def _clap(pose: UpperPose, b: _Beat) -> None:
    u = (1.0 - snap(b.ph, 1.5 * b.sharp)) / 2.0  # a clap on every other beat, apart on the others
    lift = 0.32 if b.variant == 1 else 0.0
    apart = np.array([0.15 + b.spread, 0.26, -0.1 + lift])
    together = np.array([-0.165, 0.32, -0.02 + lift])
    for side in (LEFT, RIGHT):
        pose.wrist[:, side] = _lerp(apart, together, u)
        pose.wrist[:, side, 2] += 0.5 * b.h
    pose.pole[:] = [1.0, -0.3, -1.0]
    pose.spine[:, 0] = 0.05 * b.a * u


def _hit_up(pose: UpperPose, b: _Beat) -> None:
    u = pulse(b.bar, 2.0)
    top = np.array([0.26 + b.spread, 0.04, 0.36])
    low = np.array([0.1 + b.spread, 0.16, -0.36])
    for side in (LEFT, RIGHT):
        pose.wrist[:, side] = _lerp(low, top, np.minimum(1.0, (0.6 + 0.4 * b.a) * u))
        pose.wrist[:, side, 2] += b.h * u + 0.05 * b.a * pulse(b.ph, b.sharp)
    pose.pole[:] = _lerp(_POLE_DOWN, [1.0, 0.0, -0.4], u)[:, None]
    pose.spine[:, 0] = -0.1 * b.a * u
    pose.head[:, 0] = -0.1 * u
    pose.collar[:, :, 0] = 0.15 * u[:, None]


def _wave(pose: UpperPose, b: _Beat) -> None:
    shift = 0.18 * b.a * snap(b.ph, b.sharp)
    for side, sign in ((LEFT, 1), (RIGHT, -1)):
        pose.wrist[:, side] = np.stack([0.12 + b.spread + sign * shift, 0.06 * b.ones, 0.34 + b.h], -1)
    pose.pole[:] = [1.0, 0.0, -0.3]
    pose.spine[:, 1] = 0.12 * b.a * snap(b.ph, b.sharp)
    pose.head[:, 1] = 0.08 * b.a * snap(b.ph, b.sharp)


def _shimmy(pose: UpperPose, b: _Beat) -> None:
    shake = snap(b.ph, 2 * b.sharp)  # a shoulder forward on every beat, the other on the next
    for side, sign in ((LEFT, 1), (RIGHT, -1)):
        pose.wrist[:, side] = np.stack([0.16 * b.ones, 0.26 + 0.03 * sign * shake, -0.1 + 0.5 * b.h], -1)
        pose.collar[:, side, 1] = 0.14 * b.a * sign * shake
    pose.pole[:] = [1.0, -0.4, -1.0]
    pose.spine[:, 2] = 0.07 * b.a * shake
    pose.spine[:, 0] = 0.05


def _point(pose: UpperPose, b: _Beat) -> None:
    p = (1.0 + snap(b.ph, b.sharp)) / 2.0
    if b.variant == 1:
        p = 1.0 - p
    aim = np.array([0.32, 0.2, 0.3])
    hip = np.array([0.12 + b.spread, 0.04, -0.32])
    pose.wrist[:, LEFT] = _lerp(hip, aim, p)
    pose.wrist[:, RIGHT] = _lerp(hip, aim, 1.0 - p)
    pose.wrist[:, :, 2] += b.h[:, None] * np.stack([p, 1 - p], -1)
    pose.pole[:] = [1.0, -0.2, -0.8]
    pose.spine[:, 1] = 0.08 * b.a * (2 * p - 1)
    pose.head[:, 2] = 0.2 * b.a * (2 * p - 1)


def _roll(pose: UpperPose, b: _Beat) -> None:
    theta = 2 * np.pi * b.ph - np.sin(2 * np.pi * b.ph)  # circling, with a stop on every beat
    for side, offset in ((LEFT, 0.0), (RIGHT, np.pi)):
        pose.wrist[:, side] = np.stack([-0.02 + 0.07 * np.cos(theta + offset), 0.32 + 0.05 * np.sin(theta + offset),
                                        -0.1 + 0.5 * b.h + 0.07 * np.sin(theta + offset)], -1)
    pose.pole[:] = [1.0, -0.2, -1.0]
    pose.spine[:, 0] = 0.04 * b.a * pulse(b.ph)


def _punch(pose: UpperPose, b: _Beat) -> None:
    out = (1.0 + snap(b.ph, 3 * b.sharp)) / 2.0  # each fist out on its beat, back on the next
    u = [out, 1.0 - out]
    chamber = np.array([0.13, 0.08, -0.16])
    extended = np.array([-0.06, 0.46, 0.02])
    for side in (LEFT, RIGHT):
        pose.wrist[:, side] = _lerp(chamber, extended, np.minimum(1.0, (0.7 + 0.3 * b.a) * u[side]))
        pose.wrist[:, side, 2] += 0.5 * b.h
    pose.pole[:] = [1.0, -0.6, -0.6]
    pose.spine[:, 2] = 0.2 * b.a * (u[1] - u[0])


def _twist(pose: UpperPose, b: _Beat) -> None:
    turn = snap(b.ph, b.sharp)
    for side in (LEFT, RIGHT):
        pose.wrist[:, side] = np.stack([0.16 * b.ones, 0.22 * b.ones, -0.2 + 0.5 * b.h], -1)
    pose.pole[:] = [1.0, -0.5, -1.0]
    pose.spine[:, 2] = 0.3 * b.a * turn
    pose.head[:, 2] = -0.2 * b.a * turn


_MOVES: dict[str, Callable[[UpperPose, _Beat], None]] = {
    "relaxed": _relaxed, "swing": _swing, "pump": _pump, "clap": _clap, "hit_up": _hit_up, "wave": _wave,
    "shimmy": _shimmy, "point": _point, "roll": _roll, "punch": _punch, "twist": _twist,
}
