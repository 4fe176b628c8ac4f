"""Build the motion library once: import, mirror, cut at kinematic beats, link by pose.

    choreo library build [--mocap DIR] [--out PATH] [--force] [--exclude TRIAL ...]

Steps, each for every source clip and for its left-right mirror:

1. import the BVH onto SMPL at 30 fps (``load_bvh_clip``: joint map detected, T-pose
   frames dropped, foot-contact labels) and settle it on the floor where it stands
   still (``settle_on_floor``);
2. find its kinematic beats: minima of the smoothed mean joint speed, the same
   definition the beat-alignment metric uses (``backend.metrics.beats.motion_beats``);
3. cut it into segments from one beat to the next, keeping those between
   ``MIN_SEGMENT_S`` and ``MAX_SEGMENT_S`` with no capture glitch in them, and note
   each one's speed (energy), feet state at both ends, travel and style;
4. link segments whose poses and velocities match (``backend.library.library.pose_distance``
   of the end of one and the start of the other below ``TRANSITION_MAX_M``), keeping
   the ``EDGES_PER_SEGMENT`` best for each.

The output is cached: its meta holds a hash of the source files, of these settings
and of the code that shapes the library (``_CODE``), and a build whose inputs have
not changed does nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import time
from pathlib import Path

import numpy as np

from backend.library.library import (
    FOOT_CONTACT_NAMES, LEFT_FOOT_COLUMNS, LIBRARY_VERSION, RIGHT_FOOT_COLUMNS, heading, pose_distance,
    pose_features, read_meta, save_library, turn_xy, wrap_angle,
)
from backend.library.sources import DEFAULT_LIBRARY, DEFAULT_MOCAP_DIR, STYLES, source_files, style_of
from backend.metrics.beats import motion_beats
from backend.metrics.quality import toe_sliding_frames
from backend.motion import rotations as rot
from backend.motion.bvh import load_bvh_clip
from backend.motion.clip import MotionClip
from backend.motion.kinematics import forward_kinematics_np
from backend.motion.contacts import CONTACT_SPEED_M_PER_S
from backend.motion.skeleton import FOOT_CONTACT_JOINTS, SOLE_BELOW_FOOT_JOINT

log = logging.getLogger("choreo.library")


FPS = 30.0
MIN_SEGMENT_S = 0.25
"""Shorter beat-to-beat pieces are tremble in the speed curve, not steps (a 240 BPM beat)."""
MAX_SEGMENT_S = 1.3
"""Longer ones are held poses or slow drifts that no beat of dance music fits (46 BPM)."""
GLITCH_STEP_M = 0.35
"""A joint moving more than this between two frames (10.5 m/s) is a capture glitch: the
segment holding it is dropped (some salsa trials end with a flipped head)."""
SPIKE_RATIO = 1.8
SPIKE_MIN_M_S = 1.2
"""A one-frame burst of mean joint speed (``glitch_frames``)."""
TRANSITION_MAX_M = 0.15
"""Largest pose distance (mean joint distance + 0.1 s x mean velocity difference) for a
transition edge: 15 cm is where the blend over 0.3 s stays invisible on stick figures."""
EDGES_PER_SEGMENT = 24
"""Transitions kept per segment (the best by distance), so the graph stays small."""
MIN_EDGES = 8
"""A segment with fewer transitions under the threshold gets its nearest starts anyway,
up to ``FAR_TRANSITION_MAX_M`` (their cost is their distance, so the path search takes
them only when it must)."""
FAR_TRANSITION_MAX_M = 0.25
"""Beyond this no blend hides the cut: limbs would swing through each other."""
MAX_PENETRATION_M = 0.03
"""``settle_on_floor`` leaves at most 1 % of frames deeper than this below the floor."""
EARLY_S = 0.4
"""``seg_early_peak``: the fastest mean joint speed in a segment's first 0.4 s, the span
a cut's blend covers."""
FEET_MISMATCH_COST_M = 0.03
"""Added to an edge's cost when the planted feet differ across it."""
_SETTINGS = dict(version=LIBRARY_VERSION, fps=FPS, min_segment_s=MIN_SEGMENT_S, max_segment_s=MAX_SEGMENT_S,
                 glitch_step_m=GLITCH_STEP_M, spike_ratio=SPIKE_RATIO, spike_min_m_s=SPIKE_MIN_M_S, transition_max_m=TRANSITION_MAX_M,
                 edges_per_segment=EDGES_PER_SEGMENT, min_edges=MIN_EDGES,
                 far_transition_max_m=FAR_TRANSITION_MAX_M, feet_mismatch_cost_m=FEET_MISMATCH_COST_M,
                 max_penetration_m=MAX_PENETRATION_M)


