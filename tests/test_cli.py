"""The `choreo` command line, end to end: it starts a real backend process and talks ZeroMQ."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from backend.motion.bvh import load_bvh_clip
from backend.motion.clip import MotionClip
from backend.motion.skeleton import JOINT_NAMES
from tests.server_fixtures import wav_bytes

REPO = Path(__file__).resolve().parents[1]


def _choreo(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "backend.cli", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)


def test_generate_writes_npz_and_bvh(tmp_path):
    song = tmp_path / "song.wav"
    song.write_bytes(wav_bytes(6.0, bpm=126.0, seed=4))
    proc = _choreo("generate", str(song), "--out", str(tmp_path / "d.npz"), "--bvh", str(tmp_path / "d.bvh"),
                   "--seed", "3", "--start", "1.0", "--seconds", "4", "--model", "edge", "--steps", "4")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "wrote" in proc.stdout
    with np.load(tmp_path / "d.npz", allow_pickle=False) as data:
        assert set(data.files) >= {"rotations", "root_translation", "contacts", "fps", "joint_names",
                                   "contact_names"}
        assert data["rotations"].shape == (120, 24, 4)
        assert data["root_translation"].shape == (120, 3)
        assert data["contacts"].shape == (120, len(data["contact_names"]))
        assert float(data["fps"]) == 30.0
        assert tuple(data["joint_names"]) == JOINT_NAMES
    clip = MotionClip.load_npz(tmp_path / "d.npz")
    back = load_bvh_clip(tmp_path / "d.bvh", fps=30, place_on_floor=False)
    assert back.num_frames == clip.num_frames
    np.testing.assert_allclose(back.root_translation, clip.root_translation, atol=1e-3)
    dots = np.abs(np.sum(back.rotations * clip.rotations, axis=-1))
    assert dots.min() > 1 - 1e-4  # same rotations (up to quaternion sign)


def test_generate_reports_bad_audio_clearly(tmp_path):
    junk = tmp_path / "junk.mp3"
    junk.write_bytes(b"this is not audio at all" * 100)
    proc = _choreo("generate", str(junk), "--out", str(tmp_path / "x.npz"))
    assert proc.returncode != 0
    assert "audio_undecodable" in proc.stderr
    assert not (tmp_path / "x.npz").exists()


def test_demo_runs_the_bundled_model_on_the_bundled_song(tmp_path):
    proc = _choreo("demo", "--out", str(tmp_path / "demo"), "--seconds", "21")  # the product's default model
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert str((tmp_path / "demo" / "dance.npz").resolve()) in proc.stdout
    assert str((tmp_path / "demo" / "dance.bvh").resolve()) in proc.stdout
    clip = MotionClip.load_npz(tmp_path / "demo" / "dance.npz")
    assert clip.seconds == pytest.approx(21.0, abs=0.05)
    assert "with model graph" in proc.stdout


def test_a_checkpoint_without_model_runs_the_model_it_holds(tmp_path):
    """``--checkpoint`` alone: the checkpoint names its model (here fact), not the default."""
    proc = _choreo("demo", "--out", str(tmp_path / "demo"), "--seconds", "4",
                   "--checkpoint", str(REPO / "backend" / "checkpoints" / "fact_default.pt"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "with model fact" in proc.stdout
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    proc = _choreo("demo", "--out", str(tmp_path / "x"), "--checkpoint", str(junk))
    assert proc.returncode != 0 and "--checkpoint" in proc.stderr and "not a loadable" in proc.stderr
