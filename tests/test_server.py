"""The backend over its real socket: a real server process with the default model, real clients.

One server process serves the whole module (see ``backend_server``); the last test
shuts it down through the protocol and checks that it exits cleanly.
"""

from __future__ import annotations

import stat
import time

import numpy as np
import pytest

from backend.motion.skeleton import JOINT_NAMES
from protocol import PROTOCOL_VERSION, ChoreoClient, ChoreoError, Message, read_connection_file
from tests.server_fixtures import FAST_STEPS, assert_serving, wait_for, wav_bytes

SONG = wav_bytes(7.0)


def test_connection_file_describes_the_running_server(backend_server, monkeypatch):
    path = backend_server.connection_file
    assert path.name == f"backend-{backend_server.proc.pid}.json" and path.parent.name == "runtime"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    info = read_connection_file(path)
    assert info["pid"] == backend_server.proc.pid
    assert info["endpoint"].startswith("tcp://127.0.0.1:")
    assert info["version"] == PROTOCOL_VERSION and len(info["token"]) == 64  # its random key
    assert "ready on" in backend_server.log_text()
    # the warm-up goes on after "ready" (worker thread), before the worker's first job
    deadline = time.monotonic() + 120
    while "warm-up finished" not in backend_server.log_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    log = backend_server.log_text()
    assert "warm-up finished" in log and log.index("ready on") < log.index("warm-up finished")
    monkeypatch.setenv("CHOREO_RUNTIME_DIR", str(path.parent))
    with ChoreoClient.from_connection_file() as client:  # finds the newest file there
        assert client.endpoint == info["endpoint"]
        assert client.hello()["protocol"] == "choreo"


def test_hello_describes_models_skeleton_and_limits(backend_server):
    with backend_server.client() as client:
        hello = client.hello()
    assert hello["protocol"] == "choreo" and hello["protocol_version"] == PROTOCOL_VERSION
    assert hello["joint_names"] == list(JOINT_NAMES) and hello["fps"] == 30
    assert hello["device"] == "cpu"
    models = {m["name"]: m for m in hello["models"]}
    default = models[hello["default_model"]]
    assert default["contact_names"] == hello["contact_names"][default["name"]]
    assert {o["name"] for o in default["options"]} >= {"steps", "guidance"}
    assert hello["limits"] == {"max_audio_seconds": 600.0, "max_message_bytes": 256 * 1024 * 1024,
                               "max_queue": 8, "client_timeout_s": 10.0, "max_buffers": 16}
    assert {"generate", "inpaint"} <= set(hello["requests"]) and hello["reserved"] == []
    assert default["editing"] == {"inpaint": True,
                                  "abilities": ["continuation", "range", "joints", "keyframes"]}
    assert hello["stats"]["uptime_s"] > 0


def test_ping(backend_server):
    with backend_server.client() as client:
        before = time.time()
        pong = client.ping()
    assert abs(pong["time"] - before) < 5
    assert set(pong["stats"]) >= {"jobs_accepted", "jobs_done", "jobs_dropped", "queue_length"}


def test_generate_streams_every_frame_once_in_order(backend_server):
    chunks, progress = [], []
    with backend_server.client() as client:
        result = client.generate(SONG, seed=5, options={"steps": FAST_STEPS}, seconds=7.0,
                                 on_chunk=chunks.append, on_progress=lambda s, f: progress.append((s, f)))
    n = 210
    assert result.num_frames == n and result.fps == 30
    assert result.rotations.shape == (n, 24, 4) and result.rotations.dtype == np.float32
    assert result.root_translation.shape == (n, 3)
    assert result.contacts.shape == (n, len(result.contact_names))
    np.testing.assert_allclose(np.linalg.norm(result.rotations, axis=-1), 1.0, atol=1e-4)
    assert np.isfinite(result.root_translation).all()
    assert ((result.contacts >= 0) & (result.contacts <= 1)).all()

    starts = [c.start for c in chunks]
    assert starts == sorted(starts) and starts[0] == 0
    assert [c.start + c.num_frames for c in chunks[:-1]] == starts[1:]
    assert sum(c.num_frames for c in chunks) == n

    stages = [s for s, _ in progress]
    assert stages[0] == "features" and "sampling" in stages
    for stage in set(stages):
        fractions = [f for s, f in progress if s == stage]
        assert fractions == sorted(fractions) and fractions[-1] == 1.0

    summary = result.summary
    assert summary["frames"] == n and summary["seed"] == 5 and summary["options"]["steps"] == FAST_STEPS
    assert summary["tempo_bpm"] == pytest.approx(120, rel=0.05)
    assert len(summary["content_hash"]) == 64 and summary["song_seconds"] == pytest.approx(7.0)
    assert set(result.timings) == {"queue_s", "features_s", "generation_s", "total_s", "first_chunk_s"}
    assert result.timings["first_chunk_s"] <= result.timings["total_s"]


