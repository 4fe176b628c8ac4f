"""A seeded fuzz of the server: thousands of malformed messages of every request type, over a
real socket to a real server process. Each gets exactly one reply: an ``error`` with the code
the spec gives for its fault and, whenever its header (and ``msg_id``) could be read, that
``msg_id`` as ``reply_to``. Never ``internal``. The server serves normally afterwards.

Every case breaks exactly one thing of an otherwise valid, signed request, so its expected
code is known; none of them can start a job or stop the server.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from typing import Any, Callable

import numpy as np
import pytest
import zmq

from protocol import Message, decode, encode, sign
from protocol.messages import MAX_BUFFERS, MAX_HEADER_BYTES
from tests.server_fixtures import assert_serving, start_test_server, wav_bytes

SEED = 16
CASES = 2400
TIME_BUDGET_S = 60.0

AUDIO = np.frombuffer(wav_bytes(0.5, seed=1), np.uint8)
T = 30
UNCACHED_HASH = "0" * 64


def identity_motion() -> dict[str, np.ndarray]:
    rotations = np.zeros((T, 24, 4), np.float32)
    rotations[..., 0] = 1.0
    keep = np.ones((T, 25), bool)
    keep[10:20] = False  # regenerate frames 10-19: a range edit every model that edits can do
    return {"rotations": rotations, "root_translation": np.zeros((T, 3), np.float32), "keep": keep}


class Case:
    """One malformed request: its frames, the code it must get, and whether its msg_id is readable."""

    def __init__(self, kind: str, header: dict[str, Any], buffers: dict[str, np.ndarray]) -> None:
        self.kind = kind
        self.header = header
        self.buffers = buffers
        self.frames: list[bytes] | None = None  # set to send raw frames instead of header + buffers
        self.signed = True
        self.key: str | None = None  # a key other than the server's
        self.code = ""
        self.readable = True
        self.tamper = False  # signed, then changed

    def build(self, key: str) -> list[bytes]:
        if self.frames is not None:
            frames = self.frames
        else:
            frames = [json.dumps(self.header, separators=(",", ":")).encode()]
            frames += [np.ascontiguousarray(a).view(np.uint8).reshape(-1).tobytes()
                       for a in self.buffers.values()]
        if self.signed and frames and frames[0].startswith(b"{") and frames[0].endswith(b"}"):
            frames = [bytes(f) for f in sign(frames, self.key or key)]
        return frames

    @property
    def msg_id(self) -> str | None:
        return self.header.get("msg_id") if self.readable else None


def base(kind: str) -> Case:
    """A valid request of ``kind`` (the content-level mutations below make it invalid)."""
    buffers: dict[str, np.ndarray] = {}
    content: dict[str, Any] = {}
    if kind == "generate":
        content = {"model": None, "seed": 7, "start": 0.0, "seconds": 0.5, "guidance": None,
                   "steps": None, "options": {}}
        buffers = {"audio": AUDIO}
    elif kind == "inpaint":
        content = {"model": None, "seed": 7, "start": 0.0, "guidance": None, "steps": None,
                   "options": {}, "audio_hash": UNCACHED_HASH}
        buffers = identity_motion()
    elif kind == "cancel":
        content = {"job_id": "f" * 32}
    frames = encode(Message(kind, content, buffers))
    header = json.loads(bytes(frames[0]))
    return Case(kind, header, dict(buffers))


def specs(case: Case) -> list[dict[str, Any]]:
    return case.header["buffers"]


# -- mutations: each breaks one thing and says which code that earns --------------------------------

WEIRD = [None, True, False, 0, -1, 1.5, "", "x", [], [1], {}, {"a": 1}, "\ud800", "١", "²", 10**30]


def not_json(case: Case, rng: random.Random) -> None:
    raw = rng.choice([b"\xff\xfe", b"not json", b"{", b"{'a': 1}", b'{"a": NaN}', b"\x00" * 5,
                      bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40))), b"", b'{"a":1}}'])
    case.frames = [raw]
    case.code, case.readable = "bad_message", False


def cut_header(case: Case, rng: random.Random) -> None:
    text = json.dumps(case.header).encode()
    case.frames = [text[:rng.randrange(1, len(text) - 1)]]
    case.code, case.readable = "bad_message", False


def not_an_object(case: Case, rng: random.Random) -> None:
    case.frames = [json.dumps(rng.choice([[1, 2], "hello", 5, None, [case.header], 1.5, True])).encode()]
    case.code, case.readable = "bad_message", False


def header_too_large(case: Case, rng: random.Random) -> None:
    case.header["pad"] = "x" * (MAX_HEADER_BYTES + rng.randrange(1, 1000))
    case.code, case.readable = "message_too_large", False


def bad_protocol(case: Case, rng: random.Random) -> None:
    value = rng.choice(["jupyter", "Choreo", "choreo ", 1, None, ..., [], "\ud800"])
    if value is ...:
        del case.header["protocol"]
    else:
        case.header["protocol"] = value
    case.code = "bad_message"


BAD_VERSIONS = ["1", "1.", ".1", "1.2.3", "1.\u00b2", "\u0661.\u0662", "1.\uff12", "\u0967.0", " 1.2",
                "1.2 ", "+1.2", "-1.2", "1.2a", "1234567.0", "1.1234567", "1,2", "1_0.2", "", "v1.2",
                "1.0\n", "0x1.2", "1e0.2", 1.2, 1, None, [1, 2], {"major": 1}, True]


def bad_version(case: Case, rng: random.Random) -> None:
    value = rng.choice(BAD_VERSIONS + [...])
    if value is ...:
        del case.header["version"]
    else:
        case.header["version"] = value
    case.code = "bad_message"


def other_major(case: Case, rng: random.Random) -> None:
    case.header["version"] = f"{rng.choice([0, 2, 3, 10, 999999])}.{rng.randrange(0, 10)}"
    case.code = "unsupported_version"


def bad_msg_id(case: Case, rng: random.Random) -> None:
    value = rng.choice([..., "", "x" * 65, 7, None, [], {"id": 1}, True, 1.5])
    if value is ...:
        del case.header["msg_id"]
    else:
        case.header["msg_id"] = value
    case.code, case.readable = "bad_message", False


def bad_type(case: Case, rng: random.Random) -> None:
    value = rng.choice([..., "", 5, None, [], {}, True])
    if value is ...:
        del case.header["type"]
    else:
        case.header["type"] = value
    case.code = "bad_message"


def bad_content(case: Case, rng: random.Random) -> None:
    case.header["content"] = rng.choice([[], [1], "text", 5, True, None, 1.5])
    case.code = "bad_message"


def bad_ids(case: Case, rng: random.Random) -> None:
    case.header[rng.choice(["reply_to", "job_id"])] = rng.choice([5, "", "x" * 65, [], {}, True, 1.5])
    case.code = "bad_message"


def bad_token_type(case: Case, rng: random.Random) -> None:
    case.header[rng.choice(["token", "signature"])] = rng.choice([5, [], {}, True, 1.5])
    case.signed = False
    case.code = "bad_message"


def bad_buffer_list(case: Case, rng: random.Random) -> None:
    case.header["buffers"] = rng.choice([{"audio": 1}, "audio", 5, True])
    case.code = "bad_message"


def bad_buffer_spec(case: Case, rng: random.Random) -> None:
    if not specs(case):
        case.header["buffers"] = [{"name": "x", "dtype": "|u1", "shape": [0]}]
        case.buffers = {"x": np.zeros(0, np.uint8)}
    i = rng.randrange(len(specs(case)))
    spec = specs(case)[i]
    field = rng.choice(["dtype", "shape", "name", "whole"])
    if field == "dtype":
        spec["dtype"] = rng.choice(["|O", ">f4", "<c8", "float32", "<f16", 5, None, "", "|V8", "<M8"])
    elif field == "shape":
        spec["shape"] = rng.choice([[-1], [1.0], ["4"], "4", 4, None, [True], [1] * 9,
                                    [0, 1180591620717411303424], [0, 2**41], [2**40, 2**40, 0], [-0.0]])
    elif field == "name":
        spec["name"] = rng.choice(["", None, 5, []] + [s["name"] for s in specs(case) if s is not spec])
    else:
        specs(case)[i] = rng.choice([None, 5, "audio", [spec]])
    case.code = "bad_message"


def too_many_buffers(case: Case, rng: random.Random) -> None:
    n = MAX_BUFFERS + rng.randrange(1, 5)
    case.header["buffers"] = [{"name": f"b{i}", "dtype": "|u1", "shape": [1]} for i in range(n)]
    case.buffers = {f"b{i}": np.zeros(1, np.uint8) for i in range(n)}
    case.code = "bad_message"


def frames_disagree(case: Case, rng: random.Random) -> None:
    if not case.buffers:
        case.header["buffers"] = [{"name": "x", "dtype": "<f4", "shape": [4]}]
        case.buffers = {"x": np.zeros(4, np.float32)}
    frames = [json.dumps(case.header, separators=(",", ":")).encode()]
    data = [np.ascontiguousarray(a).view(np.uint8).reshape(-1).tobytes() for a in case.buffers.values()]
    i = rng.randrange(len(data))
    how = rng.choice(["missing", "short", "long", "extra"])
    if how == "missing" or (how == "short" and not data[i]):
        data = data[:i]
        case.code = "truncated_message"
    elif how == "short":
        data[i] = data[i][:rng.randrange(len(data[i]))]
        case.code = "truncated_message"
    elif how == "long":
        data[i] = data[i] + b"\x00" * rng.randrange(1, 9)
        case.code = "bad_message"
    else:
        data.append(b"extra")
        case.code = "bad_message"
    case.frames = frames + data


def unsigned(case: Case, rng: random.Random) -> None:
    how = rng.choice(["none", "wrong key", "carried wrong", "carried surrogate", "tampered", "carried empty"])
    case.code = "unauthorized"
    if how == "none":
        case.signed = False
    elif how == "wrong key":
        case.key = "".join(rng.choice("0123456789abcdef") for _ in range(64))
    elif how.startswith("carried"):
        case.signed = False
        case.header["token"] = {"carried wrong": "0" * 64, "carried surrogate": "\ud800\udfff\ud800",
                                "carried empty": ""}[how]
    else:  # signed with the right key, then changed
        case.header["tampered"] = True
        case.tamper = True


def unknown_type(case: Case, rng: random.Random) -> None:
    case.header["type"] = rng.choice(["dance_please", "motion_chunk", "hello_reply", "error", "done",
                                      "accepted", "GENERATE", "generate ", "\u00e9", "\ud800", "x" * 500,
                                      "pong", "cancelled", "inpaint_v2"])
    case.code = "unknown_type"


def content_fault(case: Case, rng: random.Random) -> None:
    """One field of a generate or inpaint request: wrong type or out of range."""
    c = case.header["content"]
    field = rng.choice(["model", "model", "options", "options", "seed", "steps", "guidance", "start",
                        "seconds", "buffer"])
    if field == "model":
        value = rng.choice([False, 0, "", [], {}, True, 1.5, "no-such-model", "EDGE", "\ud800", "x" * 300])
        c["model"] = value
        case.code = "unknown_model" if isinstance(value, str) and value else "bad_option"
    elif field == "options":
        c["options"] = rng.choice([False, 0, "", [], "steps", 1, [["steps", 2]], {"no_such_option": 1},
                                   {"steps": "many"}, {"steps": -1}, {"steps": 0}, {"steps": 2.5},
                                   {"steps": 10**9}, {"steps": True}, {"steps": None},
                                   {"guidance": "loud"}, {"guidance": [1]}, {"\ud800": 1}])
        case.code = "bad_option"
    elif field == "seed":
        c["seed"] = rng.choice([-1, 2**32, 2**64, 1.5, "7", True, [], {}, 10**40])
        case.code = "bad_option"
    elif field == "steps":
        c["steps"] = rng.choice(["x", 0, -3, 2.5, True, [], 10**9])
        case.code = "bad_option"
    elif field == "guidance":
        c["guidance"] = rng.choice(["loud", [], {}, True, 1e300])
        case.code = "bad_option"
    elif field == "start":
        c["start"] = rng.choice([-1, -1e-9, "0", [], True, 1e7, 10**30])
        case.code = "bad_range"
    elif field == "seconds" and case.kind == "generate":
        c["seconds"] = rng.choice([0, -1, 0.0, "5", [], True, 1e7, 10**30, {}])
        case.code = "bad_range"
    elif case.kind == "generate":
        how = rng.choice(["missing", "dtype", "2d", "empty"])
        if how == "missing":
            del case.buffers["audio"]
            case.header["buffers"] = []
            case.code = "bad_message"
        elif how == "dtype":
            case.buffers["audio"] = np.zeros(8, np.float32)
            case.header["buffers"] = [{"name": "audio", "dtype": "<f4", "shape": [8]}]
            case.code = "bad_message"
        elif how == "2d":
            case.buffers["audio"] = np.zeros((2, 4), np.uint8)
            case.header["buffers"] = [{"name": "audio", "dtype": "|u1", "shape": [2, 4]}]
            case.code = "bad_message"
        else:
            case.buffers["audio"] = np.zeros(0, np.uint8)
            case.header["buffers"] = [{"name": "audio", "dtype": "|u1", "shape": [0]}]
            case.code = "audio_empty"
    else:
        inpaint_fault(case, rng)


def inpaint_fault(case: Case, rng: random.Random) -> None:
    b, c = case.buffers, case.header["content"]
    how = rng.choice(["no rotations", "no root", "no keep", "int rotations", "rotations shape",
                      "root shape", "nan", "not unit", "keep shape", "keep all", "keep values",
                      "keyframes partial", "audio hash", "audio hash type", "contacts shape", "root far",
                      "seconds-free start"])
    code = {"no rotations": "bad_message", "no root": "bad_message", "no keep": "bad_message",
            "int rotations": "bad_motion", "rotations shape": "bad_motion", "root shape": "bad_motion",
            "nan": "bad_motion", "not unit": "bad_motion", "keep shape": "bad_mask", "keep all": "bad_mask",
            "keep values": "bad_mask", "keyframes partial": "bad_message", "audio hash": "bad_message",
            "audio hash type": "bad_message", "contacts shape": "bad_motion", "root far": "bad_motion",
            "seconds-free start": "audio_not_cached"}[how]
    if how.startswith("no "):
        del b[{"no rotations": "rotations", "no root": "root_translation", "no keep": "keep"}[how]]
    elif how == "int rotations":
        b["rotations"] = np.ones((T, 24, 4), np.int32)
    elif how == "rotations shape":
        b["rotations"] = b["rotations"][:, :23]
    elif how == "root shape":
        b["root_translation"] = np.zeros((T, 4), np.float32)
    elif how == "nan":
        b["root_translation"] = b["root_translation"].copy()
        b["root_translation"][rng.randrange(T), rng.randrange(3)] = np.nan
    elif how == "not unit":
        b["rotations"] = b["rotations"].copy()
        b["rotations"][rng.randrange(10), rng.randrange(24)] = (3.0, 0.0, 0.0, 0.0)  # a kept frame
    elif how == "keep shape":
        b["keep"] = b["keep"][:, :24]
    elif how == "keep all":
        b["keep"] = np.ones((T, 25), bool)
    elif how == "keep values":
        b["keep"] = np.full((T, 25), 2, np.uint8)
    elif how == "keyframes partial":
        b["keyframe_frames"] = np.array([12], np.int32)
    elif how == "audio hash":
        c["audio_hash"] = rng.choice(["abc", "G" * 64, "0" * 63, "A" * 64, ""])
    elif how == "audio hash type":
        c["audio_hash"] = rng.choice([5, [], {}, True])
    elif how == "contacts shape":
        b["contacts"] = np.zeros((T, 17), np.float32)
    elif how == "root far":
        b["root_translation"] = np.full((T, 3), 5000.0, np.float32)
    else:
        c["start"] = rng.choice([None, 0, 3.0])  # still valid: the uncached hash decides
    case.header["buffers"] = [{"name": n, "dtype": a.dtype.str, "shape": list(a.shape)} for n, a in b.items()]
    case.code = code


def cancel_fault(case: Case, rng: random.Random) -> None:
    value = rng.choice([..., None, 5, [], {}, "", "f" * 32, "\ud800", True])
    if value is ...:
        del case.header["content"]["job_id"]
    else:
        case.header["content"]["job_id"] = value
    case.code = "unknown_job"


HEADER_MUTATIONS: list[tuple[Callable[[Case, random.Random], None], int]] = [
    (not_json, 4), (cut_header, 4), (not_an_object, 3), (header_too_large, 1), (bad_protocol, 4),
    (bad_version, 8), (other_major, 3), (bad_msg_id, 4), (bad_type, 3), (bad_content, 3), (bad_ids, 3),
    (bad_token_type, 2), (bad_buffer_list, 2), (bad_buffer_spec, 6), (too_many_buffers, 1),
    (frames_disagree, 5), (unsigned, 6), (unknown_type, 3),
]
KINDS = ["hello", "ping", "shutdown", "cancel", "generate", "inpaint"]


def make_case(rng: random.Random) -> Case:
    kind = rng.choice(KINDS)
    case = base(kind)
    if kind in ("generate", "inpaint") and rng.random() < 0.45:
        content_fault(case, rng)
    elif kind == "cancel" and rng.random() < 0.3:
        cancel_fault(case, rng)
    else:
        mutations, weights = zip(*HEADER_MUTATIONS)
        rng.choices(mutations, weights)[0](case, rng)
    return case


def frames_of(case: Case, key: str) -> list[bytes]:
    frames = case.build(key)
    if case.tamper:  # signed, then one value in its header changed
        head = frames[0]
        frames = [head.replace(b'"tampered":true', b'"tampered":null', 1)] + frames[1:]
    return frames


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    proc = start_test_server(tmp_path_factory.mktemp("fuzz"))
    yield proc
    proc.stop()


def test_every_malformed_message_gets_one_reply_with_its_code_and_reply_to(server):
    rng = random.Random(SEED)
    cases = [make_case(rng) for _ in range(CASES)]
    key = server.token
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(server.endpoint)
    codes: Counter[str] = Counter()
    wrong = []
    started = time.monotonic()
    try:
        for i, case in enumerate(cases):
            sock.send_multipart(frames_of(case, key))
            assert sock.poll(30_000), f"case {i} ({case.kind}, want {case.code}) got no reply"
            reply = decode(sock.recv_multipart())
            got = (reply.type, reply.content.get("code"), reply.reply_to)
            codes[got[1]] += 1
            if got != ("error", case.code, case.msg_id):
                wrong.append((i, case.kind, case.code, case.msg_id, got, reply.content.get("message")))
        assert wrong == [], f"{len(wrong)} of {len(cases)} wrong, e.g. {wrong[:5]}"
        # nothing more is on its way: the next reply is the pong to this ping
        ping = sign(encode(Message("ping")), key)
        sock.send_multipart(ping)
        assert sock.poll(30_000)
        pong = decode(sock.recv_multipart())
        assert pong.type == "pong" and pong.reply_to == json.loads(bytes(ping[0]))["msg_id"], pong
    finally:
        sock.close()
    elapsed = time.monotonic() - started
    assert codes["internal"] == 0
    assert len(cases) >= 2000 and elapsed < TIME_BUDGET_S, elapsed
    # every message type and most codes were exercised
    assert {c.kind for c in cases} == set(KINDS)
    assert set(codes) >= {"bad_message", "truncated_message", "message_too_large", "unsupported_version",
                          "unauthorized", "unknown_type", "unknown_model", "bad_option", "bad_range",
                          "bad_motion", "bad_mask", "audio_empty", "audio_not_cached", "unknown_job"}
    assert pong.content["stats"]["jobs_accepted"] == 0  # no case started a job
    assert_serving(server, generate=True)
