"""`choreo eval`: dances and songs in, the field's metrics out (JSON and markdown).

The dances are either built here with known answers (a body bouncing on the beat of
a click track, the same bounce half a beat late, a body standing still), generated
by the bundled model through `choreo eval --model`, or an AIST++ folder written in
the AIST++ file format.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from backend.metrics import evaluate as ev
from backend.metrics.basic import joint_positions
from backend.motion.clip import MotionClip
from backend.motion.skeleton import PELVIS_REST_HEIGHT
from tests.audio_helpers import click_track
from tests.test_aist import write_aist

REPO = Path(__file__).resolve().parents[1]
BPM = 120.0
SR = 22050


def _choreo(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "backend.cli", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)


def _write_click_song(path: Path, seconds: float = 12.0, first_click: float = 0.5,
                      bpm: float = BPM) -> np.ndarray:
    samples, clicks = click_track(bpm, seconds, SR, first_click=first_click)
    sf.write(path, samples, SR)
    return clicks


def _bounce(seconds: float, beat_offset: float, depth: float = 0.08, fps: float = 30.0,
            bpm: float = BPM) -> MotionClip:
    """The whole body bounces once a beat and is slowest at the tops, ``beat_offset`` + k beats.

    Height depth * |sin(phase)| with phase = pi (t - offset) / period + pi / 2: the
    speed is proportional to |cos(phase)|, zero at the tops (t = offset + k period)
    and largest at the dips in between, where the bounce turns sharply.
    """
    n = int(seconds * fps)
    t = np.arange(n) / fps
    period = 60.0 / bpm
    phase = np.pi * (t - beat_offset) / period + np.pi / 2  # top of the bounce at t = offset + k period
    height = PELVIS_REST_HEIGHT - depth + depth * np.abs(np.sin(phase))
    rotations = np.zeros((n, 24, 4), dtype=np.float32)
    rotations[..., 0] = 1.0
    root = np.c_[np.zeros(n), np.zeros(n), height].astype(np.float32)
    return MotionClip(rotations=rotations, root_translation=root, fps=fps)


def _standing(seconds: float, fps: float = 30.0) -> MotionClip:
    n = int(seconds * fps)
    rotations = np.zeros((n, 24, 4), dtype=np.float32)
    rotations[..., 0] = 1.0
    root = np.tile(np.array([[0.0, 0.0, PELVIS_REST_HEIGHT]], dtype=np.float32), (n, 1))
    return MotionClip(rotations=rotations, root_translation=root, fps=fps)


def test_known_dances_score_as_expected_through_the_command(tmp_path):
    songs = tmp_path / "songs"
    songs.mkdir()
    clicks = _write_click_song(songs / "clicks.wav")
    _write_click_song(songs / "clicks_long.wav", seconds=14.0)  # a longer name that must not steal ours
    dances = tmp_path / "dances"
    dances.mkdir()
    _bounce(10.0, beat_offset=clicks[0]).save_npz(dances / "clicks_on.npz")
    _bounce(10.0, beat_offset=clicks[0] + 0.25).save_npz(dances / "clicks_late.npz")
    _standing(10.0).save_npz(dances / "clicks-still.npz")
    _standing(10.0).save_npz(dances / "nobody.npz")

    proc = _choreo("eval", str(dances), "--music", str(songs), "--out", str(tmp_path / "out"), "--quiet",
                   "--no-sheets")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "no song for 1 dance(s) (nobody)" in proc.stderr
    assert not (tmp_path / "out" / "sheets").exists()
    result = json.loads((tmp_path / "out" / "eval.json").read_text())
    rows = {r["name"]: r for r in result["dances"]}
    assert rows["clicks_on"]["song"] == "clicks.wav" and rows["clicks-still"]["song"] == "clicks.wav"
    assert rows["nobody"]["song"] is None and rows["nobody"]["beat_align_music"] is None

    on, late = rows["clicks_on"], rows["clicks_late"]
    assert on["beat_align_music"] > 0.9, on
    assert late["beat_align_music"] < on["beat_align_music"] - 0.3, (on, late)
    assert on["mm_align_2d"] > late["mm_align_2d"]
    assert rows["clicks-still"]["pfc"] == 0.0 and rows["clicks-still"]["foot_skating_ratio"] == 0.0
    assert rows["clicks-still"]["frozen_fraction"] == 1.0 and rows["clicks_on"]["frozen_fraction"] == 0.0
    for row in rows.values():
        assert row["seconds"] == pytest.approx(10.0)
        assert np.isfinite(row["jitter"]) and row["jitter"] >= 0
    # one song among the dances: nothing to compare with for the margin, and a note says so
    assert all(row["beat_align_margin"] is None for row in rows.values())
    assert any("margin needs a second song" in note for note in result["notes"])
    assert rows["clicks-still"]["pose_spread"] < 1e-9 and rows["clicks-still"]["mean_joint_speed"] == 0.0
    # no reference: no FID, but a diversity over the set
    assert result["summary"]["fid_k"] is None and result["summary"]["div_k"] > 0
    table = (tmp_path / "out" / "eval.md").read_text()
    assert "| generated | 4 | 40 |" in table and "| clicks_late | clicks.wav |" in table


def test_two_songs_give_a_margin_and_contact_sheets(tmp_path):
    """Each dance stops on its own song's beats (120 and 90 BPM): above 0 against the other song."""
    songs = tmp_path / "songs"
    songs.mkdir()
    fast = _write_click_song(songs / "fast.wav", seconds=10.0)
    slow = _write_click_song(songs / "slow.wav", seconds=10.0, first_click=0.3, bpm=90.0)
    dances = tmp_path / "dances"
    dances.mkdir()
    _bounce(8.0, beat_offset=fast[0]).save_npz(dances / "fast_seed0.npz")
    _bounce(8.0, beat_offset=slow[0], bpm=90.0).save_npz(dances / "slow_seed0.npz")

    out = tmp_path / "out"
    proc = _choreo("eval", str(dances), "--music", str(songs), "--out", str(out), "--quiet")
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((out / "eval.json").read_text())
    rows = {r["name"]: r for r in result["dances"]}
    for row in rows.values():
        assert row["beat_align_margin"] > 0.2, row
        assert 0.0 < row["mean_joint_speed"] < 1.0 and row["jerk_per_speed"] > 0
        assert row["pose_spread"] == pytest.approx(0.0, abs=1e-6)  # the body bounces as one piece
    s = result["summary"]
    assert s["beat_align_margin"] == pytest.approx(np.mean([r["beat_align_margin"] for r in rows.values()]))
    assert not any("margin" in note for note in result["notes"])
    sheets = sorted((out / "sheets").glob("*.png"))
    assert [p.name for p in sheets] == ["fast_seed0.png", "slow_seed0.png"]
    for sheet in sheets:
        assert sheet.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and sheet.stat().st_size > 10_000
    table = (out / "eval.md").read_text()
    assert "BA margin ↑" in table and "pose spread m" in table and "jerk/speed ↓" in table
    assert "## Contact sheets" in table and "(sheets/fast_seed0.png)" in table
    assert "contact sheet(s)" in proc.stdout


