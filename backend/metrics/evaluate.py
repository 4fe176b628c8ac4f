"""``choreo eval``: the field's metrics over a folder of dances, written as JSON and markdown.

Every metric is defined in its own module (docs/metrics.md says which paper each one
follows); this module only finds the dances and their songs, runs the metrics and
writes the results. It can also make the dances first: any registered generator
over a folder of songs, several seeds each, so that one command answers "did this
model get better?".

Which song belongs to which dance (``match_songs``):

* ``--music`` is one audio file: every dance is to that song;
* ``--music`` is a folder: a dance named ``<song>.npz`` or ``<song>_<anything>.npz``
  (also ``-`` or ``.`` after the song's name) belongs to the song file ``<song>.*``;
  the longest matching song name wins; an AIST++ sequence name
  (``gBR_sBM_cAll_d04_mBR0_ch01``) belongs to its music id (``mBR0``);
* a dance's frame 0 is the song's time 0.

Both sets, generated and reference, go through the same path: the clip at its own
rate (30 fps for ours, AIST++ taken at every 2nd frame by the importer) is resampled
to 60 fps Y-up for the AIST++ features, so the two sides differ only in their motion.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, TypeVar

import numpy as np

from backend.errors import InputError
from backend.metrics import aist_features, beats, distribution, physical, quality
from backend.metrics.basic import joint_positions
from backend.motion.clip import MotionClip

AUDIO_SUFFIXES: tuple[str, ...] = (".wav", ".ogg", ".flac", ".mp3")
SEPARATORS: tuple[str, ...] = ("_", "-", ".")

# The per-dance metrics, in the order of the tables: (key, label, format).
CLIP_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("seconds", "seconds", "{:.1f}"),
    ("pfc", "PFC ↓", "{:.3f}"),
    ("pbc", "PBC ↓", "{:.3f}"),
    ("beat_align_music", "BA music-avg ↑", "{:.3f}"),
    ("beat_align_motion", "BA motion-avg ↑", "{:.3f}"),
    ("beat_align_popdg", "BA POPDG ↑", "{:.3f}"),
    ("mm_align_2d", "2D-MM Align ↑", "{:.3f}"),
    ("foot_skating_ratio", "foot skating ↓", "{:.3f}"),
    ("jitter", "jitter m/s³ ↓", "{:.1f}"),
    ("frozen_fraction", "frozen ↓", "{:.3f}"),
    ("pose_spread", "pose spread m", "{:.3f}"),
    ("mean_joint_speed", "joint speed m/s", "{:.2f}"),
    ("jerk_per_speed", "jerk/speed ↓", "{:.0f}"),
    ("beat_align_margin", "BA margin ↑", "{:+.3f}"),
    ("toe_skating", "toe skating ↓", "{:.3f}"),
    ("sole_median", "sole median m", "{:.3f}"),
    ("penetration", "penetration m ↓", "{:.3f}"),
    ("freeze_ratio", "last/first 10 s speed", "{:.2f}"),
)
SET_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("fid_k", "FID_k ↓", "{:.2f}"),
    ("fid_g", "FID_g ↓", "{:.2f}"),
    ("div_k", "Div_k ↑", "{:.2f}"),
    ("div_g", "Div_g ↑", "{:.2f}"),
    ("seed_div_k", "seed Div_k ↑", "{:.2f}"),
)

T = TypeVar("T")


class EvalError(InputError):
    """A folder, file or option ``choreo eval`` cannot use; ``code`` is stable."""


@dataclass
class Dance:
    """One motion to score: world joint positions in our convention (Z-up, metres)."""

    name: str
    positions: np.ndarray  # (T, 24, 3)
    fps: float
    song: Path | None = None  # its music, when known
    group: str = ""  # dances of one song (seed diversity); the song's name


@dataclass
class EvalResult:
    """What ``evaluate`` found: per-dance rows, the set's scores and how they were made."""

    config: dict[str, Any]
    dances: list[dict[str, Any]]
    summary: dict[str, Any]
    reference: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    sheets: list[Path] = field(default_factory=list)  # contact sheet PNGs, one per dance

    def to_dict(self) -> dict[str, Any]:
        return {"config": self.config, "summary": self.summary, "reference": self.reference,
                "dances": self.dances, "notes": self.notes, "sheets": [str(p) for p in self.sheets]}


