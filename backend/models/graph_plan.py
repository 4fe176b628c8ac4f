"""The music side of the motion graph: where the beats are, how loud each one is, and
which library segments dance them (a path search over the graph).

The plan is a list of ``Piece``s: library segment ``s`` played so that its first frame
(a kinematic beat) lands on music beat ``t0`` and its last (the next kinematic beat)
on ``t1``, one or two beats later. The search (ChoreoMaster, Chen et al. SIGGRAPH
2021, is the anchor: a graph over capture, music-motion matching, a path search)
is a beam search over music beats. A path pays for:

* a cut (``CUT_COST`` plus the edge's pose distance; a segment's natural successor
  in its own clip costs nothing);
* time warp: ``|log(music span / segment length)|``, refused beyond +-20 %
  (``MAX_WARP``);
* energy: the warped segment's joint speed against the speed the music asks for at
  that point (``target_speed``: louder passages ask for bigger, faster moves);
* travel beyond the radius the ``travel`` option allows;
* foot skating: the share of the segment's frames where a toe slides low over the
  floor (worse when played faster), and hovering (its lowest joint's median height);
* a style change (with style "any"), partnered dance (with style "any": salsa's
  hands reach for a partner who is not there), and half-time (one segment over two
  beats);
* a little seeded noise, so that each seed finds its own path;

and earns a little for turning (``TURN_BONUS_PER_RAD``).

A segment (or its mirror) used less than ``REPEAT_S`` seconds ago is not a candidate,
nor is a cut into a segment that bursts into speed in the span the cut's blend covers.

Streaming: the search looks ``LOOKAHEAD_BEATS`` ahead of what it has committed and
commits ``COMMIT_BEATS`` at a time, so the first piece is known after one short
search and the cost of a dance grows linearly with its length.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.ndimage import gaussian_filter1d

from backend.library.library import MotionLibrary, pose_distance, turn_xy
from backend.library.sources import STYLES
from backend.music.features import BEAT_ONEHOT, ENVELOPE, MFCC

MAX_WARP = 1.2
"""A segment plays at most 20 % faster or slower than it was captured."""
ENTRY_MAX_WARP = 2.0
"""An edit's first piece fills the part-beat up to the next music beat: it may warp more."""
DEFAULT_BEAT_S = 0.5
"""Beat interval for music with no steady beat (120 BPM): dance moves still need a pulse."""
MIN_SPEED = 0.25
"""Segments slower than this (m/s, mean joint speed) are held poses: never planned."""
SPEED_QUIET, SPEED_LOUD = 0.62, 0.78
"""Mean joint speed (m/s) asked for by the quietest and the loudest passage of a song,
before the ``energy`` option scales it; real CMU dance runs at 0.49-0.76."""
ENERGY_SMOOTH_S = 2.0
"""Loudness is followed over a couple of seconds, not beat by beat."""
REPEAT_S = 20.0
"""No segment, nor its mirror, is used twice within this many seconds."""
TRAVEL_RADIUS_M = (0.75, 4.0)
"""Radius from the start the dance may wander at travel 0 and at travel 1."""

CUT_COST = 2.5
EDGE_COST_PER_M = 10.0
WARP_COST = 1.0
ENERGY_COST = 4.0
TRAVEL_COST_PER_M = 2.0
STYLE_SWITCH_COST = 0.75
PARTNERED_COST = 0.5
TURN_BONUS_PER_RAD = 0.4
"""Turning is rewarded (up to a quarter turn a segment): real dancers turn and face
new ways, which a path search minimising cost alone would rarely choose."""
HALF_TIME_COST = 1.0
SKATE_COST = 4.0
HOVER_COST_PER_M = 50.0
HOVER_FREE_M = 0.015
"""Segments whose lowest joint is higher than this (median) pay for hovering."""
CUT_PEAK_LIMIT = 1.6
"""A cut may not land in a segment whose first 0.4 s run faster than this times the
speed the music asks for (the blend would show as a jump in joint speed)."""
NOISE = 0.35
ENTRY_COST_PER_M = 8.0
END_COST_PER_M = 8.0

BEAM = 8
ENTRY_CHOICES = 24
"""A new dance opens with one of the 24 best-fitting segments, drawn by the seed."""
LOOKAHEAD_BEATS = 12
COMMIT_BEATS = 6


@dataclass(frozen=True)
class Piece:
    """Library segment ``segment`` played over output seconds [t0, t1], start to stop."""

    segment: int
    t0: float
    t1: float
    natural: bool  # continues the previous piece's clip without a cut


