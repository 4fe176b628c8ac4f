"""Write the whole training set: real dance capture paired with music, graph dances, procedural dance.

The CMU dance capture has no music. Every training trial of the motion library (and
its left-right mirror) is paired with music whose beats fall on the clip's own motion
beats (``backend.metrics.beats.motion_beats``, the minima of mean joint speed), three
ways, and the procedural set (``build_dataset``) is mixed in:

* ``beat_synth`` -- a song synthesised on the clip's own beat grid, tempo drift included
  (``synth_music.synthesize_on_beats``). The grid is the clip's motion beats, cleaned
  to something a song can play (``beat_grid``: beats closer than ``MIN_BEAT_S`` merged,
  gaps over 1.6 x the median spacing filled with evenly spaced beats).
* ``warp`` -- the clip time-warped onto the beats the music tracker finds in the MIT
  Sectoid songs: clip beat i is put on a song beat, piecewise linearly, and the local
  playback speed stays within ``MAX_WARP`` (+-20 %) everywhere (``warp_to_beats``);
  runs where no song beat fits end, and runs shorter than ``MIN_PIECE_S`` are dropped.
* ``graph`` -- the ``graph`` model's dances (real capture cut at beats and re-joined) to
  synthesised songs and to excerpts of the Sectoid songs, as augmentation.
* ``procedural`` -- the procedural set (``build_dataset.build_procedural_dataset``).

Held-out motion: the trials in ``HELD_OUT_TRIALS`` (with their mirrors) are in none of
it. The builder makes its own library without them (``choreo library build --exclude``),
pairs and augments from that library only, and writes the held-out trials as npz clips
into a reference folder for ``choreo eval --reference``.

Usage::

    python -m backend.training.real_dataset OUT [--heldout DIR] [--library PATH] ...

Everything is in ``OUT/real_manifest.json``: per part its clips and minutes, per clip
its source trial, piece, song and warp. docs/real_data.md describes the set.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from backend.errors import InputError
from backend.library.library import FOOT_CONTACT_NAMES, MotionLibrary, load_library
from backend.library.sources import DEFAULT_MOCAP_DIR, STYLES as LIBRARY_STYLES
from backend.metrics.beats import motion_beats
from backend.motion import rotations as rot
from backend.motion.clip import MotionClip
from backend.motion.contacts import grounded_clip
from backend.motion.kinematics import forward_kinematics_np
from backend.motion.skeleton import FOOT_CONTACT_JOINTS
from backend.training.build_dataset import (
    DEFAULT_REAL_MUSIC, LICENCE_NAMES, MANIFEST as PROCEDURAL_MANIFEST, SAMPLE_RATE, build_procedural_dataset,
    find_songs,
)
from backend.training.synth_music import MAX_BEAT_S, MIN_BEAT_S, STYLES as MUSIC_STYLES, synthesize, synthesize_on_beats

log = logging.getLogger("choreo.real_dataset")

HELD_OUT_TRIALS: tuple[str, ...] = ("05_20", "49_22", "60_10", "61_10", "85_04")
"""Real capture kept out of training (with their mirrors): one trial of each style's subject --
modern/ballet 05_20 (9.1 s), slow modern 49_22 (10.7 s), the salsa couple of one take, lead
60_10 and follow 61_10 (19.8 s each; partners dance the same steps, so both go), breakdance
85_04 (18.9 s). 78 s in all. Held-out, so FID_k/FID_g against them (``choreo eval --reference``)
measure real motion no model has seen."""

MAX_WARP = 0.2
"""A warped clip plays at 0.8-1.2 x its captured speed everywhere."""
MIN_PIECE_S = 6.0
"""Shortest clip written (the longest training window is 5 s)."""
FPS = 30.0
CREDIT_CMU = ("The data used in this project was obtained from mocap.cs.cmu.edu. "
              "The database was created with funding from NSF EIA-0196217.")
MANIFEST = "real_manifest.json"


class RealDatasetError(InputError):
    """A build that cannot be made; ``code`` is ``"no_mocap"``, ``"no_real_music"`` or ``"bad_count"``."""


# ---------------------------------------------------------------- beat grids and warps


def beat_grid(beat_frames: np.ndarray, fps: float = FPS) -> np.ndarray:
    """Seconds of a playable beat grid from a clip's motion beats (frame indices).

    Motion beats closer than ``MIN_BEAT_S`` (220 BPM) are merged (the later one dropped);
    a gap longer than 1.6 x the median spacing, or than ``MAX_BEAT_S``, is filled with
    evenly spaced beats, so the song keeps playing through a held pose. Every other beat
    is a motion beat.
    """
    times = np.asarray(beat_frames, dtype=np.float64) / fps
    kept: list[float] = []
    for t in times:
        if not kept or t - kept[-1] >= MIN_BEAT_S:
            kept.append(float(t))
    if len(kept) < 2:
        return np.array(kept)
    kept_arr = np.array(kept)
    median = float(np.median(np.diff(kept_arr)))
    out = [kept_arr[0]]
    for a, b in zip(kept_arr[:-1], kept_arr[1:]):
        gap = b - a
        if gap > 1.6 * median or gap > MAX_BEAT_S:
            parts = max(2, int(round(gap / median)), int(np.ceil(gap / MAX_BEAT_S)))
            out += list(a + gap * np.arange(1, parts) / parts)
        out.append(b)
    return np.array(out)


STEPS: tuple[tuple[int, int], ...] = ((1, 1), (1, 2), (2, 1), (2, 2), (2, 3), (3, 2), (3, 3))
"""(clip intervals, song intervals) one warp step may join; the motion beats passed over
inside a step stay where the even warp puts them, near but not on a song beat."""


def warp_to_beats(clip_beats: np.ndarray, song_beats: np.ndarray, first_song_beat: int,
                  max_warp: float = MAX_WARP) -> list[tuple[np.ndarray, np.ndarray]]:
    """Runs of (clip times, song times) anchor pairs: clip beats put on song beats.

    Walking both grids from ``clip_beats[0]`` on ``song_beats[first_song_beat]``, each step
    takes up to three clip intervals onto up to three song intervals (``STEPS``: one onto
    one, or a motion beat the dancer skipped or added, or a quick and a slow beat onto
    two even ones), whichever keeps the playback speed (clip seconds per song second)
    within 1 +- ``max_warp`` and, of those, is nearest 1 with the fewest beats passed
    over (cost |log speed| + 0.05 per extra interval). When none does, the
    run ends and a new one starts at the next clip beat, on the song beat nearest where
    the music has got to. Runs of fewer than two anchors are dropped.
    """
    c, s = np.asarray(clip_beats, np.float64), np.asarray(song_beats, np.float64)
    runs: list[tuple[np.ndarray, np.ndarray]] = []
    i, j = 0, int(first_song_beat)
    run = [(c[0], s[j])] if j < len(s) else []
    while i < len(c) - 1 and j < len(s) - 1:
        best = None
        for di, dj in STEPS:
            if i + di >= len(c) or j + dj >= len(s):
                continue
            speed = (c[i + di] - c[i]) / (s[j + dj] - s[j])
            if abs(speed - 1.0) <= max_warp + 1e-9:
                cost = abs(np.log(speed)) + 0.05 * (di + dj - 2)
                if best is None or cost < best[0]:
                    best = (cost, di, dj)
        if best is None:  # nothing fits: close the run, restart one clip beat on
            if len(run) >= 2:
                runs.append((np.array([a for a, _ in run]), np.array([b for _, b in run])))
            target = s[j] + (c[i + 1] - c[i])
            i += 1
            j = int(np.argmin(np.abs(s - target)))
            run = [(c[i], s[j])]
            continue
        _, di, dj = best
        i, j = i + di, j + dj
        run.append((c[i], s[j]))
    if len(run) >= 2:
        runs.append((np.array([a for a, _ in run]), np.array([b for _, b in run])))
    return runs


def sample_motion(rotations: np.ndarray, root: np.ndarray, where: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rotations (slerp) and root (linear) at fractional frame indices ``where``."""
    n = len(rotations)
    where = np.clip(np.asarray(where, np.float64), 0, n - 1)
    i0 = np.floor(where).astype(int)
    i1 = np.minimum(i0 + 1, n - 1)
    t = (where - i0)
    q0, q1 = rotations[i0].astype(np.float64), rotations[i1].astype(np.float64)
    dot = (q0 * q1).sum(-1, keepdims=True)
    q1 = np.where(dot < 0, -q1, q1)
    theta = np.arccos(np.abs(dot).clip(0.0, 1.0))
    sin = np.sin(theta)
    tq = t[:, None, None]
    small = sin < 1e-6
    safe = np.where(small, 1.0, sin)
    q = np.where(small, 1.0 - tq, np.sin((1.0 - tq) * theta) / safe) * q0 + \
        np.where(small, tq, np.sin(tq * theta) / safe) * q1
    q /= np.linalg.norm(q, axis=-1, keepdims=True)
    r = root[i0] * (1.0 - t[:, None]) + root[i1] * t[:, None]
    return q.astype(np.float32), r.astype(np.float32)


