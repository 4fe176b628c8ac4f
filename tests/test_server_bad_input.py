"""Every kind of bad input over the real socket: each gets a clear error (or, for a vanished
client, its job is dropped), the server stays up, and a normal request right after works.

The module's server has a token, a 20 s audio limit, a queue of one and a 4 s client
timeout, so that every limit can be hit quickly. Raw DEALER sockets send what the
client class never would.
"""

from __future__ import annotations

import io
import json
import signal
import time

import numpy as np
import pytest
import soundfile as sf
import zmq

from backend.server import ServerConfig, ServerConfigError, ServerStartError, start_server_process
from protocol import ChoreoClient, ChoreoError, Message, decode, encode
from tests.server_fixtures import FAST_STEPS, assert_serving, start_test_server, wait_for, wav_bytes

TOKEN = "test-token-0123456789"
HARD_LIMIT = 120 * 1024 * 1024
"""The bad-input server's ZMQ_MAXMSGSIZE; its soft limit is set to 64 MiB below."""
SOFT_LIMIT = 64 * 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    proc = start_test_server(tmp_path_factory.mktemp("bad_input"), token=TOKEN, max_audio_seconds=20.0,
                             max_queue=1, client_timeout=4.0, hard_max_message_bytes=HARD_LIMIT,
                             max_message_bytes=SOFT_LIMIT)
    yield proc
    proc.stop()


@pytest.fixture
def raw(server):
    """A bare DEALER socket connected to the server."""
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(server.endpoint)
    yield sock
    sock.close()


def client(server, **kwargs) -> ChoreoClient:
    return server.client(heartbeat_interval=0.3, **kwargs)


def answer(sock: zmq.Socket, timeout: float = 10.0) -> Message:
    assert sock.poll(int(timeout * 1000)), "the server did not answer"
    return decode(sock.recv_multipart())


def raw_frames(kind: str, buffers=None, token: str | None = TOKEN, **header) -> list[bytes]:
    frames = [bytes(f) for f in encode(Message(kind, buffers=buffers or {}, token=token))]
    head = json.loads(frames[0])
    head.update(header)
    return [json.dumps(head).encode()] + frames[1:]


def expect_job_error(server, audio: bytes, code: str, **kwargs) -> None:
    with client(server) as c:
        with pytest.raises(ChoreoError) as info:
            c.generate(audio, options={"steps": FAST_STEPS}, **kwargs)
    assert info.value.code == code, info.value
    assert info.value.message


# -- audio -----------------------------------------------------------------------------------

def test_non_audio_bytes(server):
    expect_job_error(server, b"this is not a sound file at all" * 100, "audio_undecodable")
    expect_job_error(server, b"RIFF\x00\x00\x00\x00WAVEjunk" + bytes(1000), "audio_undecodable")
    assert_serving(server)


def test_empty_audio(server):
    expect_job_error(server, b"", "audio_empty")
    silent = io.BytesIO()
    sf.write(silent, np.zeros(0, np.float32), 22050, format="WAV")
    expect_job_error(server, silent.getvalue(), "audio_empty")
    assert_serving(server)


def test_audio_over_the_limit(server):
    long_song = wav_bytes(25.0, sample_rate=8000)  # the server allows 20 s
    t0 = time.monotonic()
    expect_job_error(server, long_song, "audio_too_long")
    assert time.monotonic() - t0 < 5  # refused from the header, not after decoding
    assert_serving(server, generate=True)


# -- generation parameters -------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, code", [
    ({"model": "no-such-model"}, "unknown_model"),
    ({"options": {"no_such_option": 1}}, "bad_option"),
    ({"options": {"steps": 0}}, "bad_option"),
    ({"options": {"steps": 2.5}}, "bad_option"),
    ({"options": {"steps": 10_000}}, "bad_option"),
    ({"options": {"guidance": "loud"}}, "bad_option"),
    ({"seed": -1}, "bad_option"),
    ({"seed": 2**40}, "bad_option"),
    ({"start": -1.0}, "bad_range"),
    ({"start": 10**400}, "bad_range"),  # a JSON integer too large for a float
    ({"seconds": 1e308}, "bad_range"),
    ({"seconds": 0.0}, "bad_range"),
    ({"start": 9.0}, "bad_range"),  # the song is 3 s: known only after decoding
    ({"start": 1.0, "seconds": 5.0}, "bad_range"),
])
def test_bad_generation_parameters(server, kwargs, code):
    with client(server) as c:
        msg_id = c.submit_generate(wav_bytes(3.0), **kwargs)
        end = wait_for(c, msg_id, {"done", "error", "cancelled"})[-1]
    assert end.type == "error" and end.content["code"] == code, end.content
    assert end.reply_to == msg_id


