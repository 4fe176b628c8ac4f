"""``graph``: dance from real motion capture, cut on its kinematic beats and put on the
music's beats (ChoreoMaster's approach: Chen et al., SIGGRAPH 2021).

Its "checkpoint" is the motion library (``backend/library``, built by ``choreo
library build``). A dance is planned a window of beats at a time (graph_plan.py) and
rendered piece by piece (graph_synthesis.py), so chunks stream as soon as their
pieces are committed.

Edits:

* continuation: the dance goes on from the animator's frame before the span; the
  first piece is the segment whose start pose (and velocity) best matches it,
  blended in from it;
* range: the same, and the search also prefers paths whose last segment ends in the
  pose of the kept frame after the range; what is left of the difference fades
  out over ``BLEND_S`` before it (joint rotations, height), and the floor position is
  pulled onto the kept one evenly across the range, so the kept frames after it
  join without a jump;
* joints (body part): the range is made as above and only the asked-for columns are
  taken from it, over the kept others (upper body from the graph over the kept legs);
* keyframes (whole frames kept inside the span): the range is made as above, then
  warped onto them (``warp_onto_keyframes``): each keyframe's difference from the made
  frame is spread over the frames between it and its neighbours (the span's borders or
  the next keyframe), so the dance passes through every keyframe without a jump
  (motion warping, Witkin and Popovic, SIGGRAPH 1995).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import numpy as np

from backend.library.library import FOOT_CONTACT_NAMES, MotionLibrary, heading, load_library, pose_features
from backend.library.sources import STYLES
from backend.models.base import (
    Cancelled, EditRequest, GenerationRequest, MotionChunk, OptionSpec, ProgressCallback, StopCheck, description,
)
from backend.models.graph_plan import Planner, PlanOptions, music_grid
from backend.conventions import FPS
from backend.metrics.physical import rest_clearance
from backend.models.graph_synthesis import (
    LEG_CHAINS, LIFT_CONTEXT, TOES, Synthesizer, fade, glide_lift, q_conj, q_exp, q_log, q_mul, raise_ankle,
    spread_lift,
)
from backend.motion import rotations as rot
from backend.motion.contacts import contact_labels
from backend.motion.kinematics import forward_kinematics_np
from backend.motion.skeleton import FOOT_CONTACT_JOINTS, NUM_JOINTS


CHUNK_FRAMES = 15
"""Frames per streamed chunk (half a second)."""
REST_TOE_HEIGHT = rest_clearance()[list(TOES)]
"""Height of the toe joints above the floor when standing (the glide test measures above it)."""


class GraphGenerator:
    """The motion-graph generator behind the ``Generator`` interface."""

    family = "motion_graph"

    def __init__(self, library: MotionLibrary, name: str = "graph", info: dict[str, Any] | None = None) -> None:
        self.library = library
        self.name = name
        self.fps = int(round(library.fps))
        self.contact_names = FOOT_CONTACT_NAMES
        self.info = info or {}
        present = sorted({STYLES[s] for s in np.unique(library.clip_styles)})
        self.options: tuple[OptionSpec, ...] = (
            OptionSpec("style", "choice", "any", choices=("any", *present),
                       description="Which capture to dance from: any, or one style of the library"),
            OptionSpec("energy", "float", 1.0, 0.5, 1.5,
                       description="How big and fast the moves are (1: as the music asks; real dance "
                                   "runs 0.5-0.8 m/s)"),
            OptionSpec("travel", "float", 0.5, 0.0, 1.0,
                       description="How far the dancer may wander across the floor (0: about 0.75 m "
                                   "around the start, 1: about 4 m)"),
        )

    @classmethod
    def from_file(cls, path: str | Path, name: str = "graph") -> "GraphGenerator":
        """The generator over the motion library at ``path`` (no network: the registry's
        generic loader hands its file to it, and it runs on the CPU whatever the device)."""
        library = load_library(path)
        meta = library.meta
        info = {"checkpoint": Path(path).name, "library_minutes": meta.get("minutes"),
                "library_segments": library.num_segments, "library_transitions": int(len(library.edge_to))}
        return cls(library, name=name, info=info)

    def describe(self) -> dict[str, Any]:
        return description(self, ("continuation", "range", "joints", "keyframes"), deterministic=False,
                           **self.info)

    def _options(self, given: dict[str, Any]) -> dict[str, Any]:
        return {o.name: given.get(o.name, o.default) for o in self.options}

    def _plan_options(self, given: dict[str, Any]) -> PlanOptions:
        opts = self._options(given)
        return PlanOptions(style=str(opts["style"]), energy=float(opts["energy"]), travel=float(opts["travel"]))

    # -- a new dance ----------------------------------------------------------------------

    def generate(self, request: GenerationRequest, should_stop: StopCheck,
                 on_progress: ProgressCallback) -> Iterator[MotionChunk]:
        features = np.asarray(request.music_features)
        total = int(features.shape[0])
        grid = music_grid(features, self.fps, 0.0, total / self.fps)
        planner = Planner(self.library, grid, self._plan_options(request.options), seed=int(request.seed))
        synth = Synthesizer(self.library, self.fps, 0, total)
        made = _Frames(total)
        sent = 0
        while not planner.done and made.count < total:
            if should_stop():
                raise Cancelled()
            for piece in planner.extend():
                made.append(*synth.add(piece, made.last_two()))
            on_progress("sampling", made.count / total)
            final = planner.done or made.count >= total
            ready = made.settle(final)
            while ready - sent >= CHUNK_FRAMES or (ready > sent and final):
                stop = min(ready, sent + CHUNK_FRAMES)
                yield made.chunk(sent, stop)
                sent = stop
        if sent < total:  # the grid always covers the song; this is a guard, not a path
            raise RuntimeError(f"graph planned {sent} of {total} frames")
        on_progress("sampling", 1.0)

    # -- edits ------------------------------------------------------------------------------

    def edit(self, request: EditRequest, should_stop: StopCheck,
             on_progress: ProgressCallback) -> Iterator[MotionChunk]:
        features = np.asarray(request.music_features)
        total = int(features.shape[0])
        first, stop = request.span
        rotations = np.asarray(request.rotations, dtype=np.float64)
        root = np.asarray(request.root_translation, dtype=np.float64)
        positions, _ = forward_kinematics_np(rot.np_.quaternion_to_matrix(rotations), root)
        yaw = heading(rotations[:, 0])
        before = max(first - 1, 0)
        entry = pose_features(positions, root, yaw, np.array([before]), self.fps)[0]
        end = pose_features(positions, root, yaw, np.array([stop]), self.fps)[0] if stop < total else None
        render_to = min(stop + 1, total)  # one frame past a range, to meet the kept frame after it
        grid = music_grid(features, self.fps, first / self.fps, render_to / self.fps)
        planner = Planner(self.library, grid, self._plan_options(request.options), seed=int(request.seed),
                          entry=entry, end=end, start_s=first / self.fps)
        hist = [max(first - 2, 0), before]
        synth = Synthesizer(self.library, self.fps, first, render_to, history=(rotations[hist], root[hist]))
        made = _Frames(render_to, first, last_two=(rotations[hist], root[hist]))
        streaming = stop >= total and _whole_frames(request.keep, first, stop)
        sent = first
        while not planner.done and made.count < render_to:
            if should_stop():
                raise Cancelled()
            for piece in planner.extend():
                made.append(*synth.add(piece, made.last_two()))
            on_progress("sampling", (made.count - first) / max(render_to - first, 1))
            if streaming:
                made.settle(planner.done or made.count >= render_to)
                while made.settled - sent >= CHUNK_FRAMES:
                    yield made.chunk(sent, sent + CHUNK_FRAMES)
                    sent += CHUNK_FRAMES
        made.settle(final=True)
        q, r, c = made.q[first:render_to], made.root[first:render_to], made.contacts[first:render_to]
        if stop < total:
            q, r = self._meet(q, r, rotations[stop], root[stop])[:2]
            q, r, c = q[:-1], r[:-1], c[:-1]
        keyframes = np.flatnonzero(np.asarray(request.keep)[first:stop].all(axis=1))
        if len(keyframes):
            q, r = warp_onto_keyframes(q, r, keyframes, rotations[first:stop][keyframes],
                                       root[first:stop][keyframes], until_zero=stop < total,
                                       tail=int(round(KEYFRAME_TAIL_S * self.fps)))
        if not _whole_frames(request.keep, first, stop):
            q, r, c = self._columns(request, q, r, first, stop)
        made.q[first:stop], made.root[first:stop], made.contacts[first:stop] = q, r, c
        while sent < stop:
            nxt = min(stop, sent + CHUNK_FRAMES)
            yield made.chunk(sent, nxt)
            sent = nxt
        on_progress("sampling", 1.0)

    def _meet(self, q: np.ndarray, r: np.ndarray, q_kept: np.ndarray, r_kept: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
        """Frames [first, stop] made to end exactly on the kept frame ``stop`` (module docstring)."""
        n = len(q)
        x_rot = q_log(q_mul(q_kept[None], q_conj(q[-1:])))[0]  # (24, 3)
        x_root = r_kept - r[-1]
        back = np.arange(n)[::-1]  # frames before the end
        a, _ = fade(back, self.fps)
        q = q_mul(q_exp(a[:, None, None] * x_rot[None]), q)
        r = r.copy()
        r[:, 2] += a * x_root[2]
        r[:, :2] += np.linspace(1.0 / n, 1.0, n)[:, None] * x_root[None, :2]
        return q, r

    def _columns(self, request: EditRequest, q: np.ndarray, r: np.ndarray, first: int, stop: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Take only the regenerated columns from the made frames; contacts from the result."""
        keep = np.asarray(request.keep)[first:stop]
        current_q = np.asarray(request.rotations, dtype=np.float64)[first:stop]
        current_r = np.asarray(request.root_translation, dtype=np.float64)[first:stop]
        current_q = np.where((current_q * q).sum(-1, keepdims=True) < 0, -current_q, current_q)
        q = np.where(keep[:, :NUM_JOINTS, None], current_q, q)
        r = np.where(keep[:, NUM_JOINTS:NUM_JOINTS + 1], current_r, r)
        positions, _ = forward_kinematics_np(rot.np_.quaternion_to_matrix(q), r)
        return q, r, contact_labels(positions, FOOT_CONTACT_JOINTS, self.fps)


