"""``protocol.job_stream.JobStream``: one job followed without blocking, as the Blender add-on
follows it from a timer.

Most tests run against a real backend process over loopback (``backend_server``); the
last ones put a bare ROUTER socket in the backend's place, to be a backend that
misbehaves (falls silent, changes its frame rate mid-job) as a real one never does.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import zmq

from protocol import ChoreoClient, ChoreoTimeout, JobStream, Message, StreamedChunk, decode, encode
from tests.server_fixtures import FAST_STEPS, wav_bytes

SONG = wav_bytes(3.0, seed=21)
FAST = {"steps": FAST_STEPS}


def follow(stream: JobStream, timeout: float = 120.0) -> tuple[list[StreamedChunk], list[tuple[str, float]]]:
    """Poll a stream to its end as a UI timer would; its chunks and (stage, progress) seen."""
    chunks: list[StreamedChunk] = []
    seen: list[tuple[str, float]] = []
    deadline = time.monotonic() + timeout
    while not stream.finished:
        assert time.monotonic() < deadline, f"the job did not end: {stream.state} {stream.stage}"
        chunks += stream.poll()
        seen.append((stream.stage, stream.progress))
        time.sleep(0.01)
    chunks += stream.poll()  # nothing arrives after the end
    return chunks, seen


def test_a_followed_dance_arrives_in_order_with_its_rate_and_matches_the_blocking_call(backend_server):
    with backend_server.client(heartbeat_interval=0.5) as client:
        stream = client.start_generate(SONG, seed=4, seconds=2.0, options=FAST)
        assert stream.state == "running" and stream.stage == "queued" and stream.job_id is None
        chunks, seen = follow(stream)
        assert client.poll_once() == []  # a followed job's messages went to its stream only
        assert client.open_jobs == {}
        blocking = client.generate(SONG, seed=4, seconds=2.0, options=FAST)
    assert stream.state == "done" and stream.failure is None and stream.message == ""
    assert stream.accepted["fps"] == stream.fps == 30 and all(c.fps == 30 for c in chunks)
    assert stream.summary["frames"] == 60 and stream.summary["fps"] == 30
    assert [c.start for c in chunks] == list(np.cumsum([0] + [c.num_frames for c in chunks[:-1]]))
    assert sum(c.num_frames for c in chunks) == stream.frames_received == stream.frames_total == 60
    assert all(c.job_id == stream.job_id for c in chunks)
    stages = [stage for stage, _ in seen]
    assert "sampling" in stages and stages[-1] == "sampling"
    progress = [p for _, p in seen]
    assert progress == sorted(progress) and progress[-1] == 1.0
    # the blocking call follows the same stream: the same seed gives the same frames
    assert np.array_equal(np.concatenate([c.rotations for c in chunks]), blocking.rotations)
    assert np.array_equal(np.concatenate([c.root_translation for c in chunks]), blocking.root_translation)
    assert blocking.fps == 30 and blocking.summary["seed"] == 4


def test_two_jobs_of_one_client_each_get_their_own_messages(backend_server):
    with backend_server.client(heartbeat_interval=0.5) as client:
        first = client.start_generate(SONG, seed=1, seconds=1.0, options=FAST)
        raw_id = client.submit_generate(SONG, seed=2, seconds=1.5, options=FAST)  # read as messages
        second = client.start_generate(SONG, seed=3, seconds=2.0, options=FAST)
        got: list[Message] = []
        deadline = time.monotonic() + 120
        a, b = [], []
        while not (first.finished and second.finished and any(m.type == "done" for m in got)):
            assert time.monotonic() < deadline
            a += first.poll()
            b += second.poll()
            got += client.poll_once()
            time.sleep(0.01)
    assert first.state == second.state == "done"
    assert sum(c.num_frames for c in a) == 30 and sum(c.num_frames for c in b) == 60
    assert first.job_id != second.job_id
    assert {c.job_id for c in a} == {first.job_id} and {c.job_id for c in b} == {second.job_id}
    assert {m.reply_to for m in got} == {raw_id}  # the unfollowed job's messages, and only them
    assert got[0].type == "accepted" and got[-1].type == "done"


def test_an_error_ends_the_stream_with_the_backends_code(backend_server):
    with backend_server.client() as client:
        stream = client.start_generate(b"this is not a sound file" * 50, seed=1, options=FAST)
        chunks, _ = follow(stream, timeout=60)
    assert chunks == [] and stream.state == "error"
    assert stream.failure is not None and stream.failure.code == "audio_undecodable"
    assert stream.message.startswith("audio_undecodable: ")
    assert stream.job_id is not None and stream.failure.job_id == stream.job_id


def test_a_cancel_before_accepted_is_sent_once_the_job_is_named(backend_server):
    with backend_server.client(heartbeat_interval=0.5) as client:
        stream = client.start_generate(wav_bytes(15.0, seed=3), seed=1, options={"steps": 200})
        stream.cancel()  # nothing has been read: the backend has not named the job yet
        assert stream.state == "running"
        follow(stream, timeout=60)
        assert client.ping()["stats"]["running_job"] is None
    assert stream.state == "cancelled", stream.message
    assert stream.message == "cancelled (cancel)" and stream.failure.code == "cancelled"
    assert stream.frames_received < 450


def test_a_malformed_request_option_is_refused_before_any_job(backend_server):
    with backend_server.client() as client:
        stream = client.start_generate(SONG, seed=1, options={"steps": "many"})
        follow(stream, timeout=30)
    assert stream.state == "error" and stream.failure.code == "bad_option" and stream.job_id is None


# -- a backend that misbehaves: a bare ROUTER socket ------------------------------------------

@pytest.fixture
def fake_backend():
    router = zmq.Context.instance().socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    port = router.bind_to_random_port("tcp://127.0.0.1")
    yield router, f"tcp://127.0.0.1:{port}"
    router.close()


def _chunk(msg_id: str, start: int, n: int, fps: float) -> Message:
    q = np.zeros((n, 24, 4), np.float32)
    q[..., 0] = 1
    return Message("motion_chunk", {"start": start, "frames": n, "fps": fps, "contact_names": ["l"]},
                   {"rotations": q, "root_translation": np.zeros((n, 3), np.float32),
                    "contacts": np.zeros((n, 1), np.float32)}, reply_to=msg_id, job_id="j1")


def _requests(router: zmq.Socket, timeout_ms: int = 2000) -> tuple[bytes, list[Message]]:
    assert router.poll(timeout_ms), "the client sent nothing"
    got, identity = [], b""
    while router.poll(50):
        identity, *frames = router.recv_multipart()
        got.append(decode(frames))
    return identity, got


def test_a_backend_that_falls_silent_ends_the_stream_with_timeout(fake_backend):
    router, endpoint = fake_backend
    with ChoreoClient(endpoint, timeout=0.4, heartbeat_interval=0.1) as client:
        stream = client.start_generate(b"RIFF-bytes", seed=1)
        identity, sent = _requests(router)
        router.send_multipart([identity, *encode(Message("accepted", {"fps": 30}, reply_to=stream.msg_id,
                                                         job_id="j1"))])
        follow(stream, timeout=10)
        assert client.open_jobs == {} and client.poll_once() == []
    assert sent[0].type == "generate" and stream.job_id == "j1" and stream.fps == 30
    assert stream.state == "error" and isinstance(stream.failure, ChoreoTimeout)
    assert stream.message.startswith("timeout: ")


def test_a_chunk_at_another_rate_ends_the_job_and_stops_it_on_the_backend(fake_backend):
    router, endpoint = fake_backend
    with ChoreoClient(endpoint, timeout=5.0) as client:
        stream = client.start_generate(b"RIFF-bytes", seed=1)
        identity, _ = _requests(router)
        for message in (Message("accepted", {"fps": 30}, reply_to=stream.msg_id, job_id="j1"),
                        _chunk(stream.msg_id, 0, 4, 30), _chunk(stream.msg_id, 4, 4, 25)):
            router.send_multipart([identity, *encode(message)])
        chunks, _ = follow(stream, timeout=10)
        _, after = _requests(router)
    assert [c.start for c in chunks] == [0]  # the chunk at 25 fps is not handed out
    assert stream.state == "error" and stream.failure.code == "bad_message"
    assert "25 fps" in stream.message and "30" in stream.message
    cancels = [m for m in after if m.type == "cancel"]
    assert [m.content["job_id"] for m in cancels] == ["j1"]


def test_every_progress_message_is_kept_when_many_arrive_between_two_polls(backend_server):
    """A caller that polls late still sees each stage end (the blocking client reports every
    ``progress`` message through ``take_progress``; a stage's 1.0 must not be lost)."""
    with backend_server.client() as client:
        stream = client.start_generate(SONG, seed=2, seconds=2.0, options=FAST)
        deadline = time.monotonic() + 60
        while not stream.finished and time.monotonic() < deadline:
            time.sleep(1.0)  # let several messages pile up before each poll
            stream.poll()
        progress = stream.take_progress()
    assert stream.state == "done"
    for stage in ("features", "sampling"):
        fractions = [f for s, f in progress if s == stage]
        assert fractions == sorted(fractions) and fractions[-1] == 1.0, (stage, progress)
    assert stream.take_progress() == []
