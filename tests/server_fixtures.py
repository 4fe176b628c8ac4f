"""Fixtures and helpers for tests that talk to a real backend process over a real socket.

``tests/conftest.py`` imports this module, so its fixtures are available to every
test file. Servers run the bundled default model on the CPU; tests ask for few
sampling steps and short songs to stay fast.
"""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest
import soundfile as sf

from backend.motion.clip import MotionClip
from backend.server import ServerConfig, ServerProcess, start_server_process
from protocol import ChoreoClient, Message

FAST_STEPS = 2
"""Sampling steps for tests that only check plumbing, not dance quality."""
PLUMBING_MODEL = "edge"
"""What the test servers give a request naming no model. The product's default is ``graph``
(measured, docs/models.md); the tests of streaming, editing, queueing and bad input run on
``edge`` because its sampling steps (``FAST_STEPS``) make a job as short or as long as a
test needs, and it edits every way (keyframes included). ``graph`` has its own tests
(test_model_graph.py), and test_model_registry.py checks the product's default."""


def wav_bytes(seconds: float, sample_rate: int = 22050, bpm: float = 120.0, seed: int = 0) -> bytes:
    """A small synthetic song: clicks on the beat, a chord, a little noise, as WAV bytes."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    chord = sum(0.08 * np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6))
    since_beat = np.mod(t, 60.0 / bpm)
    clicks = 0.7 * np.exp(-since_beat * 40.0) * np.sin(2 * np.pi * 880.0 * t)
    audio = (chord + clicks + 0.01 * rng.standard_normal(t.shape)).astype(np.float32)
    out = io.BytesIO()
    sf.write(out, audio, sample_rate, format="WAV", subtype="PCM_16")
    return out.getvalue()


def result_clip(result: Any) -> MotionClip:
    """A streamed ``GenerationResult`` as a ``MotionClip`` (to measure it like any clip)."""
    return MotionClip(result.rotations, result.root_translation, fps=result.fps, contacts=result.contacts,
                      contact_names=tuple(result.contact_names))


def start_test_server(folder: Path, default_location: bool = False, **overrides: Any) -> ServerProcess:
    """A backend subprocess on the CPU with its connection file and log in ``folder``.

    default_location: let the server place its connection file itself, in its runtime
    dir, which is then ``folder / "runtime"`` (through ``$CHOREO_RUNTIME_DIR``).
    A request naming no model gets ``edge`` where it is loaded (``PLUMBING_MODEL``), unless
    ``default_model`` says otherwise.
    """
    folder.mkdir(parents=True, exist_ok=True)
    if PLUMBING_MODEL in overrides.get("models", (PLUMBING_MODEL,)):
        overrides.setdefault("default_model", PLUMBING_MODEL)
    if default_location:
        config = ServerConfig(device="cpu", **overrides)
        env = {"CHOREO_RUNTIME_DIR": str(folder / "runtime")}
    else:
        config = ServerConfig(device="cpu", connection_file=folder / "backend.json", **overrides)
        env = {}
    server = start_server_process(config, log_path=folder / "backend.log", env=env)
    if config.warm_up:  # the warm-up goes on after "ready": tests start from an idle worker
        deadline = time.monotonic() + 180.0
        while "warm-up finished" not in server.log_text():
            if time.monotonic() > deadline or server.proc.poll() is not None:
                server.stop()
                raise RuntimeError(f"the test backend did not finish its warm-up:\n{server.log_text()[-2000:]}")
            time.sleep(0.05)
    return server


def wait_for(client: ChoreoClient, msg_id: str, types: set[str], timeout: float = 60.0) -> list[Message]:
    """Messages replying to ``msg_id`` until one of ``types`` arrives (the last one returned)."""
    got: list[Message] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got.append(client.wait_for(lambda m: m.reply_to == msg_id, timeout=deadline - time.monotonic()))
        if got[-1].type in types:
            return got
    raise AssertionError(f"no {types} for {msg_id} within {timeout} s; got {[m.type for m in got]}")


def assert_serving(server: ServerProcess, generate: bool = False) -> None:
    """The backend still answers (and, if asked, still makes a short dance)."""
    assert server.alive(), server.log_text()[-3000:]
    with server.client(timeout=30) as client:
        assert client.ping()["stats"]["uptime_s"] > 0
        if generate:
            result = client.generate(wav_bytes(2.0, seed=11), seed=1, options={"steps": FAST_STEPS})
            assert result.num_frames == 60


def assert_cancel_while_sampling(server: ServerProcess, model: str, song: bytes, seed: int = 0,
                                 options: dict[str, Any] | None = None) -> None:
    """Cancel a dance once ``model`` is sampling it: the job ends as cancelled (reason
    "cancel"), the process lives on, and the same model still makes a short dance."""
    with server.client(heartbeat_interval=0.5) as client:
        msg_id = client.submit_generate(song, model=model, seed=seed, options=options or {})
        seen = wait_for(client, msg_id, {"progress"})
        while not any(m.type == "progress" and m.content["stage"] == "sampling" for m in seen):
            seen += wait_for(client, msg_id, {"progress"})
        client.cancel(seen[0].job_id)
        end = wait_for(client, msg_id, {"cancelled", "done", "error"})[-1]
        assert end.type == "cancelled" and end.content["reason"] == "cancel", end
    assert_serving(server)
    with server.client(timeout=60) as client:
        assert client.generate(wav_bytes(2.0, seed=11), model=model, seed=1).num_frames == 60


@pytest.fixture(scope="module")
def backend_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One default backend process for a whole test module (connection file in its runtime dir)."""
    server = start_test_server(tmp_path_factory.mktemp("backend"), default_location=True)
    yield server
    server.stop()