@dataclass(frozen=True)
class MusicGrid:
    """Beat times (seconds, increasing, covering the dance) and each beat interval's energy."""

    beats: np.ndarray  # (M + 1,)
    energy: np.ndarray  # (M,) in [0, 1]: where the interval's loudness ranks within the song


def music_grid(features: np.ndarray, fps: float, start_s: float = 0.0, end_s: float | None = None) -> MusicGrid:
    """Beats of the song from its feature frames, filled and extended to cover [start_s, end_s].

    The beat tracker's beats (``BEAT_ONEHOT``) are kept; a gap longer than 1.6 beats is
    filled evenly, and the grid is extended before the first and after the last beat
    at the median interval (``DEFAULT_BEAT_S`` when the song has no steady beat).
    """
    features = np.asarray(features, dtype=np.float64)
    n = len(features)
    end_s = n / fps if end_s is None else end_s
    found = np.flatnonzero(features[:, BEAT_ONEHOT.start] > 0.5) / fps
    interval = float(np.median(np.diff(found))) if len(found) >= 4 else DEFAULT_BEAT_S
    if not 0.2 <= interval <= 1.5:
        interval = DEFAULT_BEAT_S
    if len(found) < 4:
        found = np.arange(0.0, max(end_s, 0.0) + interval, interval)
    beats = [found[0]]
    for b in found[1:]:
        gap = b - beats[-1]
        if gap > 1.6 * interval:
            k = int(round(gap / interval))
            beats.extend(beats[-1] + gap * np.arange(1, k) / k)
        if gap > 0.5 * interval:
            beats.append(b)
    beats = np.array(beats)
    head = beats[0] - interval * np.arange(math.ceil(max(0.0, beats[0] - start_s) / interval) + 1, 0, -1)
    tail = beats[-1] + interval * np.arange(1, math.ceil(max(0.0, end_s - beats[-1]) / interval) + 2)
    beats = np.concatenate([head, beats, tail])
    lo = max(0, int(np.searchsorted(beats, start_s, side="right")) - 1)
    hi = int(np.searchsorted(beats, end_s, side="left")) + 1
    beats = beats[lo:hi + 1]
    return MusicGrid(beats, _beat_energy(features, fps, beats))


def _beat_energy(features: np.ndarray, fps: float, beats: np.ndarray) -> np.ndarray:
    """(M,) each beat interval's loudness rank in the song (0 quietest, 1 loudest).

    Loudness is onset strength plus the first MFCC (log energy), each standardised
    over the song, smoothed over ``ENERGY_SMOOTH_S``. Ranks, not raw values, because
    what a song calls loud is its own affair: every song gets its quiet and big moves.
    """
    if len(features) < 2:
        return np.full(len(beats) - 1, 0.5)

    def z(x: np.ndarray) -> np.ndarray:
        return (x - x.mean()) / (x.std() + 1e-8)

    loud = gaussian_filter1d(z(features[:, ENVELOPE.start]) + z(features[:, MFCC.start]), ENERGY_SMOOTH_S * fps)
    rank = np.argsort(np.argsort(loud)) / max(len(loud) - 1, 1)
    mid = np.clip(((beats[:-1] + beats[1:]) / 2 * fps).astype(int), 0, len(rank) - 1)
    return rank[mid]


def target_speed(energy: np.ndarray, scale: float) -> np.ndarray:
    """Mean joint speed (m/s) the music asks for at each beat's energy rank."""
    return (SPEED_QUIET + (SPEED_LOUD - SPEED_QUIET) * np.asarray(energy)) * scale


@dataclass
class _State:
    cost: float
    segment: int  # -1: the entry, nothing played yet
    beat: int
    position: np.ndarray  # (2,) where the pelvis is on the floor (relative to the start)
    yaw: float
    parent: "_State | None" = None
    natural: bool = False
    recent: tuple[tuple[int, float], ...] = ()


@dataclass
class PlanOptions:
    style: str = "any"
    energy: float = 1.0
    travel: float = 0.5