def progress(items: Iterable[T], total: int, desc: str, show: bool) -> Iterator[T]:
    """A progress bar on stderr for long runs (tqdm), or the bare items."""
    if not show:
        yield from items
        return
    from tqdm import tqdm
    yield from tqdm(items, total=total, desc=desc, unit="dance", dynamic_ncols=True,
                    mininterval=0.5, leave=False)


# ---------------------------------------------------------------- finding dances and songs


def _clip_dance(name: str, clip: MotionClip) -> Dance:
    return Dance(name=name, positions=joint_positions(clip), fps=float(clip.fps))


def load_dances(folder: str | Path) -> list[Dance]:
    """The dances of a folder: our npz files, or an AIST++ folder (``motions/*.pkl``).

    For an AIST++ folder the songs are its own (``wavs/<music id>.*``); sequences on
    its ignore list or without music are left out, as the importer does.
    """
    from backend.motion.aist import is_aist_folder, list_aist_sequences, load_aist_motion

    folder = Path(folder)
    if not folder.is_dir():
        raise EvalError("no_folder", f"{folder}: not a folder")
    if is_aist_folder(folder):
        sequences, _ = list_aist_sequences(folder)
        dances = []
        for seq in sequences:
            dance = _clip_dance(seq.name, load_aist_motion(seq.motion_path))
            dance.song, dance.group = seq.audio_path, seq.audio_path.stem
            dances.append(dance)
    else:
        dances = [_clip_dance(path.stem, MotionClip.load_npz(path)) for path in sorted(folder.glob("*.npz"))]
    if not dances:
        raise EvalError("no_dances", f"{folder}: no .npz dances and not an AIST++ folder "
                        "(motions/*.pkl with wavs/)")
    return dances


def songs_in(music: Path) -> list[Path]:
    if music.is_file():
        return [music]
    if music.is_dir():
        songs = sorted(p for p in music.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES)
        if not songs:
            raise EvalError("no_music", f"{music}: no audio files ({', '.join(AUDIO_SUFFIXES)})")
        return songs
    raise EvalError("no_music", f"{music}: no such file or folder")


def song_for(dance_name: str, songs: list[Path]) -> Path | None:
    """The song a dance belongs to by name (module docstring), or None."""
    best: Path | None = None
    for song in songs:
        stem = song.stem
        fits = dance_name == stem or any(dance_name.startswith(stem + s) for s in SEPARATORS)
        if fits and (best is None or len(stem) > len(best.stem)):
            best = song
    if best is None:
        from backend.motion.aist import AistError, music_id
        try:
            token = music_id(dance_name)
        except AistError:
            return None
        best = next((s for s in songs if s.stem == token), None)
    return best


def match_songs(dances: list[Dance], music: str | Path | None) -> list[str]:
    """Give each dance its song (in place); returns the names of dances left without one.

    Dances that already know their song (AIST++ folders) keep it.
    """
    if music is None:
        return [d.name for d in dances if d.song is None]
    music = Path(music)
    songs = songs_in(music)
    missing = []
    for dance in dances:
        if dance.song is not None:
            continue
        dance.song = songs[0] if music.is_file() else song_for(dance.name, songs)
        if dance.song is None:
            missing.append(dance.name)
        else:
            dance.group = dance.song.stem
    return missing


def song_beats(path: Path) -> np.ndarray:
    """Beat times (s) of a song, by the same analysis the server runs."""
    from backend.music.audio import decode_audio
    from backend.music.features import FEATURE_SAMPLE_RATE, analyse_music

    samples = decode_audio(path, FEATURE_SAMPLE_RATE)
    return np.asarray(analyse_music(samples).beat_times, dtype=np.float64)


# ---------------------------------------------------------------- scoring


