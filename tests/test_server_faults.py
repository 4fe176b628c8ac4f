"""Faults found by testing the backend from outside (issue 16), each reproduced over a real
socket against a real server process:

* a request without the server's key is refused (every server has one, in its
  connection file only), and the key shows in no log and on no command line;
* a client that closes frees its jobs' queue places at once (not when its job reaches
  the front, nor after the client timeout);
* a backend killed with SIGKILL: the polling API ends the open job with ``timeout``, and
  its stale connection file is named, removed and skipped.

Every wait is on a condition with a generous deadline, never a fixed sleep.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import time

import numpy as np
import pytest
import zmq

from backend.server import ServerConfig, ServerConfigError, add_server_arguments, config_from_args
from protocol import ChoreoClient, ChoreoError, Message, decode, encode, sign
from tests.server_fixtures import FAST_STEPS, assert_serving, start_test_server, wait_for, wav_bytes

LONG_SONG = wav_bytes(15.0, seed=4)
LONG_JOB = {"seed": 1, "options": {"steps": 200}}
"""A job that samples for many seconds on the CPU (it is always cancelled)."""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A default server (its own random key), with a queue of two and a client timeout long
    enough that no test here can be explained by it."""
    proc = start_test_server(tmp_path_factory.mktemp("faults"), default_location=True, max_queue=2,
                             client_timeout=120.0)
    yield proc
    proc.stop()


@pytest.fixture
def raw(server):
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(server.endpoint)
    yield sock
    sock.close()


def answer(sock: zmq.Socket, timeout: float = 30.0) -> Message:
    assert sock.poll(int(timeout * 1000)), "the server did not answer"
    return decode(sock.recv_multipart())


def stats(server) -> dict:
    with server.client(timeout=30) as c:
        return c.ping()["stats"]