def warped_clip(clip: MotionClip, clip_times: np.ndarray, song_times: np.ndarray) -> tuple[MotionClip, np.ndarray]:
    """The clip played on song time: frame k at song time ``song_times[0] + k / fps``.

    Returns the clip (contacts relabelled by the project's rule) and, per frame, the clip
    time it shows.
    """
    frames = int(np.floor((song_times[-1] - song_times[0]) * clip.fps)) + 1
    t_song = song_times[0] + np.arange(frames) / clip.fps
    t_clip = np.interp(t_song, song_times, clip_times)
    q, r = sample_motion(clip.rotations, clip.root_translation, t_clip * clip.fps)
    return grounded_clip(q, r, clip.fps, FOOT_CONTACT_JOINTS, place_on_floor=False), t_clip


# ---------------------------------------------------------------- the library's clips


@dataclass
class Piece:
    """A stretch of one library clip (original or mirror) cut for training."""

    name: str  # e.g. "60_11_mirror_p1"
    trial: str
    style: str
    clip: MotionClip


def library_pieces(library: MotionLibrary, seconds: float) -> list[Piece]:
    """Every clip of the library (mirrors included) cut into pieces of at most ``seconds``.

    A clip is cut into equal pieces no longer than ``seconds``; a clip shorter than
    ``MIN_PIECE_S`` gives none.
    """
    pieces = []
    for c, name in enumerate(library.clip_names):
        lo, hi = library.clip_range(c)
        n = hi - lo
        if n < MIN_PIECE_S * library.fps:
            continue
        count = int(np.ceil(n / (seconds * library.fps)))
        bounds = np.linspace(lo, hi, count + 1).round().astype(int)
        trial = name.removesuffix("_mirror")
        style = LIBRARY_STYLES[int(library.clip_styles[c])]
        for k, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
            clip = MotionClip(library.rotations[a:b].copy(), library.root[a:b].copy(), fps=library.fps,
                              contacts=library.contacts[a:b].copy(), contact_names=FOOT_CONTACT_NAMES)
            pieces.append(Piece(f"{name}_p{k}", trial, style, clip))
    return pieces