def dance_metrics(dance: Dance, beat_times: np.ndarray | None,
                  other_beat_times: np.ndarray | None = None) -> dict[str, Any]:
    """The per-dance metrics (CLIP_COLUMNS); music metrics are None without a song.

    ``other_beat_times``: the beats of a different song, for the beat-alignment margin
    (None without one: the margin is None).
    """
    p, fps = dance.positions, dance.fps
    row: dict[str, Any] = {
        "name": dance.name,
        "song": dance.song.name if dance.song is not None else None,
        "seconds": len(p) / fps,
        "pfc": physical.pfc(p, fps),
        "pbc": physical.pbc(p, fps),
        "foot_skating_ratio": physical.foot_skating_ratio(p, fps),
        "jitter": physical.jitter(p, fps),
        "frozen_fraction": physical.frozen_fraction(p, fps),
        **quality.quality_report(p, fps),
    }
    for key in ("beat_align_music", "beat_align_motion", "beat_align_popdg", "mm_align_2d",
                "beat_align_margin"):
        row[key] = None
    if beat_times is not None:
        for form, fn in beats.BEAT_ALIGN_FORMS.items():
            row[f"beat_align_{form}"] = fn(p, beat_times, fps)
        row["mm_align_2d"] = beats.mm_align_2d(p, beat_times, fps)
        if other_beat_times is not None:
            row["beat_align_margin"] = quality.beat_alignment_margin(p, beat_times, other_beat_times, fps)
    return row


def other_songs(dances: list[Dance]) -> dict[Path, Path]:
    """For the beat-alignment margin: each song of the set paired with the next one.

    The set's songs in sorted order, each paired with the one after it (the last with
    the first), so every dance is also scored against music it was not made for, and
    the pairing is the same on every run. Empty with fewer than two songs.
    """
    songs = sorted({d.song for d in dances if d.song is not None})
    if len(songs) < 2:
        return {}
    return {song: songs[(k + 1) % len(songs)] for k, song in enumerate(songs)}


def _mean(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in rows if r.get(key) is not None]
    return float(np.mean(values)) if values else None


def _features(dances: list[Dance], quirk: bool, desc: str, show: bool) -> tuple[np.ndarray, np.ndarray]:
    kinetic, geometric = [], []
    for dance in progress(dances, len(dances), desc, show):
        k, g = aist_features.extract_features(dance.positions, dance.fps, quirk=quirk)
        kinetic.append(k)
        geometric.append(g)
    return np.stack(kinetic), np.stack(geometric)


def _self_diversity(features: np.ndarray) -> float:
    """Div over a set standardised by itself (no reference set to standardise by)."""
    normed, _ = distribution.normalize_by_reference(features, features)
    return distribution.diversity(normed)


def seed_diversity(kinetic: np.ndarray, groups: list[str]) -> float | None:
    """Mean over songs with ≥ 2 dances of the diversity among that song's dances.

    Div_k over the whole set mixes two things: different songs and different seeds.
    This one asks only the second: does a new seed give the animator a new dance?
    The features are standardised by the whole generated set first (with or without
    a reference set), so the figure depends on the generated dances alone.
    """
    normed, _ = distribution.normalize_by_reference(kinetic, kinetic)
    values = []
    for group in sorted(set(groups)):
        members = normed[[i for i, g in enumerate(groups) if g == group]]
        if len(members) >= 2:
            values.append(distribution.diversity(members))
    return float(np.mean(values)) if values else None


def _score_set(dances: list[Dance], beats_of: Callable[[Path | None], np.ndarray | None],
               desc: str, show_progress: bool) -> tuple[list[dict[str, Any]], bool]:
    """Per-dance rows of a set; the margin pairs songs within the set (``other_songs``).

    Returns the rows and whether the set had a song to pair with (False: one song only).
    """
    pairs = other_songs(dances)
    rows = [dance_metrics(d, beats_of(d.song), beats_of(pairs.get(d.song)) if d.song in pairs else None)
            for d in progress(dances, len(dances), desc, show_progress)]
    return rows, bool(pairs)


