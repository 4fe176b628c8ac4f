"""What a clip dances: a body style drawn per clip, and two-bar phrases, each with a
lower- and an upper-body move chosen for its music (``LOWER_MOVES``, ``UPPER_MOVES``:
each move's affinity to the music; the moves themselves are in ``lower_moves`` and
``upper_moves``), cross-faded over one pulse."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from backend.training.procedural.music_descriptor import MusicDescriptor
from backend.training.procedural.timeline import Timeline


@dataclass
class BodyStyle:
    """Per-clip body parameters: the same song danced by different people."""

    amp: float
    knee_bend: float  # metres the pelvis sits below its rest height
    bounce: float  # metres of pelvis dip on the beat at full energy
    stance: float  # half the distance between the ankles
    lean: float  # forward lean of the chest, radians
    arm_spread: float
    arm_height: float
    asymmetry: float  # left/right amplitude ratio
    sharpness: float
    nod: float
    turnout: float
    step_height: float
    lead: int  # foot that starts patterns, 0 left, 1 right
    preference: dict[str, float]

    @classmethod
    def sample(cls, rng: np.random.Generator) -> "BodyStyle":
        return cls(
            amp=rng.uniform(0.8, 1.2), knee_bend=rng.uniform(0.03, 0.075), bounce=rng.uniform(0.025, 0.05),
            stance=rng.uniform(0.1, 0.15), lean=rng.uniform(-0.02, 0.12), arm_spread=rng.uniform(0.0, 0.08),
            arm_height=rng.normal(0.0, 0.04), asymmetry=rng.uniform(0.85, 1.15), sharpness=rng.uniform(0.8, 1.5),
            nod=rng.uniform(0.04, 0.14), turnout=rng.uniform(0.05, 0.25), step_height=rng.uniform(0.06, 0.1),
            lead=int(rng.integers(2)),
            preference={m: rng.normal(0.0, 0.35) for m in (*LOWER_MOVES, *UPPER_MOVES)},
        )


# Affinity of each move to the music: weights on (1, energy, brightness, onset density,
# tempo), each feature standardised by MUSIC_CENTRE and MUSIC_SCALE (typical values of
# the synthesised and real songs). A phrase's move is drawn from softmax(score / T).
MUSIC_CENTRE = np.array([0.0, 0.7, 0.5, 0.4, 0.5])
MUSIC_SCALE = np.array([1.0, 0.15, 0.2, 0.2, 0.25])
LOWER_MOVES: dict[str, tuple[float, float, float, float, float]] = {
    "groove": (0.5, -0.6, 0.0, -0.3, 0.0),
    "sway": (-0.3, -1.3, -0.3, -0.5, -0.8),
    "step_touch": (0.5, 0.0, 0.0, 0.0, 0.0),
    "march": (0.0, 0.8, 0.0, 0.3, 0.3),
    "grapevine": (0.0, 0.3, 0.0, 0.5, -0.2),
    "rock_step": (0.2, 0.0, 0.5, 0.0, -0.3),
    "kick_step": (-0.5, 1.2, 0.3, 0.4, 0.3),
    "toe_tap": (0.0, 0.2, 0.6, 0.3, 0.0),
    "jump": (-1.0, 1.5, 0.0, 0.5, 0.3),
    "turn": (-0.2, -0.2, 0.5, -0.5, -0.5),
    "walk": (-0.3, 0.2, -0.4, 0.0, -0.5),
}
UPPER_MOVES: dict[str, tuple[float, float, float, float, float]] = {
    "relaxed": (0.0, -1.2, -0.5, -0.6, 0.0),
    "swing": (0.5, -0.3, -0.3, 0.0, 0.0),
    "pump": (-0.3, 1.2, 0.0, 0.3, 0.3),
    "clap": (0.0, 0.2, 0.3, 0.8, 0.0),
    "hit_up": (-0.5, 1.0, 0.8, 0.0, 0.0),
    "wave": (0.0, -0.3, 0.6, -0.7, -0.8),
    "shimmy": (-0.2, 0.3, 0.3, 1.0, 0.3),
    "point": (0.0, 0.4, 0.5, 0.0, 0.0),
    "roll": (-0.2, 0.2, 0.5, 0.4, 0.0),
    "punch": (-0.2, 0.8, -0.8, 0.3, 0.0),
    "twist": (0.0, 0.2, -0.5, 0.6, 0.0),
}
CHOICE_TEMPERATURE: float = 0.5


@dataclass
class Phrase:
    start: int  # pulse index of its first (down)beat
    length: int  # pulses
    lower: str
    upper: str
    music: tuple[float, float, float]  # mean energy, brightness, onset density
    variant: int  # a move's alternative form (e.g. alternating vs. both arms)


def _choose(table: dict, features: np.ndarray, style: BodyStyle, rng: np.random.Generator,
            exclude: str | None, allowed: Callable[[str], bool]) -> str:
    names = [m for m in table if m != exclude and allowed(m)]
    scores = np.array([np.dot(table[m], features) + style.preference[m] for m in names])
    p = np.exp((scores - scores.max()) / CHOICE_TEMPERATURE)
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def plan_phrases(tl: Timeline, curves: dict[str, np.ndarray], style: BodyStyle,
                 rng: np.random.Generator) -> list[Phrase]:
    """Two-bar phrases over the clip, each with a lower- and an upper-body move."""
    first = tl.downbeat + int(np.floor((tl.phase[0] - tl.downbeat) / tl.phrase_pulses)) * tl.phrase_pulses
    tempo = np.clip((tl.bpm - 60.0) / 120.0, 0.0, 1.0)
    phrases: list[Phrase] = []
    start = first
    while start <= tl.phase[-1]:
        inside = (tl.phase >= start) & (tl.phase < start + tl.phrase_pulses)
        if not inside.any():
            inside = np.abs(tl.phase - start) == np.abs(tl.phase - start).min()
        music = tuple(float(curves[k][inside].mean()) for k in MusicDescriptor.CURVES)
        features = (np.array([1.0, *music, tempo]) - MUSIC_CENTRE) / MUSIC_SCALE
        prev = phrases[-1] if phrases else None
        changed = prev is None or abs(music[0] - prev.music[0]) > 0.12 or abs(music[2] - prev.music[2]) > 0.15
        if prev is not None and not changed and prev.lower != "jump" and rng.random() < 0.4:
            lower, upper = prev.lower, prev.upper
        else:
            turned_recently = any(p.lower == "turn" for p in phrases[-2:])
            jumped = prev is not None and prev.lower == "jump"  # one phrase of jumping at a time
            lower = _choose(LOWER_MOVES, features, style, rng, prev.lower if (prev and changed) else None,
                            lambda m: not (m == "jump" and (jumped or tl.pulse_seconds < 0.34 or music[0] < 0.6))
                            and not (m == "turn" and turned_recently))
            upper = _choose(UPPER_MOVES, features, style, rng, prev.upper if (prev and changed) else None,
                            lambda m: True)
        phrases.append(Phrase(start, tl.phrase_pulses, lower, upper, music, int(rng.integers(2))))
        start += tl.phrase_pulses
    return phrases


def phrase_weights(tl: Timeline, phrases: list[Phrase]) -> np.ndarray:
    """(P, T) cross-fade weights that sum to 1: each boundary blends over one pulse."""
    def ramp(x: np.ndarray) -> np.ndarray:
        x = np.clip(x, 0.0, 1.0)
        return x * x * (3 - 2 * x)
    w = np.zeros((len(phrases), len(tl.phase)))
    for k, p in enumerate(phrases):
        up = ramp(tl.phase - (p.start - 0.5)) if k > 0 else 1.0
        down = 1.0 - ramp(tl.phase - (p.start + p.length - 0.5)) if k < len(phrases) - 1 else 1.0
        w[k] = up * down
    return w
