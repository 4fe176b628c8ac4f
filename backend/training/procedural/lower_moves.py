"""The lower-body moves, each as the steps it takes over one phrase.

A move is authored in the phrase frame (x to the character's left, y backwards) as
step specs: which foot, on which pulse it lands, where, and how (a step that takes
the weight, a touch, a weight shift in place, a jump). ``foot_planner`` turns them
into world-space steps; the affinity of each move to the music is ``plan.LOWER_MOVES``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from backend.training.procedural.plan import BodyStyle

SIDE = np.array([1.0, -1.0])  # left foot on +X (the character's left when facing -Y), right on -X


@dataclass
class StepSpec:
    """A move's step, in the phrase frame: x to the character's left, y backwards."""

    foot: int
    at: int  # pulse within the phrase on which it lands
    target: tuple[float, float]
    kind: str = "step"  # "step" (weight moves onto it), "touch", "weight" (no movement), "jump"
    height: float = 1.0  # times the body style's step height
    swing: float = 0.75  # pulses in the air
    mid: tuple[float, float] = (0.0, 0.0)  # extra excursion at mid-swing (kicks)


@dataclass
class LowerMove:
    steps: list[StepSpec]
    home: float  # stance half-width as a multiple of the style's
    bounce: float  # scale of the pelvis dip on the beat
    sway: float  # lateral weight sway in place, 0..1
    twist: float  # hip yaw sway, radians at full amplitude
    turn: float = 0.0  # radians of whole-body turn over the phrase


@dataclass(frozen=True)
class _Feet:
    """What every move is built from: n pulses, amplitude a, stance half-width w, and
    the foot that leads (``lead``) and the other one."""

    n: int
    a: float
    w: float
    lead: int
    other: int
    variant: int


def lower_move(name: str, n: int, a: float, style: BodyStyle, variant: int) -> LowerMove:
    """The steps of one lower-body move over an n-pulse phrase, with amplitude a."""
    lead = style.lead if variant == 0 else 1 - style.lead
    build = _MOVES.get(name)
    if build is None:
        raise ValueError(f"unknown lower-body move {name!r}")
    return build(_Feet(n, a, style.stance, lead, 1 - lead, variant))


def _groove(f: _Feet) -> LowerMove:
    return LowerMove([], 1.0, 1.0, 0.15, 0.05)


def _sway(f: _Feet) -> LowerMove:
    return LowerMove([], 1.35, 0.5, 0.8, 0.12)


def _step_touch(f: _Feet) -> LowerMove:
    steps: list[StepSpec] = []
    out = 0.04 + 0.05 * f.a + f.w  # how far out the stepping foot goes
    for i in range(f.n):
        k = i % 4
        foot, side = (f.lead, SIDE[f.lead]) if k in (0, 3) else (f.other, SIDE[f.other])
        if k in (0, 2):  # step out to this foot's side
            steps.append(StepSpec(foot, i, (side * out, 0.0)))
        else:  # close the other foot next to it, without weight
            steps.append(StepSpec(foot, i, (-side * (out - 0.16), 0.0), "touch", 0.6))
    return LowerMove(steps, 1.0, 0.7, 0.0, 0.06)


def _march(f: _Feet) -> LowerMove:
    steps: list[StepSpec] = []
    for i in range(f.n):
        foot = f.lead if i % 2 == 0 else f.other
        fwd = -0.05 * f.a if (i // 2) % 2 == 0 else 0.0
        steps.append(StepSpec(foot, i, (SIDE[foot] * f.w, fwd), "step", 1.2))
    return LowerMove(steps, 1.0, 0.6, 0.0, 0.08)


def _grapevine(f: _Feet) -> LowerMove:
    steps: list[StepSpec] = []
    d, w = 0.12 + 0.08 * f.a, f.w
    center = 0.0
    for half in range(0, f.n, 4):
        direction = -1.0 if (half // 4) % 2 == 0 else 1.0  # right first, then back left
        lead_foot = 1 if direction < 0 else 0
        trail = 1 - lead_foot
        c = center
        seq = [(lead_foot, (c + direction * (d + w), 0.0), "step"),
               (trail, (c + direction * (d + 0.6 * w), 0.12), "step"),
               (lead_foot, (c + direction * (2 * d + w), 0.0), "step"),
               (trail, (c + direction * (2 * d - w + 0.04), 0.0), "touch")]
        for j, (foot, target, kind) in enumerate(seq):
            if half + j < f.n:
                steps.append(StepSpec(foot, half + j, target, kind))
        center = c + direction * 2 * d
    return LowerMove(steps, 1.0, 0.5, 0.0, 0.08)


def _rock_step(f: _Feet) -> LowerMove:
    steps: list[StepSpec] = []
    reach = 0.14 + 0.1 * f.a
    for i in range(f.n):
        foot = f.lead if (i // 4) % 2 == 0 else f.other
        k = i % 4
        if k == 0:
            steps.append(StepSpec(foot, i, (SIDE[foot] * f.w, -reach)))
        elif k == 1:
            steps.append(StepSpec(1 - foot, i, (0.0, 0.0), "weight"))
        elif k == 2:
            steps.append(StepSpec(foot, i, (SIDE[foot] * f.w, 0.6 * reach)))
        else:
            steps.append(StepSpec(foot, i, (SIDE[foot] * f.w, 0.0), "touch", 0.7))
    return LowerMove(steps, 1.0, 0.6, 0.0, 0.1)


def _kick_step(f: _Feet) -> LowerMove:
    steps: list[StepSpec] = []
    for i in range(f.n):
        foot = f.lead if i % 2 == 0 else f.other
        steps.append(StepSpec(foot, i, (SIDE[foot] * f.w, 0.0), "step", 1.6 + f.a, 0.7,
                              mid=(0.03 * SIDE[foot], -(0.18 + 0.12 * f.a))))
    return LowerMove(steps, 1.0, 0.5, 0.0, 0.06)


def _toe_tap(f: _Feet) -> LowerMove:
    steps: list[StepSpec] = []
    for i in range(f.n):
        foot = f.lead if (i // 2) % 2 == 0 else f.other
        if i % 2 == 0:
            steps.append(StepSpec(foot, i, (SIDE[foot] * (f.w + 0.06), -(0.16 + 0.08 * f.a)), "touch", 0.7))
        else:
            steps.append(StepSpec(foot, i, (SIDE[foot] * f.w, 0.0), "step", 0.7))
    return LowerMove(steps, 1.0, 0.8, 0.0, 0.05)


def _jump(f: _Feet) -> LowerMove:
    steps: list[StepSpec] = []
    for i in range(f.n):
        wide = 1.7 if i % 2 == 0 else 0.75
        for foot in (0, 1):
            steps.append(StepSpec(foot, i, (SIDE[foot] * f.w * wide, 0.0), "jump", 0.5 + 0.4 * f.a, 0.6))
    return LowerMove(steps, 1.0, 0.3, 0.0, 0.0)


def _turn(f: _Feet) -> LowerMove:
    steps: list[StepSpec] = []
    for i in range(f.n):
        foot = f.lead if i % 2 == 0 else f.other
        steps.append(StepSpec(foot, i, (SIDE[foot] * f.w * 0.9, 0.0), "step", 0.8))
    return LowerMove(steps, 0.9, 0.4, 0.0, 0.0, turn=2 * np.pi * (1 if f.variant == 0 else -1))


def _walk(f: _Feet) -> LowerMove:
    stride = 0.12 + 0.1 * f.a
    lead, other = f.lead, f.other
    pattern = [(lead, -stride, "step"), (other, -2 * stride, "step"), (lead, -2 * stride, "step"),
               (other, 0.0, "weight"), (lead, -stride, "step"), (other, 0.0, "step"),
               (lead, 0.0, "step"), (other, 0.0, "weight")]
    steps: list[StepSpec] = []
    for i in range(f.n):
        foot, y, kind = pattern[i % 8]
        steps.append(StepSpec(foot, i, (SIDE[foot] * f.w, y), kind))
    return LowerMove(steps, 1.0, 0.5, 0.0, 0.08)


_MOVES: dict[str, Callable[[_Feet], LowerMove]] = {
    "groove": _groove, "sway": _sway, "step_touch": _step_touch, "march": _march, "grapevine": _grapevine,
    "rock_step": _rock_step, "kick_step": _kick_step, "toe_tap": _toe_tap, "jump": _jump, "turn": _turn,
    "walk": _walk,
}