def write_sheets(dances: list[Dance], rows: list[dict[str, Any]],
                 beats_of: Callable[[Path | None], np.ndarray | None], out_dir: Path,
                 show_progress: bool = True) -> list[Path]:
    """One contact sheet per dance, ``out_dir/<dance name>.png``, titled with its key scores."""
    from backend.metrics.contact_sheet import contact_sheet

    paths = []
    for dance, row in progress(list(zip(dances, rows)), len(dances), "contact sheets", show_progress):
        scores = [f"spread {_cell(row['pose_spread'], '{:.3f}')} m",
                  f"speed {_cell(row['mean_joint_speed'], '{:.2f}')} m/s",
                  f"jerk/speed {_cell(row['jerk_per_speed'], '{:.0f}')}",
                  f"BA {_cell(row['beat_align_music'], '{:.3f}')}",
                  f"margin {_cell(row['beat_align_margin'], '{:+.3f}')}"]
        title = f"{dance.name}  ({row['song'] or 'no song'})    " + ", ".join(scores)
        paths.append(contact_sheet(dance.positions, dance.fps, beats_of(dance.song),
                                   out_dir / f"{dance.name}.png", title))
    return paths


def evaluate(dances: list[Dance], reference: list[Dance] | None = None, *, quirk: bool = False,
             show_progress: bool = True, config: dict[str, Any] | None = None,
             sheets_dir: str | Path | None = None) -> EvalResult:
    """Score a set of dances (and the reference set, when given) with every metric.

    ``sheets_dir``: also draw a contact sheet per generated dance there
    (``backend.metrics.contact_sheet``); None draws none.
    """
    notes: list[str] = []
    beat_cache: dict[Path, np.ndarray] = {}

    def beats_of(song: Path | None) -> np.ndarray | None:
        if song is None:
            return None
        if song not in beat_cache:
            beat_cache[song] = song_beats(song)
        return beat_cache[song]

    rows, paired = _score_set(dances, beats_of, "metrics", show_progress)
    summary: dict[str, Any] = {"dances": len(rows), "seconds": float(sum(r["seconds"] for r in rows))}
    summary.update({key: _mean(rows, key) for key, _, _ in CLIP_COLUMNS if key != "seconds"})
    if any(r["song"] is None for r in rows):
        notes.append("dances without a song have no beat-alignment scores")
    if not paired and any(r["song"] is not None for r in rows):
        notes.append("beat-alignment margin needs a second song to compare with (the dances have "
                     "one song only); not computed")

    gen_k, gen_g = _features(dances, quirk, "features", show_progress)
    summary["seed_div_k"] = seed_diversity(gen_k, [d.group or d.name for d in dances])
    summary.update(fid_k=None, fid_g=None, div_k=None, div_g=None)
    ref_summary = None
    if reference:
        ref_rows, _ = _score_set(reference, beats_of, "reference metrics", show_progress)
        ref_k, ref_g = _features(reference, quirk, "reference features", show_progress)
        ref_summary = {"dances": len(ref_rows), "seconds": float(sum(r["seconds"] for r in ref_rows))}
        ref_summary.update({key: _mean(ref_rows, key) for key, _, _ in CLIP_COLUMNS if key != "seconds"})
        if len(reference) >= 2 and len(dances) >= 2:
            scores = distribution.fid_and_diversity(gen_k, ref_k, gen_g, ref_g)
            summary.update({k: scores[k] for k in ("fid_k", "fid_g", "div_k", "div_g")})
            ref_summary.update(div_k=scores["div_k_reference"], div_g=scores["div_g_reference"])
        else:
            notes.append("FID and diversity need at least 2 dances on each side; not computed")
    else:
        notes.append("no reference set: FID_k/FID_g need one (--reference); Div_k/Div_g are "
                     "standardised by the generated set itself")
        if len(dances) >= 2:
            summary.update(div_k=_self_diversity(gen_k), div_g=_self_diversity(gen_g))
    cfg = {"aist_quirk": quirk, "default_beat_align": beats.DEFAULT_BEAT_ALIGN,
           "date": time.strftime("%Y-%m-%d"), **(config or {})}
    sheets = ([] if sheets_dir is None
              else write_sheets(dances, rows, beats_of, Path(sheets_dir), show_progress))
    return EvalResult(config=cfg, dances=rows, summary=summary, reference=ref_summary, notes=notes,
                      sheets=sheets)


# ---------------------------------------------------------------- writing