@pytest.mark.parametrize("field, value", [("steps", 4), ("guidance", 2.0), ("steps", "many")])
def test_a_top_level_steps_or_guidance_is_refused_naming_the_field(server, raw, field, value):
    """Protocol 1.4 reads steps and guidance in ``options`` only. What a 1.3 client puts at
    the top level is refused, never quietly dropped (the client would get the model's
    default without knowing it), and the refusal names the field and where it goes."""
    audio = np.frombuffer(wav_bytes(2.0), np.uint8)
    raw.send_multipart(raw_frames("generate", {"audio": audio}, version="1.3",
                                  content={"seed": 1, field: value, "options": {}}))
    reply = answer(raw)
    assert reply.type == "error" and reply.content["code"] == "bad_option", reply.content
    assert repr(field) in reply.content["message"] and "options" in reply.content["message"]
    assert_serving(server)


def test_a_1_3_clients_null_steps_and_guidance_mean_the_models_defaults(server, raw):
    """1.3 clients send ``"steps": null, "guidance": null`` with every request: still accepted."""
    audio = np.frombuffer(wav_bytes(2.0), np.uint8)
    raw.send_multipart(raw_frames("generate", {"audio": audio}, version="1.3", content={
        "seed": 1, "seconds": 1.0, "steps": None, "guidance": None, "options": {"steps": FAST_STEPS}}))
    accepted = answer(raw)
    assert accepted.type == "accepted" and accepted.content["options"]["steps"] == FAST_STEPS, accepted.content
    raw.send_multipart(raw_frames("cancel", content={"job_id": accepted.job_id}))
    messages = [answer(raw)]
    while messages[-1].type not in ("done", "cancelled", "error"):
        messages.append(answer(raw))
    assert messages[-1].type in ("done", "cancelled"), messages[-1].content


def test_generate_without_an_audio_buffer(server, raw):
    raw.send_multipart(raw_frames("generate"))
    reply = answer(raw)
    assert reply.type == "error" and reply.content["code"] == "bad_message"
    assert "audio" in reply.content["message"]


# -- malformed messages ----------------------------------------------------------------------

def test_unknown_message_types(server):
    with client(server) as c:
        for kind in ("dance_please", "motion_chunk", "hello_reply"):
            with pytest.raises(ChoreoError) as info:
                c.request(Message(kind))
            assert info.value.code == "unknown_type"
    assert_serving(server)


def test_protocol_versions(server, raw):
    frames = raw_frames("hello", version="2.0")
    raw.send_multipart(frames)
    reply = answer(raw)
    assert reply.type == "error" and reply.content["code"] == "unsupported_version"
    assert reply.reply_to == json.loads(frames[0])["msg_id"]
    raw.send_multipart(raw_frames("hello", version="1.9"))  # a newer minor is fine
    assert answer(raw).type == "hello_reply"


def test_header_that_is_not_json(server, raw):
    raw.send_multipart([b"\x00\x01 definitely not json"])
    reply = answer(raw)
    assert reply.content["code"] == "bad_message" and reply.reply_to is None
    assert_serving(server)


def test_truncated_multipart(server, raw):
    buffers = {"audio": np.frombuffer(wav_bytes(2.0), np.uint8), "extra": np.zeros(4, np.float32)}
    frames = raw_frames("generate", buffers)
    raw.send_multipart(frames[:2])  # the header lists 2 buffers, 1 is sent
    reply = answer(raw)
    assert reply.content["code"] == "truncated_message"
    assert reply.reply_to == json.loads(frames[0])["msg_id"]
    raw.send_multipart(frames[:2] + [frames[2][:-3]])  # a buffer shorter than its header says
    assert answer(raw).content["code"] == "truncated_message"
    raw.send_multipart(frames[:2] + [frames[2] + b"1234"])  # ... or longer
    assert answer(raw).content["code"] == "bad_message"
    assert_serving(server, generate=True)