def positions_of(clip: MotionClip) -> np.ndarray:
    positions, _ = forward_kinematics_np(rot.np_.quaternion_to_matrix(clip.rotations.astype(np.float64)),
                                         clip.root_translation.astype(np.float64))
    return positions


# ---------------------------------------------------------------- writing


def _write(out_dir: Path, name: str, clip: MotionClip, samples: np.ndarray) -> float:
    """Write a pair; returns its minutes (the motion's length, the audio cut to it)."""
    n = int(round(clip.num_frames / clip.fps * SAMPLE_RATE))
    audio = np.zeros(n, np.float32)
    audio[:min(n, len(samples))] = samples[:n]
    clip.save_npz(out_dir / f"{name}.npz")
    sf.write(out_dir / f"{name}.wav", audio, SAMPLE_RATE, subtype="PCM_16")
    return clip.num_frames / clip.fps / 60.0


def _beat_synth(out_dir: Path, piece: Piece, rng: np.random.Generator) -> dict | None:
    beats = beat_grid(motion_beats(positions_of(piece.clip)), piece.clip.fps)
    if len(beats) < 4:
        return None
    song = synthesize_on_beats(beats, piece.clip.seconds, rng, SAMPLE_RATE)
    name = f"cmu_{piece.name}_style-{piece.style}_beatsynth"
    minutes = _write(out_dir, name, piece.clip, song.samples)
    return {"name": name, "part": "beat_synth", "trial": piece.trial, "piece": piece.name,
            "music_style": song.style, "bpm": round(song.bpm, 1), "beats": len(beats),
            "beat_spacing_cv": round(float(np.std(np.diff(beats)) / np.mean(np.diff(beats))), 3),
            "minutes": minutes}