@dataclass
class Planner:
    """Commits pieces over a grid of music beats, a window at a time (module docstring).

    entry: (2, 24, 3) pose features (``pose_features``) the first piece should start
    from (an edit's kept frame), or None for a new dance; end: the same for the pose
    the last piece should end in (a range edit's kept frame after the range).
    """

    library: MotionLibrary
    grid: MusicGrid
    options: PlanOptions
    seed: int = 0
    entry: np.ndarray | None = None
    end: np.ndarray | None = None
    start_s: float | None = None  # an edit's first frame time: the first piece starts here
    _rng: np.random.Generator = field(init=False)
    _committed: _State = field(init=False)
    pieces: list[Piece] = field(default_factory=list)

    def __post_init__(self) -> None:
        lib = self.library
        self._rng = np.random.default_rng(self.seed)
        styles = lib.clip_styles[lib.seg_clip]
        allowed = lib.seg_speed >= MIN_SPEED
        if self.options.style != "any":
            allowed &= styles == STYLES.index(self.options.style)
        if not allowed.any():
            raise ValueError(f"no segment of style {self.options.style!r} in the library")
        self._allowed = allowed
        self._styles = styles
        # with style "any", partnered capture (salsa: hands hold a partner who is not
        # there) pays a little, so solo dance leads and salsa fills in
        self._style_cost = np.where(styles == STYLES.index("salsa"), PARTNERED_COST, 0.0) \
            if self.options.style == "any" else np.zeros(len(styles))
        self._group = np.minimum(np.arange(lib.num_segments), np.where(lib.seg_twin >= 0, lib.seg_twin, 1 << 40))
        self._seconds = lib.seg_frames / lib.fps
        self._radius = TRAVEL_RADIUS_M[0] + (TRAVEL_RADIUS_M[1] - TRAVEL_RADIUS_M[0]) * self.options.travel
        self._targets = target_speed(self.grid.energy, self.options.energy)
        self._committed = _State(0.0, -1, 0, np.zeros(2), 0.0)
        self._candidates: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    @property
    def done(self) -> bool:
        return self._committed.beat >= len(self.grid.beats) - 1

    # -- candidates ---------------------------------------------------------------

    def _out_of(self, segment: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(targets, transition cost, natural?) from ``segment`` (-1: the entry)."""
        if segment in self._candidates:
            return self._candidates[segment]
        lib = self.library
        if segment < 0:
            targets = np.flatnonzero(self._allowed)
            cost = np.zeros(len(targets))
            if self.entry is not None:
                cost = ENTRY_COST_PER_M * pose_distance(lib.seg_start_pose[targets], self.entry[None])
            natural = np.zeros(len(targets), dtype=bool)
        else:
            to, edge = lib.successors(segment)
            nxt = lib.seg_next[segment]
            targets = np.concatenate([[nxt], to]) if nxt >= 0 else to
            cost = np.concatenate([[0.0], CUT_COST + EDGE_COST_PER_M * edge]) if nxt >= 0 else CUT_COST + EDGE_COST_PER_M * edge
            natural = np.zeros(len(targets), dtype=bool)
            if nxt >= 0:
                natural[0] = True
            keep = self._allowed[targets]
            targets, cost, natural = targets[keep], cost[keep], natural[keep]
            if self.options.style == "any":
                cost = cost + STYLE_SWITCH_COST * (self._styles[targets] != self._styles[segment])
        self._candidates[segment] = (targets.astype(np.int64), cost, natural)
        return self._candidates[segment]

    def _expand(self, state: _State, k: int) -> list[_State]:
        beats = self.grid.beats
        m = state.beat
        if m + k >= len(beats):
            return []
        targets, cost, natural = self._out_of(state.segment)
        if len(targets) == 0:
            return []
        span = beats[m + k] - beats[m]
        if state.segment < 0 and self.start_s is not None:
            span = beats[m + k] - self.start_s
        ratio = span / self._seconds[targets]
        limit = ENTRY_MAX_WARP if state.segment < 0 and self.start_s is not None else MAX_WARP
        ok = (ratio >= 1 / limit) & (ratio <= limit)
        live = tuple(r for r in state.recent if beats[m] - r[1] < REPEAT_S)
        if live:
            ok &= ~np.isin(self._group[targets], [g for g, _ in live])
        if not ok.any():
            return []
        targets, cost, natural, ratio = targets[ok], cost[ok], natural[ok], ratio[ok]
        speed = self.library.seg_speed[targets] / ratio
        skate = self.library.seg_skate[targets]
        target = self._targets[m:m + k].mean()
        # a cut blends over the segment's first 0.4 s: no burst there (a visible jump)
        burst = ~natural & (self.library.seg_early_peak[targets] / ratio > CUT_PEAK_LIMIT * target)
        if burst.all():
            return []
        keep = ~burst
        targets, cost, natural, ratio, speed, skate = (x[keep] for x in (targets, cost, natural, ratio, speed, skate))
        hover = np.maximum(0.0, self.library.seg_sole[targets] - HOVER_FREE_M)
        travel = self.library.seg_travel[targets]
        moved = state.position[None] + turn_xy(travel[:, :2], state.yaw)
        beyond = np.maximum(0.0, np.linalg.norm(moved, axis=1) - self._radius)
        total = (cost + WARP_COST * np.abs(np.log(ratio)) / math.log(MAX_WARP)
                 + ENERGY_COST * np.abs(np.log(speed / target)) + TRAVEL_COST_PER_M * beyond
                 + HALF_TIME_COST * (k - 1) + SKATE_COST * skate * np.maximum(1.0, 1.0 / ratio) + HOVER_COST_PER_M * hover + self._style_cost[targets]
                 - TURN_BONUS_PER_RAD * np.minimum(np.abs(travel[:, 2]), math.pi / 2) + NOISE * self._rng.gumbel(size=len(targets)))
        if self.end is not None and m + k == len(beats) - 1:
            total = total + END_COST_PER_M * pose_distance(self.library.seg_stop_pose[targets], self.end[None])
        if state.segment < 0 and self.entry is None:
            # a new dance: the seed picks where it starts among the best openings, so
            # seeds differ from the first beat (noise alone rarely beats the path costs)
            order = np.argsort(total)[:ENTRY_CHOICES]
            total = total.copy()
            total[order[self._rng.integers(len(order))]] -= 100.0
        best = np.argsort(total)[:BEAM]
        out = []
        for i in best:
            j = int(targets[i])
            recent = live + ((int(self._group[j]), float(beats[m])),)
            out.append(_State(state.cost + float(total[i]), j, m + k, moved[i], state.yaw + float(travel[i, 2]),
                              state, bool(natural[i]), recent))
        return out

    # -- the search -----------------------------------------------------------------

    def extend(self) -> list[Piece]:
        """Search the next window and commit its first ``COMMIT_BEATS`` beats; returns the new pieces."""
        if self.done:
            return []
        start = self._committed
        last = len(self.grid.beats) - 1
        horizon = min(start.beat + LOOKAHEAD_BEATS, last)
        stacks: dict[int, list[_State]] = {start.beat: [start]}
        for m in range(start.beat, horizon):
            stack = stacks.get(m)
            if not stack:
                continue
            for state in stack:
                for k in (1, 2):
                    for s in self._expand(state, k):
                        stacks.setdefault(s.beat, []).append(s)
            for n in (m + 1, m + 2):
                if n in stacks:
                    stacks[n] = _prune(stacks[n])
        reached = [b for b in stacks if b > start.beat and stacks[b]]
        if not reached:
            return self._fallback(start)
        best = min(stacks[max(reached)], key=lambda s: s.cost)
        path = []
        node: _State | None = best
        while node is not None and node is not start:
            path.append(node)
            node = node.parent
        path.reverse()
        commit_to = last if horizon >= last else start.beat + COMMIT_BEATS
        new: list[Piece] = []
        for node in path:
            new.append(self._piece(node))
            self._committed = node
            if node.beat >= commit_to:
                break
        self.pieces.extend(new)
        return new

    def _piece(self, node: _State) -> Piece:
        parent = node.parent
        assert parent is not None
        t0 = float(self.grid.beats[parent.beat])
        if parent.segment < 0 and self.start_s is not None:
            t0 = self.start_s
        return Piece(node.segment, t0, float(self.grid.beats[node.beat]), node.natural)

    def _fallback(self, start: _State) -> list[Piece]:
        """No candidate fits (a library filtered to a few segments): the nearest fitting
        segment of any kind, warp limits ignored, so that the dance goes on."""
        beats = self.grid.beats
        span = beats[start.beat + 1] - beats[start.beat]
        allowed = np.flatnonzero(self._allowed)
        used = [g for g, t in start.recent if beats[start.beat] - t < REPEAT_S]
        fresh = allowed[~np.isin(self._group[allowed], used)]
        allowed = fresh if len(fresh) else allowed
        misfit = np.abs(np.log(span / self._seconds[allowed])) + 0.1 * self._rng.gumbel(size=len(allowed))
        j = int(allowed[np.argmin(misfit)])
        node = _State(start.cost + 10.0, j, start.beat + 1, start.position, start.yaw, start, False,
                      start.recent + ((int(self._group[j]), float(beats[start.beat])),))
        piece = self._piece(node)
        self._committed = node
        self.pieces.append(piece)
        return [piece]


def _prune(states: list[_State]) -> list[_State]:
    """The ``BEAM`` cheapest states, one per segment."""
    best: dict[int, _State] = {}
    for s in states:
        if s.segment not in best or s.cost < best[s.segment].cost:
            best[s.segment] = s
    return sorted(best.values(), key=lambda s: s.cost)[:BEAM]