def test_too_many_frames(server, raw):
    raw.send_multipart(raw_frames("ping") + [b"x"] * 40)
    assert answer(raw).content["code"] == "bad_message"


def test_deeply_nested_json_is_refused_not_fatal(server, raw):
    raw.send_multipart([b"[" * 100_000])  # json.loads would hit the recursion limit
    assert answer(raw).content["code"] == "bad_message"
    raw.send_multipart([b"[" * 100_000] + [b"x"] * 20)  # ... also in a message refused for its size
    assert answer(raw).content["code"] == "bad_message"
    assert_serving(server, generate=True)


def test_a_100_megabyte_frame_gets_message_too_large(server, raw):
    junk = np.zeros(100 * 1024 * 1024, np.uint8)
    frames = raw_frames("generate", {"audio": junk})
    raw.send_multipart(frames, copy=False)
    reply = answer(raw, timeout=60)
    assert reply.content["code"] == "message_too_large"
    assert reply.reply_to == json.loads(frames[0])["msg_id"]
    raw.send(junk, copy=False)  # not even a header: just 100 MB of zeros
    reply = answer(raw, timeout=60)
    assert reply.content["code"] == "message_too_large" and reply.reply_to is None
    assert_serving(server, generate=True)


def test_a_frame_over_the_hard_limit_is_cut_off_by_zeromq(server, raw):
    raw.send_multipart(raw_frames("generate", {"audio": np.zeros(HARD_LIMIT + 1, np.uint8)}), copy=False)
    assert not raw.poll(2000), "ZeroMQ drops the connection: no reply is possible"
    raw.send_multipart(raw_frames("hello"))  # the socket reconnects by itself
    assert answer(raw).type == "hello_reply"
    assert_serving(server)


# -- auth --------------------------------------------------------------------------------------

def test_requests_need_the_token(server):
    for token in (None, "wrong-token"):
        with ChoreoClient(server.endpoint, token=token, timeout=10) as c:
            for request in ("hello", "shutdown"):
                with pytest.raises(ChoreoError) as info:
                    c.request(Message(request))
                assert info.value.code == "unauthorized"
            with pytest.raises(ChoreoError) as info:
                c.generate(wav_bytes(2.0))
            assert info.value.code == "unauthorized"
    assert_serving(server)


# -- jobs -------------------------------------------------------------------------------------

def test_cancel_unknown_or_someone_elses_job(server):
    with client(server) as owner, client(server) as other:
        with pytest.raises(ChoreoError) as info:
            owner.request(Message("cancel", {"job_id": "f" * 32}))
        assert info.value.code == "unknown_job"
        msg_id = owner.submit_generate(wav_bytes(15.0, seed=4), seed=1, options={"steps": 200})
        job_id = wait_for(owner, msg_id, {"accepted"})[-1].job_id
        with pytest.raises(ChoreoError) as info:
            other.request(Message("cancel", {"job_id": job_id}))
        assert info.value.code == "unknown_job"
        owner.cancel(job_id)
        assert wait_for(owner, msg_id, {"cancelled", "done", "error"})[-1].type == "cancelled"


def test_queue_full(server):
    with client(server) as c:
        running = c.submit_generate(wav_bytes(15.0, seed=4), seed=1, options={"steps": 200})
        running_job = wait_for(c, running, {"accepted"})[-1].job_id
        wait_for(c, running, {"progress"})  # it has left the queue and runs
        queued = c.submit_generate(wav_bytes(2.0), options={"steps": FAST_STEPS})
        queued_job = wait_for(c, queued, {"accepted"})[-1].job_id
        refused = c.submit_generate(wav_bytes(2.0), options={"steps": FAST_STEPS})  # max_queue is 1
        end = wait_for(c, refused, {"error", "accepted"})[-1]
        assert end.type == "error" and end.content["code"] == "queue_full"
        for msg_id, job_id in ((queued, queued_job), (running, running_job)):
            c.cancel(job_id)
            assert wait_for(c, msg_id, {"cancelled", "done", "error"})[-1].type == "cancelled"
    assert_serving(server, generate=True)


def dropped(server) -> int:
    with client(server) as c:
        return c.ping()["stats"]["jobs_dropped"]