def _warps(out_dir: Path, piece: Piece, song: "_Song", rng: np.random.Generator, seconds: float) -> list[dict]:
    clip_beats = beat_grid(motion_beats(positions_of(piece.clip)), piece.clip.fps)
    if len(clip_beats) < 4 or len(song.beats) < 8:
        return []
    # the song's beat level nearest the clip's tempo: its beats, every other one, or halves
    levels = {"beat": song.beats, "half": song.beats[::2],
              "double": np.sort(np.concatenate([song.beats, (song.beats[1:] + song.beats[:-1]) / 2]))}
    clip_step = float(np.median(np.diff(clip_beats)))
    level = min(levels, key=lambda k: abs(np.log(np.median(np.diff(levels[k])) / clip_step)))
    grid = levels[level]
    last_start = int(np.searchsorted(grid, grid[-1] - seconds))
    start = int(rng.integers(0, max(1, last_start)))
    rows = []
    for k, (clip_t, song_t) in enumerate(warp_to_beats(clip_beats, grid, start)):
        if song_t[-1] - song_t[0] < MIN_PIECE_S:
            continue
        warped, _ = warped_clip(piece.clip, clip_t, song_t)
        a = int(round(song_t[0] * SAMPLE_RATE))
        name = f"cmu_{piece.name}_style-{piece.style}_warp_{song.name}_{k}"
        minutes = _write(out_dir, name, warped, song.samples[a:])
        speed = np.diff(clip_t) / np.diff(song_t)
        rows.append({"name": name, "part": "warp", "trial": piece.trial, "piece": piece.name, "song": song.name,
                     "song_seconds": round(float(song_t[0]), 2), "beat_level": level, "anchors": len(clip_t),
                     "speed_min": round(float(speed.min()), 3), "speed_max": round(float(speed.max()), 3),
                     "minutes": minutes})
    return rows


@dataclass
class _Song:
    name: str
    samples: np.ndarray  # at SAMPLE_RATE
    beats: np.ndarray  # seconds, as the music features' tracker hears them


def _load_song(name: str, path: Path) -> _Song:
    from backend.music.audio import decode_audio
    from backend.music.features import FEATURE_SAMPLE_RATE, analyse_music

    beats = analyse_music(decode_audio(path, FEATURE_SAMPLE_RATE)).beat_times
    return _Song(name, decode_audio(path, SAMPLE_RATE), np.asarray(beats, np.float64))


def _graph_dance(generator, samples: np.ndarray, seed: int, options: dict) -> MotionClip:
    """The graph model's dance to ``samples`` (at SAMPLE_RATE), features made as training makes them."""
    import tempfile

    from backend.models.base import GenerationRequest
    from backend.music.audio import decode_audio
    from backend.music.features import FEATURE_SAMPLE_RATE, analyse_music

    with tempfile.TemporaryDirectory() as tmp:  # the 16-bit wav training will decode
        wav = Path(tmp) / "song.wav"
        sf.write(wav, samples, SAMPLE_RATE, subtype="PCM_16")
        features = analyse_music(decode_audio(wav, FEATURE_SAMPLE_RATE)).features
    chunks = list(generator.generate(GenerationRequest(features, seed, options), lambda: False, lambda *a: None))
    q = np.concatenate([c.rotations for c in chunks])
    r = np.concatenate([c.root_translation for c in chunks])
    return grounded_clip(q, r, FPS, FOOT_CONTACT_JOINTS, place_on_floor=False)