def wait_until(condition, timeout: float = 60.0, what: str = "the condition"):
    """Poll ``condition`` until it returns something true; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout} s"
        time.sleep(0.05)
    return value


# -- 1. the key ---------------------------------------------------------------------------------

def test_every_server_has_a_random_key_in_its_private_connection_file(server):
    info = json.loads(server.connection_file.read_text())
    assert len(info["token"]) == 64 and info["signature_scheme"] == "hmac-sha256"
    assert oct(server.connection_file.stat().st_mode & 0o777) == "0o600"
    assert oct(server.connection_file.parent.stat().st_mode & 0o777) == "0o700"
    with ChoreoClient.from_connection_file(server.connection_file) as c:  # reads and signs with it
        hello = c.hello()
    assert hello["auth"] is True and hello["signature_scheme"] == "hmac-sha256"


def test_requests_without_the_key_are_refused(server, raw):
    key = server.token
    assert key
    for request in ("hello", "ping", "shutdown", "cancel", "generate"):
        buffers = {"audio": np.frombuffer(wav_bytes(1.0), np.uint8)} if request == "generate" else {}
        unsigned = encode(Message(request, buffers=buffers))
        variants = {
            "no key": unsigned,
            "signed with another key": sign(unsigned, "f" * 64),
            "a wrong key carried": encode(Message(request, buffers=buffers, token="0" * 64)),
            "a lone surrogate carried": encode(Message(request, buffers=buffers, token="\ud800")),
        }
        for why, frames in variants.items():
            raw.send_multipart(frames, copy=False)
            reply = answer(raw)
            assert reply.type == "error" and reply.content["code"] == "unauthorized", (request, why)
            assert reply.reply_to == json.loads(bytes(frames[0]))["msg_id"], (request, why)
            assert key not in reply.content["message"]
    signed = sign(encode(Message("hello")), key)
    raw.send_multipart(signed)
    assert answer(raw).type == "hello_reply"
    raw.send_multipart(signed)  # the same signed bytes again: a replay
    assert answer(raw).content["code"] == "unauthorized"
    tampered = sign(encode(Message("ping")), key)
    tampered[0] = tampered[0].replace(b'"type":"ping"', b'"type":"shutdown"')
    raw.send_multipart(tampered)
    assert answer(raw).content["code"] == "unauthorized"
    raw.send_multipart(encode(Message("ping", token=key)))  # carrying the key itself (1.2 clients)
    assert answer(raw).type == "pong"
    assert_serving(server)


def test_the_key_is_in_no_log_and_on_no_command_line(server):
    key = server.token
    assert_serving(server)
    assert key not in server.log_text()
    cmdline = open(f"/proc/{server.proc.pid}/cmdline", "rb").read()
    environ = open(f"/proc/{server.proc.pid}/environ", "rb").read()
    assert key.encode() not in cmdline and key.encode() not in environ


def test_an_open_server_is_for_loopback_only(monkeypatch):
    ServerConfig(open=True).validate()
    for config in (ServerConfig(open=True, host="0.0.0.0", allow_remote=True, token="t"),
                   ServerConfig(open=True, host="192.168.1.20", allow_remote=True)):
        with pytest.raises(ServerConfigError) as info:
            config.validate()
        assert info.value.code in ("remote_bind_refused", "bad_config")
    assert "--open" in ServerConfig(open=True).to_args()
    parser = argparse.ArgumentParser()
    add_server_arguments(parser)
    monkeypatch.setenv("CHOREO_SERVER_TOKEN", "from-the-environment")
    assert config_from_args(parser.parse_args([])).token == "from-the-environment"
    opened = config_from_args(parser.parse_args(["--open"]))  # --open: no key, even from the environment
    assert opened.open and opened.token is None
    with pytest.raises(ServerConfigError):
        config_from_args(parser.parse_args(["--open", "--token", "t"])).validate()


# -- 2. a gone client frees its places at once ------------------------------------------------------

def test_clients_that_close_free_their_queue_places_at_once(server):
    before = stats(server)["jobs_dropped"]
    with server.client(heartbeat_interval=0.5) as busy:
        running = busy.submit_generate(LONG_SONG, **LONG_JOB)
        running_job = wait_for(busy, running, {"accepted"})[-1].job_id
        wait_for(busy, running, {"progress"})  # it has left the queue and runs
        for seed in (2, 3):  # max_queue is 2: these two fill the queue
            gone = server.client()
            msg_id = gone.submit_generate(wav_bytes(2.0, seed=seed), seed=seed, options={"steps": FAST_STEPS})
            assert wait_for(gone, msg_id, {"accepted", "error"})[-1].type == "accepted"
            gone.close()
        # the two places come free when the connections end: long before the running job
        # ends (it samples 200 steps) and long before the 120 s client timeout
        wait_until(lambda: stats(server)["queue_length"] == 0, timeout=30, what="freeing the places")
        now = stats(server)
        assert now["running_job"] == running_job and now["jobs_dropped"] == before + 2
        with server.client() as live:  # a live client gets a place
            msg_id = live.submit_generate(wav_bytes(2.0, seed=5), seed=5, options={"steps": FAST_STEPS})
            accepted = wait_for(live, msg_id, {"accepted", "error"})[-1]
            assert accepted.type == "accepted", accepted.content
            live.cancel(accepted.job_id)
            assert wait_for(live, msg_id, {"cancelled", "done", "error"})[-1].type in ("cancelled", "done")
        busy.cancel(running_job)
        assert wait_for(busy, running, {"cancelled", "done", "error"})[-1].type == "cancelled"
    assert server.log_text().count("is gone: it disconnected") >= 2
    assert_serving(server)


def test_a_client_that_closes_while_its_job_runs_stops_it_without_a_send(server):
    before = stats(server)["jobs_dropped"]
    gone = server.client()
    msg_id = gone.submit_generate(LONG_SONG, **LONG_JOB)
    wait_for(gone, msg_id, {"progress"})
    gone.close()
    wait_until(lambda: stats(server)["jobs_dropped"] == before + 1, timeout=30, what="the drop")
    wait_until(lambda: stats(server)["running_job"] is None, timeout=30, what="the job stopping")
    assert_serving(server, generate=True)


# -- 4. the client side of a killed backend ---------------------------------------------------------

def test_a_killed_backend_ends_polled_jobs_with_timeout_and_leaves_a_stale_file_that_is_skipped(
        tmp_path, monkeypatch):
    proc = start_test_server(tmp_path, default_location=True, open=True, warm_up=False)
    try:
        info = json.loads(proc.connection_file.read_text())
        assert info["token"] is None  # open: no key
        with ChoreoClient(proc.endpoint, timeout=8.0, heartbeat_interval=0.3) as c:
            assert c.hello()["auth"] is False  # unsigned requests are served
            msg_id = c.submit_generate(LONG_SONG, **LONG_JOB)
            got: list[Message] = []
            wait_until(lambda: got.extend(c.poll_once()) or any(m.type == "progress" for m in got),
                       what="the job's first progress")
            os.kill(proc.proc.pid, signal.SIGKILL)
            proc.proc.wait(30)
            end = wait_until(lambda: next((m for m in c.poll_once() if m.type == "error"), None),
                             what="a terminal message for the job")
            assert end.reply_to == msg_id and end.content["code"] == "timeout"
            assert c.open_jobs == {} and c.poll_once() == []
        assert proc.connection_file.exists()  # SIGKILL: nobody removed it
        monkeypatch.setenv("CHOREO_RUNTIME_DIR", str(proc.connection_file.parent))
        with pytest.raises(ChoreoError) as err:
            ChoreoClient.from_connection_file()
        assert err.value.code == "no_backend" and str(proc.connection_file) in err.value.message
        assert not proc.connection_file.exists()
    finally:
        proc.stop()


# -- 5. a small soak: every model, cancels and disconnects, nothing lost ----------------------------

def test_a_small_soak_loses_nothing_and_refuses_no_live_client(server):
    """The soak the benchmarks run with 1,000 jobs, small: two clients that each keep one job
    open (within the server's max_queue of 2), over every loaded model."""
    from backend.server.soak import run_soak

    figures = run_soak(server.endpoint, server.token, server.proc.pid, jobs=16, clients=2, silent=0,
                       cancel_rate=0.2, disconnect_rate=0.2, seed=3, job_timeout=120)
    assert figures.problems == []
    assert figures.jobs == 16 and figures.jobs_without_terminal == 0 and figures.frames_lost == 0
    assert figures.queue_full_to_live_clients == 0 and figures.internal_errors == 0
    assert figures.same_seed_mismatches == 0
    assert figures.terminal_messages + figures.jobs_disconnected == figures.jobs
    assert len(figures.per_model) == len(server.info["models"])
    wait_until(lambda: stats(server)["queue_length"] == 0 and stats(server)["running_job"] is None,
               timeout=60, what="the server going idle")
    assert_serving(server)


LAUNCHER = """
import os, sys
from pathlib import Path
from backend.server import ServerConfig
from backend.server.process import start_server_process
folder = Path(sys.argv[1])
backend = start_server_process(ServerConfig(device="cpu", models=("graph",), warm_up=False,
                                            connection_file=folder / "backend.json"),
                               log_path=folder / "backend.log")
(folder / "pid").write_text(str(backend.proc.pid))
os._exit(0)  # as a crash would: no clean-up, the backend is never told
"""


def _running(pid: int) -> bool:
    """Whether ``pid`` is a live process (an exited one waiting to be reaped is not)."""
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads process states from /proc")
def test_a_backend_ends_when_the_program_that_launched_it_dies(tmp_path):
    """A crashed Blender (or a killed ``choreo demo``) leaves no backend holding a port and memory."""
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    subprocess.run([sys.executable, "-c", LAUNCHER, str(tmp_path)], cwd=root, check=True, timeout=300,
                   env={**os.environ, "PYTHONPATH": root})
    pid = int((tmp_path / "pid").read_text())
    deadline = time.monotonic() + 60.0
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    log = (tmp_path / "backend.log").read_text()
    assert not _running(pid), log[-2000:]
    assert "has exited" in log and not (tmp_path / "backend.json").exists()
