"""The whole training set (``backend.training.real_dataset``): real capture paired with music.

Songs rendered on a clip's beat grid have their beats where asked (heard by the project's
own tracker); warps keep the capture's speed within +-20 %; a tiny real build (two short
CMU trials, one Sectoid song, one of everything else) is read by ``choreo train`` for all
four networks, keeps the held-out trial out of training and writes it to the reference
folder; ``choreo library build --exclude`` changes the library. The capture tests are
skipped when ``../shared/data`` is absent.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from backend.library.build import build_library
from backend.library.library import LibraryError, load_library, read_meta
from backend.motion.clip import MotionClip
from backend.music.features import FEATURE_SAMPLE_RATE, analyse_music
from backend.training.real_dataset import (
    HELD_OUT_TRIALS, MAX_WARP, beat_grid, build_real_dataset, warp_to_beats, warped_clip,
)
from backend.training.synth_music import SynthMusicError, synthesize_on_beats

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CMU = DATA / "mocap" / "cmu"
SONG = DATA / "music" / "sectoid" / "feelings" / "mix.ogg"
TRAIN_TRIAL, HELD = "05_02", "05_20"
needs_data = pytest.mark.skipif(not ((CMU / f"{TRAIN_TRIAL}.bvh").is_file() and (CMU / f"{HELD}.bvh").is_file()
                                     and SONG.is_file()), reason="shared CMU mocap / Sectoid songs not present")


# -- music on a beat grid ------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 3])
def test_a_song_on_a_drifting_beat_grid_has_its_beats_where_asked(seed):
    steps = np.linspace(0.56, 0.5, 40)  # 107 -> 120 BPM over the song
    asked = 0.45 + np.concatenate([[0.0], np.cumsum(steps)])
    song = synthesize_on_beats(asked, 12.0, np.random.default_rng(seed), FEATURE_SAMPLE_RATE, style="pop")
    inside = asked[asked < 12.0]
    np.testing.assert_allclose(song.beat_times[-len(inside):], inside)  # the grid it reports is the one asked
    heard = analyse_music(song.samples).beat_times
    assert len(heard) >= 6
    near = np.abs(heard[:, None] - inside[None]).min(axis=1)
    assert np.mean(near < 0.08) >= 0.85  # what the tracker hears is on the drifting grid (a frame or two late)
    # and it hears the grid wherever drums play (intro and breakdown sections have none: nothing to hear)
    starts = np.array([t for t, _ in song.sections])
    names = [name for _, name in song.sections]
    section = np.searchsorted(starts, inside + 1e-6) - 1
    drums = np.array([names[max(k, 0)] not in ("intro", "breakdown") for k in section])
    judged = inside[drums & (inside > 1.5) & (inside < 11.0)]
    assert len(judged) >= 4
    assert np.mean(np.abs(judged[:, None] - heard[None]).min(axis=1) < 0.08) >= 0.8


def test_a_beat_grid_out_of_range_is_refused():
    rng = np.random.default_rng(0)
    with pytest.raises(SynthMusicError):
        synthesize_on_beats(np.array([0.0, 0.1, 0.2]), 4.0, rng)  # 600 BPM
    with pytest.raises(SynthMusicError):
        synthesize_on_beats(np.array([0.0, 3.0]), 4.0, rng)  # 20 BPM


def test_beat_grid_keeps_motion_beats_and_fills_held_poses():
    frames = np.array([0, 15, 17, 31, 46, 120, 135])  # a too-close beat at 17, a held pose 46 -> 120
    grid = beat_grid(frames)
    assert np.isin(frames[[0, 1, 3, 4, 5, 6]] / 30, grid).all() and 17 / 30 not in grid
    assert np.diff(grid).max() <= 1.6 * np.median(np.diff(grid)) + 1e-9


# -- warps -----------------------------------------------------------------------------------


def test_warps_put_clip_beats_on_song_beats_within_20_percent():
    rng = np.random.default_rng(0)
    clip_beats = np.concatenate([[0.0], np.cumsum(rng.uniform(0.4, 0.9, 30))])  # irregular dance
    song_beats = 0.3 + 0.6 * np.arange(60)
    runs = warp_to_beats(clip_beats, song_beats, 5)
    assert sum(len(c) for c, _ in runs) >= 15
    for clip_t, song_t in runs:
        assert np.isin(clip_t, clip_beats).all() and np.isin(song_t, song_beats).all()
        speed = np.diff(clip_t) / np.diff(song_t)
        assert np.all(np.abs(speed - 1.0) <= MAX_WARP + 1e-9)
    # the frames of a warped clip: each shows the clip time the warp asks, at <= 20 % off its speed
    clip_t, song_t = max(runs, key=lambda r: len(r[0]))
    n = int(clip_beats[-1] * 30) + 2
    q = np.zeros((n, 24, 4), np.float32)
    q[..., 0] = 1.0
    root = np.zeros((n, 3), np.float32)
    root[:, 0] = np.arange(n) / 30.0  # x = clip time: the warp is read back from the root
    root[:, 2] = 0.93
    warped, shown = warped_clip(MotionClip(q, root), clip_t, song_t)
    np.testing.assert_allclose(warped.root_translation[:, 0], shown, atol=1e-5)
    rate = np.diff(shown) * 30
    assert rate.min() >= 1 - MAX_WARP - 1e-6 and rate.max() <= 1 + MAX_WARP + 1e-6
    on_beat = np.round((song_t - song_t[0]) * 30).astype(int)
    on_beat = on_beat[on_beat < len(shown)]
    assert np.abs(shown[on_beat] - clip_t[:len(on_beat)]).max() < 1.3 / 30  # clip beats land on song beats


# -- a tiny real build -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_build(tmp_path_factory):
    if not ((CMU / f"{TRAIN_TRIAL}.bvh").is_file() and (CMU / f"{HELD}.bvh").is_file() and SONG.is_file()):
        pytest.skip("shared CMU mocap / Sectoid songs not present")
    root = tmp_path_factory.mktemp("real")
    music = root / "music" / "feelings"
    music.mkdir(parents=True)
    shutil.copyfile(SONG, music / "mix.ogg")
    shutil.copyfile(SONG.parents[1] / "COPYRIGHT", root / "music" / "COPYRIGHT")
    manifest = build_real_dataset(
        root / "data", mocap_dir=CMU, music_dir=root / "music", held_out=(HELD,), trials=(TRAIN_TRIAL,),
        clip_seconds=9.5, graph_synth=1, graph_excerpts=1, procedural_synth=1, procedural_excerpts=1,
        procedural_variations=1, workers=1)
    return root, manifest


@needs_data
def test_the_build_holds_every_part_and_states_its_minutes(tiny_build):
    root, manifest = tiny_build
    assert manifest == json.loads((root / "data" / "real_manifest.json").read_text())
    assert all(manifest["counts"][p] >= 1 for p in ("beat_synth", "warp", "graph", "procedural"))
    assert all(manifest["minutes"][p] > 0 for p in manifest["minutes"])
    assert sum(manifest["share"].values()) == pytest.approx(1.0, abs=0.01)
    names = {r["name"] for r in manifest["clips"]}
    for name in names:  # every clip is a pair
        assert (root / "data" / f"{name}.npz").is_file() and (root / "data" / f"{name}.wav").is_file()
    # the original and its mirror are both paired, each with a beat-grid song and a warp
    for trial in (TRAIN_TRIAL, f"{TRAIN_TRIAL}_mirror"):
        assert any(r["piece"].startswith(trial + "_p") for r in manifest["clips"] if r["part"] == "beat_synth")
    for row in manifest["clips"]:
        if row["part"] == "warp":
            assert 1 - MAX_WARP - 1e-6 <= row["speed_min"] <= row["speed_max"] <= 1 + MAX_WARP + 1e-6
    assert "mocap.cs.cmu.edu" in (root / "data" / "CREDIT_cmu.txt").read_text()
    assert (root / "data" / "COPYRIGHT_music.txt").is_file()


@needs_data
def test_the_held_out_trial_is_out_of_training_and_in_the_reference_folder(tiny_build):
    root, manifest = tiny_build
    assert manifest["held_out"] == [HELD] and HELD in HELD_OUT_TRIALS
    assert all(HELD not in p.name for p in (root / "data").iterdir())
    assert all(r.get("trial") != HELD for r in manifest["clips"])
    library = load_library(manifest["library"])  # what the pairs and the graph dances came from
    assert library.clip_names == [TRAIN_TRIAL, f"{TRAIN_TRIAL}_mirror"] and library.meta["excluded"] == [HELD]
    reference = root / "data_heldout"
    assert sorted(p.name for p in reference.glob("*.npz")) == [f"{HELD}.npz", f"{HELD}_mirror.npz"]
    clip = MotionClip.load_npz(reference / f"{HELD}.npz")
    assert clip.seconds == pytest.approx(manifest["held_out_minutes"] * 30, abs=0.1)  # half of it each
    # and no training clip holds its poses
    from backend.training.datasets import load_dance_folder
    held = clip.rotations[::15].reshape(-1, 96)
    for item in load_dance_folder(root / "data"):
        q = item.motion.rotations.reshape(-1, 96)
        d = np.minimum(np.abs(held[:, None] - q[None]).max(-1), np.abs(held[:, None] + q[None]).max(-1))
        assert d.min() > 1e-3, item.name


@needs_data
@pytest.mark.parametrize("model", ["edge", "popdg", "fact", "dancenet"])
def test_choreo_train_reads_the_set(tiny_build, tmp_path, model):
    from backend.cli import main

    root, _ = tiny_build
    assert main(["train", str(root / "data"), "--out", str(tmp_path / model), "--model", model, "--steps", "2",
                 "--batch-size", "2", "--no-progress", "--d-model", "32", "--layers", "1", "--heads", "2"]) == 0
    assert (tmp_path / model / "model.pt").is_file()


# -- choreo library build --exclude ----------------------------------------------------------


@needs_data
def test_exclude_changes_the_library_and_its_hash(tiny_build, tmp_path):
    import argparse

    from backend.library.sources import add_arguments

    root, manifest = tiny_build
    files = [CMU / f"{TRAIN_TRIAL}.bvh", CMU / f"{HELD}.bvh"]
    without = Path(manifest["library"])
    both = build_library(CMU, tmp_path / "both.npz", files=files)
    assert read_meta(both)["source_hash"] != read_meta(without)["source_hash"]
    assert load_library(both).clip_names[:2] == [TRAIN_TRIAL, HELD]
    assert build_library(CMU, without, files=files, exclude=[HELD]) == without  # cached: same inputs, same hash
    with pytest.raises(LibraryError, match="not among the sources"):
        build_library(CMU, tmp_path / "x.npz", files=files, exclude=["99_99"])
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert parser.parse_args(["--exclude", "05_20", "60_10"]).exclude == ["05_20", "60_10"]
    assert parser.parse_args([]).exclude == []
    # the command's own path: choreo library build --mocap DIR --out PATH --exclude 05_20
    from backend.library.build import run

    mocap = tmp_path / "mocap"
    mocap.mkdir()
    for f in files:
        shutil.copyfile(f, mocap / f.name)
    out = tmp_path / "cli.npz"
    assert run(parser.parse_args(["--mocap", str(mocap), "--out", str(out), "--exclude", HELD])) == 0
    assert load_library(out).clip_names == [TRAIN_TRIAL, f"{TRAIN_TRIAL}_mirror"]
    assert read_meta(out)["source_hash"] == read_meta(without)["source_hash"]  # the same inputs, the same hash


@needs_data
def test_choreo_eval_measures_fid_against_the_reference_folder(tiny_build, tmp_path):
    from backend.cli import main

    root, _ = tiny_build
    dances = tmp_path / "dances"
    dances.mkdir()
    for p in (root / "data").glob("graph_*"):
        shutil.copyfile(p, dances / p.name)
    assert main(["eval", str(dances), "--music", str(dances), "--reference", str(root / "data_heldout"),
                 "--out", str(tmp_path / "eval")]) == 0
    result = json.loads((tmp_path / "eval" / "eval.json").read_text())
    assert result["reference"]["dances"] == 2  # the held-out trial and its mirror
    assert np.isfinite(result["summary"]["fid_k"]) and np.isfinite(result["summary"]["fid_g"])