def write_held_out(library_path: Path, trials: tuple[str, ...], reference_dir: Path) -> float:
    """The held-out trials and their mirrors as npz clips in ``reference_dir``; returns minutes."""
    full = load_library(library_path)
    reference_dir.mkdir(parents=True, exist_ok=True)
    minutes = 0.0
    for c, name in enumerate(full.clip_names):
        if name.removesuffix("_mirror") not in trials:
            continue
        lo, hi = full.clip_range(c)
        MotionClip(full.rotations[lo:hi], full.root[lo:hi], fps=full.fps, contacts=full.contacts[lo:hi],
                   contact_names=FOOT_CONTACT_NAMES).save_npz(reference_dir / f"{name}.npz")
        minutes += (hi - lo) / full.fps / 60.0
    (reference_dir / "CREDIT.txt").write_text(
        f"Held-out CMU dance capture (not in training): {', '.join(trials)} and their mirrors.\n{CREDIT_CMU}\n")
    return minutes


# ---------------------------------------------------------------- the build


def build_real_dataset(
    out_dir: Path, *, heldout_dir: Path | None = None, library_path: Path | None = None,
    mocap_dir: Path = DEFAULT_MOCAP_DIR, music_dir: Path | None = DEFAULT_REAL_MUSIC,
    held_out: tuple[str, ...] = HELD_OUT_TRIALS, trials: tuple[str, ...] | None = None,
    clip_seconds: float = 12.0, warps_per_piece: int = 1, graph_synth: int = 100, graph_excerpts: int = 6,
    procedural_synth: int = 100, procedural_excerpts: int = 3, procedural_variations: int = 2,
    seed: int = 0, workers: int | None = None, progress: bool = False,
) -> dict:
    """Write the training set into ``out_dir`` and the held-out reference into ``heldout_dir``.

    ``trials``: the capture trials to use (file stems), default every one beside the
    held-out ones; a held-out trial listed here is still left out of training.
    ``library_path``: where the library without the held-out trials is built (cached);
    default ``<out_dir>_library.npz``. ``heldout_dir`` default ``<out_dir>_heldout``.
    Returns the manifest (also written to ``out_dir/real_manifest.json``).
    """
    from backend.library.sources import source_files

    if min(warps_per_piece, graph_synth, graph_excerpts, procedural_synth, procedural_excerpts,
           procedural_variations) < 0:
        raise RealDatasetError("bad_count", "counts must be >= 0")
    out_dir = Path(out_dir)
    heldout_dir = Path(heldout_dir) if heldout_dir else out_dir.with_name(out_dir.name + "_heldout")
    library_path = Path(library_path) if library_path else out_dir.with_name(out_dir.name + "_library.npz")
    songs_found = find_songs(Path(music_dir)) if music_dir is not None and Path(music_dir).is_dir() else []
    if music_dir is not None and not songs_found:
        raise RealDatasetError("no_real_music", f"no songs under {music_dir}")
    files = source_files(mocap_dir)
    wanted = set(trials) | set(held_out) if trials is not None else None
    if wanted is not None:
        files = [f for f in files if f.stem in wanted]
    out_dir.mkdir(parents=True, exist_ok=True)
    report = _Progress(progress, time.time())

    library, present_held_out, heldout_minutes = _libraries(mocap_dir, files, held_out, library_path, heldout_dir)
    songs = [_load_song(name, path) for name, path in songs_found]
    rows = _capture_rows(out_dir, library, songs, clip_seconds, warps_per_piece, seed, report)
    rows += _graph_rows(out_dir, library, songs, clip_seconds, graph_synth, graph_excerpts, seed, report)
    if procedural_synth or (songs_found and procedural_excerpts and procedural_variations):
        build_procedural_dataset(out_dir, procedural_synth, clip_seconds, Path(music_dir) if songs_found else None,
                                 seed, excerpts_per_song=procedural_excerpts, variations=procedural_variations,
                                 workers=workers, progress=progress)
        procedural = json.loads((out_dir / PROCEDURAL_MANIFEST).read_text())["clips"]
        rows += [{**row, "part": "procedural", "minutes": clip_seconds / 60.0} for row in procedural]
    if songs_found:
        for licence in sorted(p for p in Path(music_dir).iterdir() if p.name.upper() in LICENCE_NAMES):
            shutil.copyfile(licence, out_dir / f"{licence.name}_{Path(music_dir).name}.txt")
    (out_dir / "CREDIT_cmu.txt").write_text(CREDIT_CMU + "\n")

    manifest = {
        "seed": seed, "clip_seconds": clip_seconds, "held_out": list(present_held_out),
        "held_out_minutes": round(heldout_minutes, 3), "heldout_dir": str(heldout_dir),
        "library": str(library_path), "library_trials": [n for n in library.clip_names if not n.endswith("_mirror")],
        "library_minutes": library.meta.get("minutes"), "songs": [n for n, _ in songs_found],
        **_part_totals(rows), "build_seconds": round(time.time() - report.started, 1), "credit": CREDIT_CMU,
        "clips": rows,
    }
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return manifest


