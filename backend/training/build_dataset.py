"""Write the procedural training set: dance clips paired with the music they follow.

Why a folder of pairs: training (``backend.training.train``) reads a dataset folder in
our npz layout, pairing ``name.npz`` (a ``MotionClip``) with ``name.wav`` by stem, and
computes the music features from the wav itself. So every clip here is written with
exactly the audio its dance was timed to.

Two sources:

* synthesised songs (``synth_music``): a style drawn uniformly, a tempo within its
  range, true beats; one dance each;
* excerpts of real songs (default: the four MIT-licensed Sectoid songs in
  ``shared/data/music/sectoid``): several excerpts per song at spread-out offsets,
  several dance variations per excerpt. Their beats come from the same tracker the
  music features use, run on the excerpt, so the dance lands on the beats the model
  is shown. The songs' licence notice is copied next to them.

Each clip gets its own random stream, seeded from (seed, source, index), so a build is
reproducible whatever the number of worker processes.

Usage::

    python -m backend.training.build_dataset OUT --synth 300 --seconds 12
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import soundfile as sf

from backend.training.procedural import DancePlan, ProceduralError, describe_music, procedural_dance_with_plan
from backend.training.synth_music import STYLES, synthesize
from backend.errors import InputError

SAMPLE_RATE: int = 22050
AUDIO_SUFFIXES: tuple[str, ...] = (".wav", ".ogg", ".flac", ".mp3")
LICENCE_NAMES: tuple[str, ...] = ("COPYRIGHT", "LICENSE", "LICENCE", "COPYING")
DEFAULT_REAL_MUSIC: Path = Path(__file__).resolve().parents[3] / "shared" / "data" / "music" / "sectoid"
MANIFEST: str = "procedural_manifest.json"


class DatasetBuildError(InputError):
    """A build request that cannot be carried out; ``code`` is stable.

    code is ``"bad_count"``, ``"bad_duration"``, ``"no_real_music"`` or ``"song_too_short"``.
    """


def _plan_summary(plan: DancePlan) -> dict:
    return {"bpm": round(plan.bpm, 2), "half_time": plan.half_time,
            "moves": [[p.lower, p.upper] for p in plan.phrases]}


def _write_pair(out_dir: Path, name: str, clip, samples: np.ndarray) -> None:
    clip.save_npz(out_dir / f"{name}.npz")
    sf.write(out_dir / f"{name}.wav", samples, SAMPLE_RATE, subtype="PCM_16")


def _synth_clip(out_dir: Path, index: int, seconds: float, seed: int) -> list[dict]:
    """One synthesised song and its dance."""
    rng = np.random.default_rng([seed, 0, index])
    style = STYLES[list(STYLES)[int(rng.integers(len(STYLES)))]]
    bpm = float(rng.uniform(*style.bpm))
    song = synthesize(bpm, seconds, rng, SAMPLE_RATE, style=style.name)
    music = describe_music(song.samples, SAMPLE_RATE, song.beat_times, song.beats_per_bar, downbeat_index=0)
    clip, plan = procedural_dance_with_plan(song.beat_times, seconds, music, rng)
    name = f"synth_{index:04d}_{style.name}_{int(round(bpm))}bpm"
    _write_pair(out_dir, name, clip, song.samples)
    return [{"name": name, "source": "synth", "style": style.name, "song_bpm": round(bpm, 2),
             "sections": [s for _, s in song.sections], **_plan_summary(plan)}]


def _excerpt_offsets(duration: float, seconds: float, count: int, rng: np.random.Generator) -> list[int]:
    """Whole-second offsets spread over the song (skipping the first and last 3%)."""
    first, last = 0.03 * duration, 0.97 * duration - seconds
    if last < first:
        first, last = 0.0, duration - seconds
    if last < 0:
        return []
    centres = np.linspace(first, last, count) + rng.uniform(-1.0, 1.0, count)
    return sorted({int(np.clip(np.floor(c), 0, np.floor(duration - seconds))) for c in centres})


def _real_clips(out_dir: Path, song_index: int, path: str, song_name: str, seconds: float,
                excerpts: int, variations: int, seed: int) -> list[dict]:
    """Excerpts of one real song, each danced ``variations`` times."""
    from backend.music.audio import decode_audio

    rng = np.random.default_rng([seed, 1, song_index])
    samples = decode_audio(path, SAMPLE_RATE)
    duration = len(samples) / SAMPLE_RATE
    rows = []
    for offset in _excerpt_offsets(duration, seconds, excerpts, rng):
        start = int(offset * SAMPLE_RATE)
        excerpt = samples[start:start + int(round(seconds * SAMPLE_RATE))]
        music = describe_music(excerpt, SAMPLE_RATE)
        if len(music.beat_times) < 4:
            continue  # no steady beat here (a pause in the song): nothing to dance to
        for k in range(variations):
            clip_rng = np.random.default_rng([seed, 2, song_index, offset, k])
            try:
                clip, plan = procedural_dance_with_plan(music.beat_times, seconds, music, clip_rng)
            except ProceduralError:  # beats the dance cannot use (e.g. a tempo far out of range)
                break
            name = f"real_{song_name}_{offset:03d}s_v{k}"
            _write_pair(out_dir, name, clip, excerpt)
            rows.append({"name": name, "source": "real", "song": song_name, "offset_seconds": offset,
                         "downbeat_index": music.downbeat_index, **_plan_summary(plan)})
    return rows


def find_songs(real_music_dir: Path) -> list[tuple[str, Path]]:
    """Audio files under a folder, named by their folder when they are called ``mix.*``."""
    files = sorted(p for p in Path(real_music_dir).rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
    songs = []
    for p in files:
        name = p.parent.name if p.stem == "mix" else p.stem
        songs.append(("".join(c if c.isalnum() else "_" for c in name.lower()), p))
    return songs


def _run_task(task: tuple) -> list[dict]:
    """Worker entry point: one synthesised clip or one real song's clips."""
    import torch

    torch.set_num_threads(1)
    kind, *args = task
    return _synth_clip(*args) if kind == "synth" else _real_clips(*args)