def test_a_client_that_disconnects_mid_stream_has_its_job_dropped(server):
    before = dropped(server)
    c = client(server)
    msg_id = c.submit_generate(wav_bytes(15.0, seed=5), seed=1, options={"steps": 200})
    wait_for(c, msg_id, {"progress"})
    c.close()  # Blender crashed
    wait_for_drop(server, before, timeout=10)
    assert dropped(server) == before + 1
    assert "is gone: it disconnected" in server.log_text()
    assert_job_stops(server)
    assert_serving(server, generate=True)


def wait_for_drop(server, before: int, timeout: float) -> None:
    """Wait (bounded) until the server's dropped-job count moves past ``before``."""
    deadline = time.monotonic() + timeout
    while dropped(server) == before and time.monotonic() < deadline:
        time.sleep(0.1)


def assert_job_stops(server) -> None:
    """The dropped job stops within a few sampling steps (it checks its flag at each one)."""
    deadline = time.monotonic() + 5
    with client(server) as c:
        while c.ping()["stats"]["running_job"] is not None:
            assert time.monotonic() < deadline, "the dropped job is still running"
            time.sleep(0.05)


def test_a_silent_client_has_its_job_dropped(server, raw):
    before = dropped(server)
    raw.send_multipart(raw_frames("generate", {"audio": np.frombuffer(wav_bytes(15.0, seed=6), np.uint8)},
                                  content={"seed": 1, "options": {"steps": 200}}))
    assert answer(raw).type == "accepted"
    # connected but never pings again; the server's client_timeout is 4 s
    wait_for_drop(server, before, timeout=15)
    assert dropped(server) == before + 1
    assert "silent for" in server.log_text()
    # it was only silent, not gone: it is told its job is over instead of waiting forever
    messages = [answer(raw, timeout=30)]
    while messages[-1].type not in ("error", "done", "cancelled"):
        messages.append(answer(raw, timeout=30))
    assert messages[-1].type == "error" and messages[-1].content["code"] == "client_timeout", messages[-1]
    assert raw.poll(500) == 0  # and nothing more
    assert_job_stops(server)
    assert_serving(server, generate=True)


def test_a_queued_job_of_a_silent_client_is_ended_with_client_timeout(server, raw):
    with client(server) as busy:
        running = busy.submit_generate(wav_bytes(15.0, seed=4), seed=1, options={"steps": 200})
        running_job = wait_for(busy, running, {"accepted"})[-1].job_id
        raw.send_multipart(raw_frames("generate", {"audio": np.frombuffer(wav_bytes(3.0, seed=7), np.uint8)},
                                      content={"seed": 2}))
        queued = answer(raw)
        assert queued.type == "accepted" and queued.content["queue_position"] == 1
        ended = answer(raw, timeout=15)  # the raw client never pings
        assert ended.type == "error" and ended.content["code"] == "client_timeout"
        assert ended.job_id == queued.job_id
        # the busy client did not poll while this test waited either: its running job
        # was stopped at the same check, and it hears so when it next reads
        end = wait_for(busy, running, {"cancelled", "done", "error"})[-1]
        assert end.type == "error" and end.content["code"] == "client_timeout" and end.job_id == running_job
    assert_serving(server)


# -- addresses and signals ----------------------------------------------------------------------

def test_a_public_address_needs_both_allow_remote_and_a_token(tmp_path):
    for config in (ServerConfig(host="0.0.0.0"), ServerConfig(host="192.168.1.20", token="t"),
                   ServerConfig(host="0.0.0.0", allow_remote=True), ServerConfig(host="example.com")):
        with pytest.raises(ServerConfigError) as info:
            config.validate()
        assert info.value.code == "remote_bind_refused" and "--allow-remote" in info.value.message
    ServerConfig(host="0.0.0.0", allow_remote=True, token="t").validate()
    ServerConfig(host="::1").validate()
    ServerConfig(host="localhost").validate()

    with pytest.raises(ServerStartError) as info:  # the real process refuses too, at once
        start_server_process(ServerConfig(host="0.0.0.0", connection_file=tmp_path / "c.json"),
                             startup_timeout=60)
    assert "status 2" in str(info.value) and "not a loopback address" in str(info.value)
    assert not (tmp_path / "c.json").exists()


def test_sigterm_stops_the_server_cleanly(server):
    assert_serving(server)
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(30) == 0
    assert not server.connection_file.exists()
    assert "signal SIGTERM" in server.log_text()