def import_clip(path: Path) -> MotionClip:
    """One capture file on SMPL at 30 fps, on the floor, with foot-contact labels."""
    return load_bvh_clip(path, fps=FPS, contact_joints=FOOT_CONTACT_JOINTS)


def _planted(contacts: np.ndarray) -> np.ndarray:
    """(T, 2) left / right foot planted: ankle or toe in contact."""
    return np.stack([contacts[:, list(LEFT_FOOT_COLUMNS)].max(1), contacts[:, list(RIGHT_FOOT_COLUMNS)].max(1)],
                    axis=1) > 0.5


def cut_points(clip: MotionClip, positions: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) frames of the clip's segments: beat to beat, of a danceable length,
    glitch-free. A mirrored clip takes its original's cuts (the mirror image moves the
    same way, but SMPL's slightly unequal left and right bones could move a beat by a
    frame, and the twins must stay twins)."""
    beats = motion_beats(positions)
    glitch = glitch_frames(positions, clip.fps)
    return [(int(a), int(b)) for a, b in zip(beats[:-1], beats[1:])
            if MIN_SEGMENT_S <= (b - a) / clip.fps <= MAX_SEGMENT_S and not glitch[a:b + 1].any()]


def segment_clip(clip: MotionClip, positions: np.ndarray, cuts: list[tuple[int, int]]) -> dict[str, np.ndarray]:
    """What the plan needs to know of each segment of one clip (frames counted inside it)."""
    speed = np.linalg.norm(np.gradient(positions, axis=0), axis=-1).mean(axis=-1) * clip.fps
    yaw = heading(clip.rotations[:, 0])
    feet = _planted(clip.contacts)
    skating = toe_sliding_frames(positions, clip.fps)
    sole = positions[..., 2].min(axis=-1) - SOLE_BELOW_FOOT_JOINT
    rows = []
    for a, b in cuts:
        moved = turn_xy(clip.root_translation[b, :2] - clip.root_translation[a, :2], -yaw[a])
        early = speed[a:a + int(round(EARLY_S * clip.fps)) + 1].max()  # past the segment too: the blend is
        rows.append((a, b, speed[a:b + 1].mean(), feet[a], feet[b], moved[0], moved[1],
                     float(wrap_angle(yaw[b] - yaw[a])), skating[a:b].mean(), early, np.median(sole[a:b + 1])))
    if not rows:
        return {}
    a, b, v, fa, fb, mx, my, turn, skate, early, sole_mid = (np.array(x) for x in zip(*rows))
    return {"seg_start": a.astype(np.int64), "seg_stop": b.astype(np.int64), "seg_speed": v.astype(np.float32),
            "seg_skate": skate.astype(np.float32), "seg_early_peak": early.astype(np.float32),
            "seg_sole": sole_mid.astype(np.float32),
            "seg_feet_start": np.stack(fa).astype(bool), "seg_feet_stop": np.stack(fb).astype(bool),
            "seg_travel": np.stack([mx, my, turn], axis=1).astype(np.float32)}


def glitch_frames(positions: np.ndarray, fps: float) -> np.ndarray:
    """(T,) frames whose step to the next frame is a capture glitch, not dance.

    Either a joint jumps more than ``GLITCH_STEP_M`` in one frame, or the mean joint
    speed spikes: more than ``SPIKE_RATIO`` times the median of the 7 frames around it
    and above ``SPIKE_MIN_M_S`` (a hand marker swapping for a frame, as in some salsa
    trials; real dance speeds up over several frames, not one).
    """
    steps = np.linalg.norm(np.diff(positions, axis=0), axis=-1)  # (T-1, J)
    speed = steps.mean(axis=-1) * fps
    if len(speed) == 0:
        return np.zeros(len(positions), dtype=bool)
    padded = np.pad(speed, 3, mode="edge")
    around = np.median(np.stack([padded[i:i + len(speed)] for i in range(7)]), axis=0)
    bad = (steps.max(axis=-1) > GLITCH_STEP_M) | ((speed > SPIKE_RATIO * around) & (speed > SPIKE_MIN_M_S))
    return np.append(bad, False)


def settle_on_floor(clip: MotionClip, positions: np.ndarray) -> float:
    """Move a clip up or down so that whatever stands still on the floor touches it.

    The importers put the 2nd percentile of the lowest joint on the floor: safe for
    any capture, but a dancer on the balls of the feet then hovers (05: 6 cm median,
    salsa 4 cm). Here the floor is where the lowest joint is while it is still (moving
    under ``CONTACT_SPEED_M_PER_S``: a planted foot, a hand in a cartwheel): the clip
    is shifted so that the median of those heights sits at the sole clearance, but
    never so far down that more than 1 % of frames would go ``MAX_PENETRATION_M`` into
    the floor. Returns the shift (metres, added to the root height and ``positions``).
    """
    lowest_joint = positions[..., 2].argmin(axis=1)
    lowest = positions[np.arange(len(positions)), lowest_joint]
    step = np.linalg.norm(np.diff(positions, axis=0), axis=-1) * clip.fps  # (T-1, J)
    speed = np.append(step[np.arange(len(step)), lowest_joint[:-1]], np.inf)
    still = speed < CONTACT_SPEED_M_PER_S
    if still.sum() < 10:
        return 0.0
    shift = SOLE_BELOW_FOOT_JOINT - float(np.median(lowest[still, 2]))
    deepest = SOLE_BELOW_FOOT_JOINT - MAX_PENETRATION_M - float(np.percentile(lowest[:, 2], 1))
    shift = max(shift, deepest)
    clip.root_translation[:, 2] += shift
    positions[..., 2] += shift
    return shift


def _positions(clip: MotionClip) -> np.ndarray:
    positions, _ = forward_kinematics_np(rot.np_.quaternion_to_matrix(clip.rotations.astype(np.float64)),
                                         clip.root_translation.astype(np.float64))
    return positions


def link_segments(start_features: np.ndarray, stop_features: np.ndarray, seg_clip: np.ndarray,
                  seg_index: np.ndarray, feet_start: np.ndarray, feet_stop: np.ndarray,
                  block: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Transition edges as CSR arrays (offsets, to, cost) from pose distances.

    An edge i -> j joins the end of i to the start of j. Segments of the same clip
    within two places of each other are not linked (that is the clip itself, or a
    stutter); the natural successor is stored apart (``seg_next``).
    """
    n = len(start_features)
    offsets, targets, costs = [0], [], []
    flat_start = start_features.reshape(n, 2, -1, 3)
    for lo in range(0, n, block):
        hi = min(n, lo + block)
        d = pose_distance(stop_features[lo:hi, None], flat_start[None])  # (b, n)
        d = d + FEET_MISMATCH_COST_M * (feet_stop[lo:hi, None] != feet_start[None]).any(-1)
        same = (seg_clip[lo:hi, None] == seg_clip[None]) & (np.abs(seg_index[lo:hi, None] - seg_index[None]) <= 2)
        d[same] = np.inf
        for row in d:
            ok = np.flatnonzero(row <= TRANSITION_MAX_M)
            if len(ok) < MIN_EDGES:  # a pose no other capture meets: its nearest starts anyway
                ok = np.argsort(row, kind="stable")[:MIN_EDGES]
                ok = ok[row[ok] <= FAR_TRANSITION_MAX_M]
            best = ok[np.argsort(row[ok], kind="stable")[:EDGES_PER_SEGMENT]]
            targets.append(best)
            costs.append(row[best])
            offsets.append(offsets[-1] + len(best))
    return np.array(offsets), np.concatenate(targets), np.concatenate(costs)