def _libraries(mocap_dir: Path, files: list[Path], held_out: tuple[str, ...], library_path: Path,
               heldout_dir: Path) -> tuple[MotionLibrary, tuple[str, ...], float]:
    """The training library (held-out trials excluded), built or read from its cache, and
    the held-out trials written as the reference; returns the library, the held-out
    trials present among ``files`` and their minutes."""
    from backend.library.build import build_library

    present_held_out = tuple(t for t in held_out if t in {f.stem for f in files})
    build_library(mocap_dir, library_path, files=files, exclude=present_held_out)
    library = load_library(library_path)
    assert not set(library.clip_names) & {t for t in present_held_out}
    heldout_minutes = 0.0
    if present_held_out:
        # the held-out trials imported exactly as the library imports them (floor, contacts), cached
        held_path = library_path.with_name(library_path.stem + "_heldout.npz")
        build_library(mocap_dir, held_path, files=[f for f in files if f.stem in present_held_out])
        heldout_minutes = write_held_out(held_path, present_held_out, heldout_dir)
    return library, present_held_out, heldout_minutes


def _capture_rows(out_dir: Path, library: MotionLibrary, songs: list[_Song], clip_seconds: float,
                  warps_per_piece: int, seed: int, report: _Progress) -> list[dict]:
    """The real capture, piece by piece: a song on its own beat grid, and warps onto the songs."""
    rows: list[dict] = []
    pieces = library_pieces(library, clip_seconds)
    for k, piece in enumerate(pieces):
        rng = np.random.default_rng([seed, 10, k])
        row = _beat_synth(out_dir, piece, rng)
        if row:
            rows.append(row)
        if songs:
            for _ in range(warps_per_piece):
                song = songs[int(rng.integers(len(songs)))]
                rows += _warps(out_dir, piece, song, rng, clip_seconds)
        report("real capture", k + 1, len(pieces))
    return rows


def _graph_rows(out_dir: Path, library: MotionLibrary, songs: list[_Song], clip_seconds: float,
                graph_synth: int, graph_excerpts: int, seed: int, report: _Progress) -> list[dict]:
    """The graph model's dances from ``library``: to synthesised songs, then to excerpts of ``songs``."""
    from backend.models.graph_generator import GraphGenerator

    rows: list[dict] = []
    graph = GraphGenerator(library)
    for k in range(graph_synth):
        rng = np.random.default_rng([seed, 11, k])
        style = list(MUSIC_STYLES)[int(rng.integers(len(MUSIC_STYLES)))]
        song = synthesize(float(rng.uniform(*MUSIC_STYLES[style].bpm)), clip_seconds, rng, SAMPLE_RATE, style=style)
        clip = _graph_dance(graph, song.samples, int(rng.integers(2**31)), {})
        name = f"graph_synth_{k:04d}_{style}_{int(round(song.bpm))}bpm_style-graph"
        rows.append({"name": name, "part": "graph", "music": "synth", "music_style": style,
                     "bpm": round(song.bpm, 1), "minutes": _write(out_dir, name, clip, song.samples)})
        report("graph (synth)", k + 1, graph_synth)
    for s, song in enumerate(songs):
        for k in range(graph_excerpts):
            rng = np.random.default_rng([seed, 12, s, k])
            duration = len(song.samples) / SAMPLE_RATE
            offset = float(rng.uniform(0.03 * duration, max(0.03 * duration, 0.97 * duration - clip_seconds)))
            a = int(offset * SAMPLE_RATE)
            excerpt = song.samples[a:a + int(clip_seconds * SAMPLE_RATE)]
            clip = _graph_dance(graph, excerpt, int(rng.integers(2**31)), {})
            name = f"graph_{song.name}_{int(offset):03d}s_style-graph"
            rows.append({"name": name, "part": "graph", "music": song.name, "offset_seconds": round(offset, 1),
                         "minutes": _write(out_dir, name, clip, excerpt)})
        report("graph (songs)", s + 1, len(songs))
    return rows


