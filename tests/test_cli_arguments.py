"""The command line refuses bad arguments before it starts a backend, and names the models.

Each refusal runs the real ``choreo`` entry point in its own process: the error line
comes back and the process never says it is starting a backend (starting one takes
seconds, and an argument error should not)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from backend.examples import EXAMPLE_SONG
from backend.models.registry import MODELS


def _choreo(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "backend.cli", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("bad, says", [
    (["--seconds", "-3"], "--seconds must be a positive"),
    (["--seconds", "nan"], "--seconds must be a positive"),
    (["--start", "-1"], "--start must be 0 or more"),
    (["--model", "tango"], "--model 'tango' is not a model"),
    (["--seed", "-5"], "--seed must be in"),
    (["--steps", "0"], "--steps must be at least 1"),
])
def test_bad_generate_arguments_are_refused_before_a_backend_starts(bad, says, tmp_path):
    done = _choreo("generate", str(EXAMPLE_SONG), "--out", str(tmp_path / "d.npz"), *bad)
    assert done.returncode == 1
    assert "choreo: error [bad_option]" in done.stderr and says in done.stderr
    assert "starting the backend" not in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "d.npz").exists()


def test_bad_inpaint_arguments_are_refused_before_a_backend_starts(tmp_path):
    done = _choreo("inpaint", str(EXAMPLE_SONG), str(EXAMPLE_SONG), "--frames", "0:30", "--model", "nope",
                   "--out", str(tmp_path / "e.npz"))
    assert done.returncode != 0 and "starting the backend" not in done.stderr


def test_generate_help_lists_every_bundled_model():
    done = _choreo("generate", "--help")
    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    for name in MODELS:
        assert name in text