_CODE = ("library/build.py", "library/library.py", "library/sources.py", "motion/bvh.py", "motion/joint_maps.py",
         "motion/mirror.py", "motion/contacts.py", "metrics/beats.py", "metrics/quality.py")
"""The modules whose code shapes the library: a change to any of them rebuilds it."""


def source_hash(files: list[Path], exclude: tuple[str, ...] = ()) -> str:
    """sha256 over the sources' names and bytes, the build settings, the trials left out
    (``exclude``) and the build's code."""
    h = hashlib.sha256(json.dumps(_SETTINGS, sort_keys=True).encode())
    if exclude:  # the file list already differs; this names the exclusion in the hash too
        h.update(json.dumps({"exclude": sorted(exclude)}).encode())
    backend = Path(__file__).resolve().parents[1]
    for module in _CODE:
        h.update((backend / module).read_bytes())
    for f in files:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def build_library(mocap_dir: Path = DEFAULT_MOCAP_DIR, out: Path = DEFAULT_LIBRARY, force: bool = False,
                  files: list[Path] | None = None, exclude: tuple[str, ...] | list[str] = ()) -> Path:
    """Build (or find up to date) the library from the BVH files under ``mocap_dir``.

    ``exclude``: trial names (file stems, ``05_20``) left out, e.g. motion held out of
    training; each must be among the sources (a typo would silently keep it in).
    """
    from backend.library.library import LibraryError
    from backend.motion.mirror import mirror_clip

    files = source_files(mocap_dir) if files is None else sorted(files)
    exclude = tuple(sorted({Path(str(e)).stem for e in exclude}))
    unknown = sorted(set(exclude) - {f.stem for f in files})
    if unknown:
        raise LibraryError(f"--exclude names trials that are not among the sources: {', '.join(unknown)}",
                           "unknown_trial")
    files = [f for f in files if f.stem not in exclude]
    if not files:
        raise LibraryError("every source trial is excluded: nothing to build from", "no_mocap")
    digest = source_hash(files, exclude)
    if out.exists() and not force:
        try:
            if read_meta(out).get("source_hash") == digest:
                log.info("library %s is up to date", out)
                return out
        except (OSError, ValueError, KeyError):
            pass
    t0 = time.monotonic()
    clips, names, styles, per_clip, cuts = [], [], [], [], []
    for path in files:
        clip = import_clip(path)
        settle_on_floor(clip, _positions(clip))
        clips.append(clip)
        names.append(path.stem)
        styles.append(STYLES.index(style_of(path.stem)))
    k = len(clips)
    for c, clip in enumerate(clips + [mirror_clip(x) for x in clips]):
        positions = _positions(clip)
        if c < k:
            cuts.append(cut_points(clip, positions))
        segs = segment_clip(clip, positions, cuts[c % k])
        if not segs:
            per_clip.append({})
            continue
        segs["seg_clip"] = np.full(len(segs["seg_start"]), c, dtype=np.int64)
        yaw = heading(clip.rotations[:, 0])
        segs["_start_features"] = pose_features(positions, clip.root_translation, yaw, segs["seg_start"], clip.fps)
        segs["_stop_features"] = pose_features(positions, clip.root_translation, yaw, segs["seg_stop"], clip.fps)
        per_clip.append(segs)
    present = [s for s in per_clip if s]
    seg = {key: np.concatenate([s[key] for s in present]) for key in present[0]}
    n = len(seg["seg_start"])
    seg_index = np.concatenate([np.arange(len(s["seg_start"])) for s in present])
    # natural successors: the next segment of the same clip that starts where this one stops
    nxt = np.full(n, -1, dtype=np.int64)
    same_clip = seg["seg_clip"][1:] == seg["seg_clip"][:-1]
    joined = same_clip & (seg["seg_start"][1:] == seg["seg_stop"][:-1])
    nxt[:-1][joined] = np.arange(1, n)[joined]
    # the mirror of segment i: same frames in clip + k (``cut_points``)
    key = {(int(c), int(a)): i for i, (c, a) in enumerate(zip(seg["seg_clip"], seg["seg_start"]))}
    twin = np.array([key.get(((int(c) + k) % (2 * k), int(a)), -1)
                     for c, a in zip(seg["seg_clip"], seg["seg_start"])], dtype=np.int64)
    edges = link_segments(seg["_start_features"], seg["_stop_features"], seg["seg_clip"], seg_index,
                          seg["seg_feet_start"], seg["seg_feet_stop"])
    seg["seg_start_pose"] = seg.pop("_start_features").astype(np.float16)
    seg["seg_stop_pose"] = seg.pop("_stop_features").astype(np.float16)
    seg.update(seg_next=nxt, seg_twin=twin)
    minutes = sum(c.seconds for c in clips) / 60
    meta = {**_SETTINGS, "source_hash": digest, "clips": k, "excluded": list(exclude), "minutes": round(minutes, 2),
            "segments": n, "edges": int(len(edges[1])), "contact_names": list(FOOT_CONTACT_NAMES),
            "styles": list(STYLES), "credit": "The data used in this project was obtained from mocap.cs.cmu.edu. "
            "The database was created with funding from NSF EIA-0196217."}
    save_library(out, clips, names, styles, seg, edges, meta)
    log.info("library %s: %d clips (%.1f min, x2 mirrored), %d segments, %d edges in %.1f s",
             out, k, minutes, n, len(edges[1]), time.monotonic() - t0)
    return out


def run(args: argparse.Namespace) -> int:
    out = build_library(args.mocap, args.out, args.force, exclude=tuple(getattr(args, "exclude", None) or ()))
    meta = read_meta(out)
    print(f"library {out}: {meta['clips']} clips, {meta['minutes']} min (x2 mirrored), "
          f"{meta['segments']} segments, {meta['edges']} transitions")
    return 0