def _cell(value: Any, fmt: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return fmt.format(value)


def markdown(result: EvalResult) -> str:
    """The results as markdown tables: the sets' scores, then one row per dance."""
    cfg = result.config
    lines = ["# Evaluation", ""]
    what = ", ".join(f"{k} {v}" for k, v in cfg.items() if k not in ("date",))
    lines += [f"Made by `choreo eval` on {cfg.get('date')}: {what}.",
              "Definitions: docs/metrics.md. ↑ higher is better, ↓ lower is better.", ""]
    columns = [c for c in CLIP_COLUMNS if c[0] != "seconds"] + list(SET_COLUMNS)
    lines += ["| set | dances | seconds | " + " | ".join(c[1] for c in columns) + " |",
              "|---|---|---|" + "---|" * len(columns)]
    sets = [("generated", result.summary)] + ([("reference", result.reference)] if result.reference else [])
    for name, s in sets:
        lines.append(f"| {name} | {s['dances']} | {s['seconds']:.0f} | "
                     + " | ".join(_cell(s.get(k), f) for k, _, f in columns) + " |")
    lines += ["", "## Per dance", "",
              "| dance | song | " + " | ".join(c[1] for c in CLIP_COLUMNS) + " |",
              "|---|---|" + "---|" * len(CLIP_COLUMNS)]
    for row in result.dances:
        lines.append(f"| {row['name']} | {row['song'] or '–'} | "
                     + " | ".join(_cell(row.get(k), f) for k, _, f in CLIP_COLUMNS) + " |")
    if result.notes:
        lines += ["", *[f"- {n}" for n in result.notes]]
    if result.sheets:
        lines += ["", "## Contact sheets", "",
                  "Stick figures every half second, joint speed, foot height and travel, with the "
                  "music's beats (docs/metrics.md). Look at them before calling a model good.", ""]
        # linked relative to eval.md, which sits beside the sheets' folder
        lines += [f"- [{p.stem}]({p.parent.name}/{p.name})" for p in result.sheets]
    return "\n".join(lines) + "\n"


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def write_results(result: EvalResult, out_dir: str | Path) -> tuple[Path, Path]:
    """``eval.json`` and ``eval.md`` in ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / "eval.json", out / "eval.md"
    json_path.write_text(json.dumps(_json_safe(result.to_dict()), indent=2), encoding="utf-8")
    md_path.write_text(markdown(result), encoding="utf-8")
    return json_path, md_path


# ---------------------------------------------------------------- generate, then evaluate


def generate_dances(model: str, music: str | Path, seeds: list[int], out_dir: str | Path, *,
                    seconds: float | None = 30.0, device: str = "auto", checkpoint: str | Path | None = None,
                    options: dict[str, Any] | None = None, show_progress: bool = True,
                    on_dance: Callable[[Path], None] | None = None) -> list[Path]:
    """Dance every song of ``music`` (a file or folder) with every seed, in process;
    writes ``<song>_seed<k>.npz`` files.

    In process rather than through a server: the same generator code, without a socket
    per dance, so a model can be scored on many songs quickly.
    """
    from backend.metrics.dance_report import generate_clip
    from backend.models.registry import MODELS, load_generator
    from backend.music.audio import decode_audio
    from backend.music.features import FEATURE_SAMPLE_RATE, analyse_music, num_frames

    if model not in MODELS:
        raise EvalError("unknown_model", f"unknown model {model!r}; registered: {', '.join(sorted(MODELS))}")
    songs = songs_in(Path(music))
    if not seeds:
        raise EvalError("bad_option", "at least one seed is needed")
    if seconds is not None and not (math.isfinite(seconds) and seconds > 0):
        raise EvalError("bad_option", f"--seconds must be > 0, got {seconds}")
    try:
        generator = load_generator(model, device=device, checkpoint=checkpoint)
    except FileNotFoundError as exc:
        raise EvalError("no_checkpoint", str(exc)) from None
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    jobs = [(song, seed) for song in songs for seed in seeds]
    analyses: dict[Path, Any] = {}
    for song, seed in progress(jobs, len(jobs), f"dancing ({model})", show_progress):
        if song not in analyses:
            analyses[song] = analyse_music(decode_audio(song, FEATURE_SAMPLE_RATE))
        features = analyses[song].features
        if seconds is not None:
            features = features[:num_frames(seconds)]
        clip, _ = generate_clip(generator, np.ascontiguousarray(features), seed, options)
        path = clip.save_npz(out / f"{song.stem}_seed{seed}.npz")
        written.append(path)
        if on_dance is not None:
            on_dance(path)
    return written