KEYFRAME_TAIL_S = 1.0
"""After the last keyframe of a span that runs to the song's end (nothing kept after it),
its difference fades out over this long, and the dance goes on as made."""


def warp_onto_keyframes(q: np.ndarray, r: np.ndarray, keyframes: np.ndarray, q_keys: np.ndarray,
                        r_keys: np.ndarray, until_zero: bool, tail: int) -> tuple[np.ndarray, np.ndarray]:
    """Made frames (n, 24, 4), (n, 3) bent so that frame ``keyframes[i]`` is the i-th key pose.

    Each key's difference from the made frame (a rotation vector per joint, a root offset)
    is interpolated between anchors: zero just before the span (the kept frame the range
    was blended from), each key's own difference at its frame, and zero at frame n (the
    kept frame after a range, which the range already meets) or, with nothing kept after
    the span (``until_zero`` False), ``tail`` frames after the last key. The weights are
    smoothsteps, flat at every anchor, so the warp adds no speed at a border or a key.
    """
    n = len(q)
    q_keys = np.where((q_keys * q[keyframes]).sum(-1, keepdims=True) < 0, -q_keys, q_keys)
    d_rot = q_log(q_mul(q_keys, q_conj(q[keyframes])))  # (K, 24, 3)
    d_root = r_keys - r[keyframes]
    end = n if until_zero else min(n, int(keyframes[-1]) + max(tail, 1))
    at = np.concatenate([[-1], keyframes, [end]]).astype(np.float64)
    rot_at = np.concatenate([np.zeros((1, *d_rot.shape[1:])), d_rot, np.zeros((1, *d_rot.shape[1:]))])
    root_at = np.concatenate([np.zeros((1, 3)), d_root, np.zeros((1, 3))])
    frames = np.arange(n, dtype=np.float64)
    right = np.clip(np.searchsorted(at, frames, side="left"), 1, len(at) - 1)
    u = np.clip((frames - at[right - 1]) / (at[right] - at[right - 1]), 0.0, 1.0)
    w = u * u * (3.0 - 2.0 * u)  # smoothstep
    w_rot, w_root = w[:, None, None], w[:, None]
    rot_offset = (1.0 - w_rot) * rot_at[right - 1] + w_rot * rot_at[right]
    root_offset = (1.0 - w_root) * root_at[right - 1] + w_root * root_at[right]
    warped_q = q_mul(q_exp(rot_offset), q)
    warped_q[keyframes] = q_keys  # exact, not exp(log(.)) of it
    warped_r = r + root_offset
    warped_r[keyframes] = r_keys
    return warped_q, warped_r


