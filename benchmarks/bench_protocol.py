"""What the wire costs: ``motion_chunk`` throughput through a real socket, and round trips.

Throughput. The stream is the server's own: the ``motion_chunk`` messages of a real
dance, built the way ``backend.server.worker`` builds them (same content, same three
float32 buffers, same chunk sizes), encoded with ``protocol.messages.encode`` and sent
from a ZeroMQ ROUTER with the server's socket options. A second process plays the
client: a DEALER that decodes every message and checks it as ``ChoreoClient`` does
(``StreamedChunk.from_message``), then acknowledges the whole stream. One trial is
timed in the sending process from the first ``encode`` to the arrival of that
acknowledgement, so encoding, the loopback TCP hop, decoding and checking are all in it
(plus one small message's way back, which only makes the figure more conservative).
Two processes, because that is what the add-on and the server are: a sender and a
receiver on one core each, not one thread handing bytes to itself.

Latency. ``ping`` -> ``pong`` against the real server process through
``ChoreoClient``, idle and while a generation job runs (see ``busy_ping_latencies``).

Run as a script with ``--receive ENDPOINT COUNT`` it is the receiving process.
"""

from __future__ import annotations

import json
import math
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Sequence

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import zmq  # noqa: E402

from protocol.client import ChoreoClient  # noqa: E402
from protocol.job_stream import JOB_END_TYPES, StreamedChunk  # noqa: E402
from protocol.messages import Message, decode, encode, frames_nbytes, new_id  # noqa: E402

SERVER_SNDHWM = 10000  # backend.server.server sets these on its ROUTER
RECEIVER_START_TIMEOUT_S = 60.0
TRIAL_TIMEOUT_S = 120.0


# -- the stream ----------------------------------------------------------------------


def chunk_message(chunk: StreamedChunk, request_id: str, job_id: str) -> Message:
    """A ``motion_chunk`` exactly as the server's worker sends it (content, buffers, ids)."""
    return Message("motion_chunk",
                   {"start": chunk.start, "frames": chunk.num_frames, "fps": chunk.fps,
                    "contact_names": list(chunk.contact_names)},
                   buffers={"rotations": chunk.rotations, "root_translation": chunk.root_translation,
                            "contacts": chunk.contacts},
                   reply_to=request_id, job_id=job_id)


def dance_stream(chunks: Sequence[StreamedChunk]) -> list[Message]:
    """The messages of one dance: one ``motion_chunk`` per chunk, one job."""
    request_id, job_id = new_id(), new_id()
    return [chunk_message(c, request_id, job_id) for c in chunks]


def stream_nbytes(messages: Sequence[Message]) -> int:
    """Bytes the messages take on the wire (all frames, as ``encode`` makes them)."""
    return sum(frames_nbytes(encode(m)) for m in messages)


# -- throughput ----------------------------------------------------------------------


def _server_like_router(context: zmq.Context) -> zmq.Socket:
    router = context.socket(zmq.ROUTER)
    router.setsockopt(zmq.ROUTER_MANDATORY, 1)
    router.setsockopt(zmq.SNDHWM, SERVER_SNDHWM)
    router.setsockopt(zmq.LINGER, 0)
    return router


def _receive(router: zmq.Socket, timeout_s: float, what: str) -> tuple[bytes, Message]:
    if not router.poll(int(timeout_s * 1000), zmq.POLLIN):
        raise TimeoutError(f"the receiving process sent no {what} within {timeout_s:.0f} s")
    identity, *frames = router.recv_multipart(copy=False)
    return identity.bytes, decode(frames)


