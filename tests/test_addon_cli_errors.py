"""The command line's error lines (issue 15, part 4): a corrupt or wrong npz given to
``choreo inpaint`` or ``choreo eval`` is a ``choreo: error [...]`` line, not a traceback, and
an error printed while a progress bar is drawn starts on its own line. Real ``choreo``
processes; the progress-bar case starts a real backend.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from backend.motion.skeleton import JOINT_NAMES
from tests.server_fixtures import wav_bytes

REPO = Path(__file__).resolve().parents[1]


def _choreo(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "backend.cli", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)


def _bad_files(folder: Path) -> dict[str, Path]:
    corrupt = folder / "corrupt.npz"
    corrupt.write_bytes(b"PK\x03\x04" + b"\x00" * 64)
    wrong = folder / "wrong.npz"
    np.savez(wrong, rotations=np.zeros((10, 22, 4), np.float32), root_translation=np.zeros((10, 3), np.float32),
             fps=np.float32(30), joint_names=np.array(JOINT_NAMES))
    not_ours = folder / "other.npz"
    np.savez(not_ours, weights=np.zeros(3))
    return {"corrupt": corrupt, "wrong": wrong, "other": not_ours}


def _one_error_line(proc: subprocess.CompletedProcess, path: Path) -> None:
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("choreo: error [bad_motion]")]
    assert len(lines) == 1, proc.stderr
    assert str(path) in lines[0]


@pytest.mark.parametrize("kind", ["corrupt", "wrong", "other"])
def test_inpaint_with_a_bad_npz_prints_an_error_line(tmp_path, kind) -> None:  # noqa: ANN001
    path = _bad_files(tmp_path)[kind]
    song = tmp_path / "song.wav"
    song.write_bytes(wav_bytes(2.0, bpm=120.0, seed=1))
    proc = _choreo("inpaint", str(path), str(song), "--frames", "0:5", "--out", str(tmp_path / "out.npz"))
    _one_error_line(proc, path)
    assert not (tmp_path / "out.npz").exists()


@pytest.mark.parametrize("kind", ["corrupt", "wrong", "other"])
def test_eval_with_a_bad_npz_prints_an_error_line(tmp_path, kind) -> None:  # noqa: ANN001
    folder = tmp_path / "dances"
    folder.mkdir()
    path = _bad_files(folder)[kind]
    for other in folder.glob("*.npz"):
        if other != path:
            other.unlink()
    proc = _choreo("eval", str(folder), "--out", str(tmp_path / "eval"), "--quiet")
    _one_error_line(proc, path)


def test_an_error_during_a_progress_bar_starts_on_its_own_line(tmp_path) -> None:  # noqa: ANN001
    junk = tmp_path / "junk.mp3"
    junk.write_bytes(b"this is not audio at all" * 100)
    proc = _choreo("generate", str(junk), "--out", str(tmp_path / "x.npz"))
    assert proc.returncode == 1
    match = re.search(r"choreo: error \[audio_undecodable\]", proc.stderr)
    assert match, proc.stderr
    before = proc.stderr[:match.start()]
    assert before == "" or before.endswith("\n"), repr(before[-200:])