def _whole_frames(keep: np.ndarray, first: int, stop: int) -> bool:
    """Whether the span regenerates whole frames (no column of it kept)."""
    return not np.asarray(keep)[first:stop].any()


class _Frames:
    """The output frames made so far, with quaternion signs kept continuous."""

    def __init__(self, total: int, first: int = 0,
                 last_two: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        self.q = np.zeros((total, NUM_JOINTS, 4))
        self.root = np.zeros((total, 3))
        self.contacts = np.zeros((total, len(FOOT_CONTACT_NAMES)))
        self.first = first
        self.count = first
        self.settled = first  # frames before this are final: their gliding toes are lifted
        self._need = np.zeros((total, 2))
        self._before = last_two

    def last_two(self) -> tuple[np.ndarray, np.ndarray] | None:
        if self.count - self.first >= 2:
            return self.q[self.count - 2:self.count], self.root[self.count - 2:self.count]
        if self.count - self.first == 1:
            if self._before is not None:
                return (np.stack([self._before[0][-1], self.q[self.count - 1]]),
                        np.stack([self._before[1][-1], self.root[self.count - 1]]))
            return (np.repeat(self.q[self.count - 1:self.count], 2, 0), np.repeat(self.root[self.count - 1:self.count], 2, 0))
        return self._before

    def append(self, start: int, q: np.ndarray, root: np.ndarray, contacts: np.ndarray) -> None:
        n = len(q)
        if n == 0:
            return
        if start != self.count:
            raise RuntimeError(f"graph frames out of order: {start} after {self.count}")
        n = min(n, len(self.q) - start)
        q = q[:n].copy()
        prev = self.q[start - 1] if start > self.first else (self._before[0][-1] if self._before is not None else None)
        # keep each joint's quaternion in the previous frame's hemisphere (no long-way spins)
        dots = np.concatenate([((q[:1] * prev[None]).sum(-1) if prev is not None else np.ones((1, NUM_JOINTS))),
                               (q[1:] * q[:-1]).sum(-1)])
        q *= np.cumprod(np.where(dots < 0, -1.0, 1.0), axis=0)[..., None]
        self.q[start:start + n], self.root[start:start + n] = q, root[:n]
        self.contacts[start:start + n] = contacts[:n]
        self.count = start + n

    def settle(self, final: bool) -> int:
        """Lift gliding toes (``graph_synthesis.glide_lift``) in the frames whose neighbours all
        exist, and return how many frames are final; ``final``: no more frames will come."""
        stop = self.count if final else max(self.settled, self.count - LIFT_CONTEXT)
        if stop <= self.settled:
            return self.settled
        lo, hi = max(self.first, self.settled - 2), min(self.count, stop + LIFT_CONTEXT)
        positions, global_rot = forward_kinematics_np(rot.np_.quaternion_to_matrix(self.q[lo:hi]), self.root[lo:hi])
        toes = list(TOES)
        need = glide_lift(positions[:, toes, 2] - REST_TOE_HEIGHT, positions[:, toes, :2], FPS)
        fresh = max(self.settled, lo)
        self._need[fresh:hi] = need[fresh - lo:]
        lift = spread_lift(self._need[lo:hi])
        if not final:
            lift[hi - lo - 2:] = 0.0  # their own lift waits for the frames after them
        rows = np.arange(self.settled - lo, stop - lo)
        q = self.q[lo:hi]
        for side, leg in enumerate(LEG_CHAINS):
            up = rows[lift[rows, side] > 0]
            if len(up):
                q[up] = raise_ankle(positions[up], global_rot[up], q[up], leg, lift[up, side])
        self.q[lo:hi] = q
        self.settled = stop
        return stop

    def chunk(self, a: int, b: int) -> MotionChunk:
        return MotionChunk(start=a, rotations=self.q[a:b].astype(np.float32),
                           root_translation=self.root[a:b].astype(np.float32),
                           contacts=self.contacts[a:b].astype(np.float32))