def test_same_seed_same_dance_and_a_span_counts_frames_from_its_start(backend_server):
    with backend_server.client() as client:
        whole = client.generate(SONG, seed=9, options={"steps": FAST_STEPS}, seconds=3.0)
        again = client.generate(SONG, seed=9, options={"steps": FAST_STEPS}, seconds=3.0)
        other = client.generate(SONG, seed=10, options={"steps": FAST_STEPS}, seconds=3.0)
        chunks = []
        span = client.generate(SONG, seed=9, options={"steps": FAST_STEPS}, start=2.0, seconds=3.0,
                               on_chunk=chunks.append)
        tail = client.generate(SONG, seed=9, options={"steps": FAST_STEPS}, start=5.5)
    np.testing.assert_array_equal(whole.rotations, again.rotations)
    assert not np.allclose(whole.root_translation, other.root_translation)
    assert span.num_frames == 90 and span.summary["start_frame"] == 60 and chunks[0].start == 0
    assert tail.num_frames == 45  # to the end of the 7 s song


def test_cancel_stops_a_running_job_quickly(backend_server):
    with backend_server.client(heartbeat_interval=0.5) as client:
        msg_id = client.submit_generate(wav_bytes(20.0, seed=3), seed=1, options={"steps": 200})
        seen = wait_for(client, msg_id, {"progress"})
        job_id = seen[0].job_id
        while not any(m.type == "progress" and m.content["stage"] == "sampling" for m in seen):
            seen += wait_for(client, msg_id, {"progress"})
        t0 = time.monotonic()
        client.cancel(job_id)
        end = wait_for(client, msg_id, {"cancelled", "done", "error"})[-1]
        assert end.type == "cancelled" and end.job_id == job_id, end
        assert end.content["reason"] == "cancel"
        assert time.monotonic() - t0 < 5.0
        with pytest.raises(ChoreoError) as info:  # it is gone now
            client.request(Message("cancel", {"job_id": job_id}))
        assert info.value.code == "unknown_job"
    assert_serving(backend_server)


def test_cancel_a_queued_job_removes_it_at_once(backend_server):
    with backend_server.client(heartbeat_interval=0.5) as client:
        long_id = client.submit_generate(wav_bytes(20.0, seed=3), seed=1, options={"steps": 200})
        queued_id = client.submit_generate(SONG, seed=2, options={"steps": FAST_STEPS})
        long_job = wait_for(client, long_id, {"accepted"})[-1].job_id
        accepted = wait_for(client, queued_id, {"accepted"})[-1]
        assert accepted.content["queue_position"] == 1
        client.cancel(accepted.job_id)
        end = wait_for(client, queued_id, {"cancelled", "done", "error"})[-1]
        assert end.type == "cancelled"
        # the long one runs on: "accepted" with queue position 0 means no job is ahead of
        # it, not that the worker thread has already taken it (under load it may take a
        # moment), so wait for it to show as running
        deadline = time.monotonic() + 10.0
        while (running := client.ping()["stats"]["running_job"]) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert running == long_job
        client.cancel(long_job)
        assert wait_for(client, long_id, {"cancelled", "done", "error"})[-1].type == "cancelled"


def test_two_clients_at_once_queue_and_both_finish(backend_server):
    with backend_server.client() as first, backend_server.client() as second:
        a = first.submit_generate(wav_bytes(4.0, seed=1), seed=1, options={"steps": 4})
        b = second.submit_generate(wav_bytes(3.0, seed=2), seed=2, options={"steps": FAST_STEPS})
        accepted_b = wait_for(second, b, {"accepted"})[-1]
        assert accepted_b.content["queue_position"] == 1
        done_a = wait_for(first, a, {"done", "error"})[-1]
        done_b = wait_for(second, b, {"done", "error"})[-1]
    assert (done_a.type, done_b.type) == ("done", "done")
    assert done_a.content["summary"]["frames"] == 120 and done_b.content["summary"]["frames"] == 90
    assert done_b.content["timings"]["queue_s"] > 0


def test_a_model_at_a_rate_the_music_analysis_cannot_feed_is_refused_at_load():
    """Each model has its own rate (hello lists it, its jobs carry it); the server checks it
    when it loads the model, not when a job first runs."""
    from backend.models.registry import DEFAULT_MODEL, load_generator
    from backend.music.features import FEATURE_FPS
    from backend.server.server import check_frame_rate

    generator = load_generator(DEFAULT_MODEL, "cpu")
    check_frame_rate(generator, FEATURE_FPS)  # every bundled model runs at the features' 30 fps
    generator.fps = 25  # as if its checkpoint had been trained at 25 fps
    with pytest.raises(ChoreoError, match=f"{DEFAULT_MODEL} makes motion at 25 fps.*at 30 fps only"):
        check_frame_rate(generator, FEATURE_FPS)


def test_shutdown_cancels_jobs_replies_and_exits_cleanly(backend_server):
    with backend_server.client(heartbeat_interval=0.5) as client:
        msg_id = client.submit_generate(wav_bytes(20.0, seed=3), seed=1, options={"steps": 200})
        wait_for(client, msg_id, {"accepted"})
        reply = client.shutdown()
        assert reply["reason"] == "shutdown requested"
        assert wait_for(client, msg_id, {"cancelled", "done", "error"})[-1].content == {"reason": "shutdown"}
    assert backend_server.proc.wait(30) == 0
    assert not backend_server.connection_file.exists()
    assert "removed connection file" in backend_server.log_text()