def build_procedural_dataset(out_dir: Path, num_synth_songs: int, clip_seconds: float,
                             real_music_dir: Path | None, seed: int, *, excerpts_per_song: int = 6,
                             variations: int = 3, workers: int | None = None, progress: bool = False) -> Path:
    """Write ``num_synth_songs`` synthesised clips plus real-song excerpts into ``out_dir``.

    Returns ``out_dir``. workers None uses every CPU core (one process for small builds);
    1 runs in this process.
    """
    if num_synth_songs < 0 or excerpts_per_song < 0 or variations < 0:
        raise DatasetBuildError("bad_count", "song, excerpt and variation counts must be >= 0")
    if not (np.isfinite(clip_seconds) and 2.0 <= clip_seconds <= 120.0):
        raise DatasetBuildError("bad_duration", f"clip_seconds must be 2..120, got {clip_seconds!r}")
    out_dir = Path(out_dir)
    songs: list[tuple[str, Path]] = []
    if real_music_dir is not None:
        if not Path(real_music_dir).is_dir():
            raise DatasetBuildError("no_real_music", f"real music folder {real_music_dir} does not exist")
        songs = find_songs(Path(real_music_dir))
        if not songs:
            raise DatasetBuildError("no_real_music", f"no {'/'.join(AUDIO_SUFFIXES)} files under {real_music_dir}")
    out_dir.mkdir(parents=True, exist_ok=True)

    # Real songs first: each is one long task, so they start before the many short ones.
    tasks: list[tuple] = [("real", out_dir, i, str(p), name, clip_seconds, excerpts_per_song, variations, seed)
                          for i, (name, p) in enumerate(songs) if excerpts_per_song and variations]
    tasks += [("synth", out_dir, i, clip_seconds, seed) for i in range(num_synth_songs)]
    if workers is None:  # every core, but a small build is quicker without starting processes
        workers = min(os.cpu_count() or 1, len(tasks) // 8 + 1)
    workers = max(1, workers)
    started = time.time()
    rows: list[dict] = []
    if workers == 1 or len(tasks) <= 1:
        for k, task in enumerate(tasks):
            rows += _run_task(task)
            _report(progress, k + 1, len(tasks), started)
    else:
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
            for k, result in enumerate(pool.map(_run_task, tasks, chunksize=1)):
                rows += result
                _report(progress, k + 1, len(tasks), started)

    if songs:
        for licence in sorted(p for p in Path(real_music_dir).iterdir() if p.name.upper() in LICENCE_NAMES):
            shutil.copyfile(licence, out_dir / f"{licence.name}_{Path(real_music_dir).name}.txt")
    manifest = {"seed": seed, "clip_seconds": clip_seconds, "num_synth_songs": num_synth_songs,
                "real_music": [str(p) for _, p in songs], "excerpts_per_song": excerpts_per_song,
                "variations": variations, "build_seconds": round(time.time() - started, 1), "clips": rows}
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return out_dir


def _report(progress: bool, done: int, total: int, started: float) -> None:
    if progress:
        print(f"\r{done}/{total} tasks, {time.time() - started:.0f} s", end="" if done < total else "\n",
              file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backend.training.build_dataset",
                                     description="Write the procedural dance training set (npz + wav pairs).")
    parser.add_argument("out", type=Path, help="output folder")
    parser.add_argument("--synth", type=int, default=300, help="number of synthesised songs (one clip each)")
    parser.add_argument("--seconds", type=float, default=12.0, help="length of every clip")
    parser.add_argument("--real", type=Path, default=DEFAULT_REAL_MUSIC,
                        help="folder of real songs to excerpt (default: shared/data/music/sectoid)")
    parser.add_argument("--no-real", action="store_true", help="synthesised songs only")
    parser.add_argument("--excerpts", type=int, default=6, help="excerpts per real song")
    parser.add_argument("--variations", type=int, default=3, help="dances per real excerpt")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    args = parser.parse_args(argv)
    real = None if args.no_real else args.real
    if real is not None and not real.is_dir():
        print(f"note: {real} not found, building from synthesised songs only", file=sys.stderr)
        real = None
    try:
        out = build_procedural_dataset(args.out, args.synth, args.seconds, real, args.seed,
                                       excerpts_per_song=args.excerpts, variations=args.variations,
                                       workers=args.workers, progress=True)
    except DatasetBuildError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    manifest = json.loads((out / MANIFEST).read_text())
    print(f"wrote {len(manifest['clips'])} clips to {out} in {manifest['build_seconds']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
