"""Phrases of lower-body moves turned into world-space steps, foot trajectories and
the weight shift between the feet.

A stepping foot lifts between beats and lands on a beat, a planted foot never moves,
and a step that would overlap another foot's step badly is dropped. Feet that a move
does not place early are settled into its stance. Turns ramp the body facing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backend.training.procedural.beat_shapes import smoothstep
from backend.training.procedural.lower_moves import SIDE, LowerMove
from backend.training.procedural.plan import BodyStyle, Phrase


@dataclass
class _Step:
    foot: int
    lift: float  # pulse phase
    land: float
    target: np.ndarray  # world xy of the ankle
    yaw: float
    kind: str
    height: float
    mid: np.ndarray


def _rot2(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s], [s, c]])


class FootPlanner:
    """Turns phrases of step specs into world-space steps that never overlap badly."""

    def __init__(self, style: BodyStyle, max_swing: float = 1.0):
        self.style = style
        self.max_swing = max_swing  # pulses a foot may be in the air (under 1/2 in half time: still on every beat)
        self.pos = np.array([[style.stance, 0.0], [-style.stance, 0.0]])  # ankle xy after the last phrase
        self.steps: list[_Step] = []
        self.facing_keys: list[tuple[float, float]] = [(-1e9, 0.0)]

    def facing(self, pulse_phase: np.ndarray | float) -> np.ndarray:
        """Body facing (yaw, radians) at a pulse phase: smooth ramps between keys."""
        keys = self.facing_keys
        x = np.asarray(pulse_phase, dtype=np.float64)
        out = np.full(x.shape, keys[0][1])
        for (t0, y0), (t1, y1) in zip(keys[:-1], keys[1:]):
            if t1 > t0:
                out = np.where(x >= t0, y0 + (y1 - y0) * smoothstep((x - t0) / (t1 - t0)), out)
        return out

    def _busy(self, foot: int, lift: float, land: float, jump: bool) -> bool:
        for st in self.steps:
            if st.kind == "weight":
                continue
            gap = 0.12
            if st.foot == foot and st.lift - gap < land and lift < st.land + gap:
                return True
            if st.foot != foot and st.lift < land and lift < st.land and not (jump and st.kind == "jump"):
                return True
        return False

    def add_phrase(self, phrase: Phrase, move: LowerMove) -> None:
        st = self.style
        facing0 = float(self.facing(float(phrase.start)))
        if move.turn:
            end = phrase.start + phrase.length - 1.0
            self.facing_keys += [(float(phrase.start), facing0), (end, facing0 + move.turn)]
        center = 0.7 * self.pos.mean(axis=0)  # drift back towards the origin

        def world(local: tuple[float, float], at: float) -> tuple[np.ndarray, float]:
            yaw = float(self.facing(at))
            return center + _rot2(yaw) @ np.asarray(local), yaw

        for spec in move.steps:
            land = float(phrase.start + spec.at)
            lift = land - min(spec.swing, self.max_swing)
            target, yaw = world(spec.target, land)
            if spec.kind == "weight":
                self.steps.append(_Step(spec.foot, land, land, target, yaw, "weight", 0.0, np.zeros(2)))
                continue
            if self._busy(spec.foot, lift, land, spec.kind == "jump"):
                continue
            height = st.step_height * spec.height
            if spec.kind == "jump":
                height = 0.05 * spec.height + 0.02
            mid = _rot2(yaw) @ np.asarray(spec.mid)
            self.steps.append(_Step(spec.foot, lift, land, target, yaw + SIDE[spec.foot] * st.turnout,
                                    spec.kind, max(height, 0.06), mid))

        # Feet the move does not place early: settle them into the move's stance.
        for foot in (0, 1):
            own = [s.at for s in move.steps if s.foot == foot and s.kind != "weight"]
            if own and min(own) < 2:
                continue
            home, yaw = world((SIDE[foot] * st.stance * move.home, 0.0), phrase.start)
            current = self._position_before(foot, phrase.start)
            if np.linalg.norm(current - home) < 0.03:
                continue
            for at in range(0, min(own) if own else 4):
                land = float(phrase.start + at)
                swing = min(0.75, self.max_swing)
                if not self._busy(foot, land - swing, land, False):
                    self.steps.append(_Step(foot, land - swing, land, home, yaw + SIDE[foot] * st.turnout,
                                            "step", st.step_height * 0.8, np.zeros(2)))
                    break
        for foot in (0, 1):
            self.pos[foot] = self._position_before(foot, phrase.start + phrase.length + 1.0)

    def _position_before(self, foot: int, at: float) -> np.ndarray:
        landed = [s for s in self.steps if s.foot == foot and s.land <= at and s.kind != "weight"]
        if not landed:
            return np.array([SIDE[foot] * self.style.stance, 0.0])
        return max(landed, key=lambda s: s.land).target.copy()

    def trajectories(self, phase: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per frame: ankle xy (T,2,2), lift (T,2), foot yaw (T,2), toe pitch (T,2)."""
        n = len(phase)
        xy = np.zeros((n, 2, 2))
        lift = np.zeros((n, 2))
        yaw = np.zeros((n, 2))
        for foot in (0, 1):
            pos = np.array([SIDE[foot] * self.style.stance, 0.0])
            ang = SIDE[foot] * self.style.turnout
            xy[:, foot] = pos
            yaw[:, foot] = ang
            for st in sorted((s for s in self.steps if s.foot == foot and s.kind != "weight"), key=lambda s: s.land):
                s = (phase - st.lift) / (st.land - st.lift)
                during = (s >= 0) & (s < 1)
                after = s >= 1
                travel = np.clip((s[during] - 0.15) / 0.57, 0.0, 1.0)  # only while well off the floor
                g = smoothstep(travel)
                bump = np.sin(np.pi * travel)
                xy[during, foot] = pos + g[:, None] * (st.target - pos) + bump[:, None] * st.mid
                yaw[during, foot] = ang + g * (st.yaw - ang)
                rise = np.sin(np.pi * s[during])
                lift[during, foot] = st.height * np.where(s[during] < 0.5, rise, rise**2)  # quick up, soft landing
                xy[after, foot] = st.target
                yaw[after, foot] = st.yaw
                pos, ang = st.target, st.yaw
        pitch = np.minimum(0.3, 1.2 * lift)  # toes point down a little in the air
        return xy, lift, yaw, pitch

    def weight_left(self, phase: np.ndarray) -> np.ndarray:
        """Share of the body weight on the left foot, per frame.

        Keyed values joined by smoothsteps, keyed on beats only (a key between beats
        would be a rest between beats): the weight sits over the foot that last took it,
        which is the stance foot when the other lifts, and arrives on a stepping foot
        exactly as it lands, so the pelvis is still on the beat and travels between beats.
        """
        on = {0: 0.75, 1: 0.25}  # weight over one foot (the other is free to lift)
        settled = {0: 0.68, 1: 0.32}
        keys: list[tuple[float, float]] = []
        for st in self.steps:
            other = 1 - st.foot
            if st.kind == "weight":
                keys.append((st.land, settled[st.foot]))
            elif st.kind == "jump":
                keys.append((st.land, 0.5))
            else:
                keys.append((st.land, on[st.foot] if st.kind == "step" else on[other]))
        merged: dict[float, list[float]] = {}
        for t, v in keys:  # two keys on one beat (a foot lands as the other touches): meet half-way
            merged.setdefault(t, []).append(v)
        keys = sorted((t, float(np.mean(v))) for t, v in merged.items())
        keyed: list[tuple[float, float]] = [(-1e9, 0.5)]
        for t, v in keys + [(1e9, 0.5)]:
            if t - keyed[-1][0] > 2.5:  # a long still: back to both feet, until shortly before the next step
                keyed += [(keyed[-1][0] + 2.0, 0.5), (t - 1.0, 0.5)]
            keyed.append((t, v))
        times = np.array([t for t, _ in keyed])
        values = np.array([v for _, v in keyed])
        i = np.clip(np.searchsorted(times, phase, side="right") - 1, 0, len(times) - 2)
        span = np.maximum(times[i + 1] - times[i], 1e-6)
        return values[i] + (values[i + 1] - values[i]) * smoothstep((phase - times[i]) / span)