def measure_throughput(messages: Sequence[Message], trials: int, repeat: int = 1,
                       python: str = sys.executable) -> dict[str, Any]:
    """Stream ``messages`` (``repeat`` times per trial) to a DEALER in another process.

    Returns the median trial time and what it means per second: motion frames/s,
    messages/s and MB/s (10^6 bytes), with every trial's time and the bytes per trial
    (equal to the encoded messages' size; the receiver's own count is checked against it).
    """
    if not messages or trials < 1 or repeat < 1:
        raise ValueError("need at least one message, one trial and one repeat")
    stream = list(messages) * repeat
    nbytes = stream_nbytes(stream)
    frames = sum(int(m.content["frames"]) for m in stream)
    context = zmq.Context()
    router = _server_like_router(context)
    child = None
    try:
        router.bind("tcp://127.0.0.1:*")
        endpoint = router.getsockopt_string(zmq.LAST_ENDPOINT)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
        child = subprocess.Popen([python, str(Path(__file__).resolve()), "--receive", endpoint, str(len(stream))],
                                 env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE)
        identity, hello = _receive(router, RECEIVER_START_TIMEOUT_S, "hello")
        if hello.type != "hello":
            raise RuntimeError(f"the receiving process said {hello.type!r} first")
        times = []
        for trial in range(trials + 1):  # trial 0 warms both ends up and is not counted
            t0 = time.perf_counter()
            for message in stream:
                router.send_multipart([identity, *encode(message)], copy=False)
            _, ack = _receive(router, TRIAL_TIMEOUT_S, "acknowledgement")
            elapsed = time.perf_counter() - t0
            if ack.content.get("bytes") != nbytes or ack.content.get("frames") != frames:
                raise RuntimeError(f"the receiver counted {ack.content}, {nbytes} bytes and {frames} "
                                   "frames were sent")
            if trial:
                times.append(elapsed)
        router.send_multipart([identity, *encode(Message("shutdown"))])
        child.wait(30)
    finally:
        if child is not None and child.poll() is None:
            child.kill()
            child.wait()
        router.close(linger=0)
        context.term()
    median = statistics.median(times)
    return {"messages": len(stream), "frames": frames, "bytes": nbytes, "trials": trials,
            "repeat": repeat, "times_s": times, "median_s": median,
            "frames_per_s": frames / median, "messages_per_s": len(stream) / median,
            "mb_per_s": nbytes / median / 1e6}


def _receiver_main(endpoint: str, count: int) -> int:
    """The client side: decode and check ``count`` chunk messages, acknowledge, again."""
    context = zmq.Context()
    dealer = context.socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 1000)
    dealer.connect(endpoint)
    dealer.send_multipart(encode(Message("hello")))
    received = nbytes = frames = 0
    while True:
        raw = dealer.recv_multipart(copy=False)
        message = decode(raw)
        if message.type == "shutdown":
            break
        chunk = StreamedChunk.from_message(message)
        received += 1
        nbytes += sum(len(f.buffer) for f in raw)
        frames += chunk.num_frames
        if received == count:
            dealer.send_multipart(encode(Message("pong", {"messages": received, "bytes": nbytes,
                                                          "frames": frames})))
            received = nbytes = frames = 0
    dealer.close()
    context.term()
    return 0


# -- latency -------------------------------------------------------------------------


def ping_latencies(client: ChoreoClient, count: int) -> list[float]:
    """Seconds of ``count`` ``ping`` -> ``pong`` round trips, one after another."""
    out = []
    for _ in range(count):
        t0 = time.perf_counter()
        client.ping()
        out.append(time.perf_counter() - t0)
    return out


def busy_ping_latencies(client: ChoreoClient, audio: bytes, count: int, seconds: float,
                        max_gap_s: float = 0.01, max_jobs: int = 50) -> tuple[list[float], int]:
    """Round trips while the server runs a generation job submitted by the same client.

    A job is submitted, then pings go one at a time, each after a random pause of up
    to ``max_gap_s`` (seeded), so that they spread over the whole job (music analysis
    and sampling) instead of all landing in its first milliseconds, and do not fall
    in step with the server's loop. A round trip counts only if the job had not ended
    (no ``done``/``error``/``cancelled`` among the messages read by the time its
    ``pong`` came back), so every counted ping was answered while the worker was busy
    with that job. When a job ends before ``count`` are collected, another one is
    submitted. Returns the round trips and how many jobs it took. One client does it
    all, as the add-on does: its chunks wait in the inbox while it pings.
    """
    pauses = random.Random(0)
    out: list[float] = []
    jobs = 0
    while len(out) < count and jobs < max_jobs:
        msg_id = client.submit_generate(audio, seed=jobs, seconds=seconds)
        jobs += 1
        ended = False
        while not ended and len(out) < count:
            time.sleep(pauses.uniform(0.0, max_gap_s))
            t0 = time.perf_counter()
            client.ping()
            rtt = time.perf_counter() - t0
            ended = any(m.reply_to == msg_id and m.type in JOB_END_TYPES for m in client.poll_once())
            if not ended:
                out.append(rtt)
        if not ended:
            client.wait_for(lambda m, job=msg_id: m.reply_to == job and m.type in JOB_END_TYPES)
        client.poll_once()  # drop the rest of the job's messages
    return out, jobs


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    """Median and 99th percentile in milliseconds (nearest-rank percentile), and the count."""
    ms = sorted(1000.0 * s for s in seconds)
    if not ms:
        return {"n": 0, "median_ms": math.nan, "p99_ms": math.nan}
    rank = max(0, math.ceil(0.99 * len(ms)) - 1)
    return {"n": len(ms), "median_ms": statistics.median(ms), "p99_ms": ms[rank]}


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--receive":
        sys.exit(_receiver_main(sys.argv[2], int(sys.argv[3])))
    print(json.dumps({"usage": "bench_protocol.py --receive ENDPOINT COUNT"}))
    sys.exit(2)