_PARTS = ("beat_synth", "warp", "graph", "procedural")


def _part_totals(rows: list[dict]) -> dict:
    """The manifest's counts, minutes and share of minutes per part."""
    minutes = {p: round(sum(r["minutes"] for r in rows if r["part"] == p), 2) for p in _PARTS}
    total = sum(minutes.values()) or 1.0
    return {"counts": {p: sum(r["part"] == p for r in rows) for p in _PARTS}, "minutes": minutes,
            "share": {p: round(m / total, 3) for p, m in minutes.items()}}


@dataclass(frozen=True)
class _Progress:
    """Progress lines on stderr while ``show``; ``started`` also times the build."""

    show: bool
    started: float

    def __call__(self, what: str, done: int, total: int) -> None:
        if self.show:
            print(f"\r{what}: {done}/{total}, {time.time() - self.started:.0f} s", end="" if done < total else "\n",
                  file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m backend.training.real_dataset",
                                description="Write the whole training set: CMU dance paired with music "
                                            "(beat-grid songs, warps onto MIT songs), graph dances and the "
                                            "procedural set; the held-out trials into a reference folder.")
    p.add_argument("out", type=Path, help="output folder (the training set)")
    p.add_argument("--heldout", type=Path, default=None,
                   help="reference folder for the held-out trials (default OUT_heldout)")
    p.add_argument("--library", type=Path, default=None,
                   help="library built without the held-out trials (default OUT_library.npz, cached)")
    p.add_argument("--mocap", type=Path, default=DEFAULT_MOCAP_DIR, help="folder of CMU BVH files")
    p.add_argument("--music", type=Path, default=DEFAULT_REAL_MUSIC, help="folder of MIT songs (Sectoid)")
    p.add_argument("--trials", nargs="+", default=None, help="only these trials (default: all)")
    p.add_argument("--held-out", nargs="*", default=list(HELD_OUT_TRIALS), help="trials kept out of training")
    p.add_argument("--seconds", type=float, default=12.0, help="longest clip")
    p.add_argument("--warps", type=int, default=1, help="warps onto songs per piece of capture")
    p.add_argument("--graph-synth", type=int, default=100, help="graph dances to synthesised songs")
    p.add_argument("--graph-excerpts", type=int, default=6, help="graph dances per MIT song")
    p.add_argument("--procedural-synth", type=int, default=100, help="procedural dances to synthesised songs")
    p.add_argument("--procedural-excerpts", type=int, default=3, help="procedural excerpts per MIT song")
    p.add_argument("--procedural-variations", type=int, default=2, help="procedural dances per excerpt")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=None, help="processes for the procedural part")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    try:
        m = build_real_dataset(
            args.out, heldout_dir=args.heldout, library_path=args.library, mocap_dir=args.mocap,
            music_dir=args.music, held_out=tuple(args.held_out), trials=tuple(args.trials) if args.trials else None,
            clip_seconds=args.seconds, warps_per_piece=args.warps, graph_synth=args.graph_synth,
            graph_excerpts=args.graph_excerpts, procedural_synth=args.procedural_synth,
            procedural_excerpts=args.procedural_excerpts, procedural_variations=args.procedural_variations,
            seed=args.seed, workers=args.workers, progress=True)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {sum(m['counts'].values())} clips to {args.out} in {m['build_seconds']} s; minutes "
          + ", ".join(f"{k} {v} ({100 * m['share'][k]:.0f}%)" for k, v in m["minutes"].items())
          + f"; held out {m['held_out_minutes']} min ({', '.join(m['held_out'])}) in {m['heldout_dir']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