def _aist_folder(root: Path, count: int = 3) -> None:
    """An AIST++-layout folder: motions/*.pkl at 60 fps with their music in wavs/."""
    (root / "motions").mkdir(parents=True)
    (root / "wavs").mkdir()
    _write_click_song(root / "wavs" / "mHO0.wav", seconds=8.0)
    rng = np.random.default_rng(7)
    frames = 8 * 60
    t = np.arange(frames) / 60.0
    for k in range(count):
        amp = rng.uniform(0.1, 0.5, size=72)
        freq = rng.uniform(0.5, 2.0, size=72)
        poses = amp * np.sin(2 * np.pi * freq * t[:, None] + rng.uniform(0, 6, size=72))
        poses[:, :3] *= 0.2
        trans = np.c_[0.3 * np.sin(t * (k + 1)), np.full(frames, 0.0), 0.2 * np.cos(t)] * 1.3
        write_aist(root / "motions" / f"gHO_sBM_cAll_d2{k}_mHO0_ch0{k}.pkl", poses, trans, 1.3)


def test_generate_then_evaluate_against_an_aist_reference(tmp_path):
    songs = tmp_path / "songs"
    songs.mkdir()
    _write_click_song(songs / "clicks.wav", seconds=9.0)
    _aist_folder(tmp_path / "aist")
    out = tmp_path / "out"
    proc = _choreo("eval", "--model", "edge", "--music", str(songs), "--seeds", "2", "--seconds", "6",
                   "--reference", str(tmp_path / "aist"), "--device", "cpu", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(p.name for p in (out / "motions").glob("*.npz")) == ["clicks_seed0.npz", "clicks_seed1.npz"]
    result = json.loads((out / "eval.json").read_text())
    assert result["config"]["model"] == "edge" and result["config"]["seeds"] == 2
    s, ref = result["summary"], result["reference"]
    assert s["dances"] == 2 and ref["dances"] == 3
    for key in ("fid_k", "fid_g", "div_k", "div_g", "seed_div_k"):
        assert s[key] is not None and np.isfinite(s[key]) and s[key] >= 0, key
    assert s["seed_div_k"] > 0  # two seeds, two different dances
    for row in result["dances"]:
        assert row["song"] == "clicks.wav" and 0 <= row["beat_align_music"] <= 1
        assert MotionClip.load_npz(out / "motions" / f"{row['name']}.npz").num_frames == 180
    # the reference's own songs come from its wavs/ folder
    assert ref["beat_align_music"] is not None and ref["div_k"] > 0
    assert "| reference | 3 |" in (out / "eval.md").read_text()
    assert "FID_k" in proc.stdout  # the summary table is printed


def test_quirk_switch_changes_only_the_kinetic_side(tmp_path):
    dances = [ev.Dance(f"d{k}", joint_positions(_bounce(6.0, 0.1 * k, depth=0.05 + 0.02 * k)), 30.0)
              for k in range(3)]
    reference = [ev.Dance(f"r{k}", joint_positions(_bounce(6.0, 0.05 * k, depth=0.1 + 0.03 * k)), 30.0)
                 for k in range(3)]
    plain = ev.evaluate(dances, reference, show_progress=False)
    quirk = ev.evaluate(dances, reference, quirk=True, show_progress=False)
    assert plain.summary["fid_g"] == pytest.approx(quirk.summary["fid_g"])
    assert plain.summary["fid_k"] != pytest.approx(quirk.summary["fid_k"])
    assert quirk.config["aist_quirk"] is True


def test_bad_input_is_refused_clearly(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = _choreo("eval", str(empty), "--quiet")
    assert proc.returncode == 1 and "[no_dances]" in proc.stderr
    proc = _choreo("eval", "--model", "edge")
    assert proc.returncode != 0 and "--model needs --music" in proc.stderr
    proc = _choreo("eval", "--model", "nope", "--music", str(tmp_path), "--quiet")
    assert proc.returncode == 1 and "unknown model 'nope'" in proc.stderr and "Traceback" not in proc.stderr
    with pytest.raises(ev.EvalError, match="no_music"):
        ev.songs_in(tmp_path / "missing")
    assert ev.song_for("gBR_sBM_cAll_d04_mBR0_ch01", [Path("mBR0.wav"), Path("mBR1.wav")]) == Path("mBR0.wav")
    assert ev.song_for("song_seed_2", [Path("song.ogg"), Path("song_seed.ogg")]) == Path("song_seed.ogg")
    assert ev.song_for("song_seed2", [Path("song.ogg"), Path("song_seed.ogg")]) == Path("song.ogg")
    assert ev.song_for("songs", [Path("song.ogg")]) is None
