"""The wire format: encode/decode round trips, every validation error, no pickle, the client's
bookkeeping against a raw ROUTER socket standing in for the other end of the wire."""

from __future__ import annotations

import json
import os
import pickle
import re
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import zmq

from protocol import (
    ALLOWED_DTYPES, ERROR_CODES, PROTOCOL_VERSION, ChoreoClient, ChoreoError, ChoreoTimeout, Message,
    ProtocolError, decode, default_connection_file, encode, find_connection_files,
    read_connection_file, sign, verify_signature, write_connection_file,
)
from protocol.job_stream import StreamedChunk, assemble
from protocol.messages import MAX_BUFFERS, MAX_HEADER_BYTES, check_version, peek_msg_id

ROOT = Path(__file__).resolve().parents[1]


def header_of(frames) -> dict:
    return json.loads(bytes(frames[0]))


def frames_with(header_changes: dict, buffers: dict | None = None) -> list[bytes]:
    """Frames of a valid message whose header is then edited (to build broken messages)."""
    frames = encode(Message("ping", buffers=buffers or {}))
    header = header_of(frames)
    header.update(header_changes)
    for key in [k for k, v in header_changes.items() if v is ...]:
        del header[key]
    return [json.dumps(header).encode()] + [bytes(f) for f in frames[1:]]


def expect_error(code: str, frames, **kwargs) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        decode(frames, **kwargs)
    assert info.value.code == code, info.value
    assert info.value.code in ERROR_CODES
    return info.value


# -- round trips -----------------------------------------------------------------------

def test_round_trip_keeps_everything():
    rng = np.random.default_rng(0)
    buffers = {
        "rotations": rng.standard_normal((5, 24, 4)).astype(np.float32),
        "root_translation": rng.standard_normal((5, 3)),
        "audio": np.frombuffer(b"RIFF....WAVE", dtype=np.uint8),
        "counts": np.arange(7, dtype=np.int64),
        "flags": np.array([True, False]),
        "empty": np.zeros((0, 4), dtype=np.float32),
    }
    msg = Message("motion_chunk", {"start": 3, "names": ["a", "b"], "nested": {"x": None}},
                  buffers, reply_to="r" * 32, job_id="j" * 32, token="secret")
    out = decode(encode(msg))
    assert (out.type, out.msg_id, out.reply_to, out.job_id, out.token) == (
        "motion_chunk", msg.msg_id, "r" * 32, "j" * 32, "secret")
    assert out.version == PROTOCOL_VERSION
    assert out.content == msg.content
    assert list(out.buffers) == list(buffers)
    for name, array in buffers.items():
        assert out.buffers[name].dtype == array.dtype.newbyteorder("<")
        assert out.buffers[name].shape == array.shape
        np.testing.assert_array_equal(out.buffers[name], array)


def test_header_carries_protocol_version_and_buffer_descriptions():
    frames = encode(Message("hello", buffers={"x": np.ones((2, 3), np.float32)}))
    header = header_of(frames)
    assert header["protocol"] == "choreo" and header["version"] == PROTOCOL_VERSION
    assert header["buffers"] == [{"name": "x", "dtype": "<f4", "shape": [2, 3]}]
    assert re.fullmatch(r"[0-9a-f]{32}", header["msg_id"])
    assert "token" not in header  # only requests to a server with a token carry one


def test_big_endian_and_strided_arrays_go_out_as_little_endian_contiguous_bytes():
    values = np.arange(12, dtype=np.float64).reshape(3, 4)
    big = values.astype(">f4")
    strided = np.arange(24, dtype="<i4").reshape(4, 6)[:, ::2]
    frames = encode(Message("x", buffers={"big": big, "strided": strided}))
    assert bytes(frames[1]) == values.astype("<f4").tobytes()
    assert bytes(frames[2]) == np.ascontiguousarray(strided).tobytes()
    specs = header_of(frames)["buffers"]
    assert [s["dtype"] for s in specs] == ["<f4", "<i4"]
    out = decode(frames)
    np.testing.assert_array_equal(out.buffers["big"], values)
    np.testing.assert_array_equal(out.buffers["strided"], strided)


@pytest.mark.parametrize("array", [
    np.array([object(), 1], dtype=object),
    np.array([1 + 2j]),
    np.array(["text"]),
    np.array(["2020-01-01"], dtype="datetime64[D]"),
])
def test_arrays_that_cannot_be_raw_numbers_are_refused_on_encode(array):
    with pytest.raises(ProtocolError) as info:
        encode(Message("x", buffers={"a": array}))
    assert info.value.code == "bad_message"


def test_content_must_be_plain_json():
    for content in ({"x": float("nan")}, {"x": np.float32(1)}, {"x": b"bytes"}):
        with pytest.raises(ProtocolError) as info:
            encode(Message("x", content))
        assert info.value.code == "bad_message"


def test_allowed_dtypes_are_all_little_endian_or_single_byte_numbers():
    for name in ALLOWED_DTYPES:
        dtype = np.dtype(name)
        assert dtype.kind in "biuf" and dtype.str == name
        assert dtype.byteorder in ("<", "|") or dtype.isnative


# -- validation on decode ----------------------------------------------------------------

def test_header_must_be_a_utf8_json_object():
    expect_error("bad_message", [b"not json"])
    expect_error("bad_message", [b"\xff\xfe"])
    expect_error("bad_message", [b"[1, 2]"])
    expect_error("bad_message", [b'{"x": NaN}'])
    expect_error("bad_message", [])


def test_required_fields_and_their_types():
    expect_error("bad_message", frames_with({"protocol": "jupyter"}))
    expect_error("bad_message", frames_with({"protocol": ...}))
    expect_error("bad_message", frames_with({"msg_id": ...}))
    expect_error("bad_message", frames_with({"msg_id": 7}))
    expect_error("bad_message", frames_with({"msg_id": "x" * 65}))
    expect_error("bad_message", frames_with({"type": ...}))
    expect_error("bad_message", frames_with({"type": ""}))
    expect_error("bad_message", frames_with({"content": [1]}))
    expect_error("bad_message", frames_with({"reply_to": 5}))
    expect_error("bad_message", frames_with({"job_id": {"a": 1}}))
    expect_error("bad_message", frames_with({"token": 1234}))
    expect_error("bad_message", frames_with({"buffers": {"a": 1}}))


def test_errors_after_the_header_is_read_name_the_offending_message():
    frames = frames_with({"content": "nope"})
    err = expect_error("bad_message", frames)
    assert err.reply_to == header_of(frames)["msg_id"]
    assert peek_msg_id(frames[0]) == header_of(frames)["msg_id"]
    assert peek_msg_id(b"garbage") is None


def test_versions_newer_minor_is_accepted_other_major_refused():
    assert decode(frames_with({"version": "1.7"})).version == "1.7"
    err = expect_error("unsupported_version", frames_with({"version": "2.0"}))
    assert "2.0" in err.message and err.reply_to
    expect_error("unsupported_version", frames_with({"version": "0.9"}))
    for bad in ("1", "one.zero", "1.0.0", 1.0, None, "1.-1", "1.\u00b2", "\u0661.\u0662", "1.\uff12",
                " 1.2", "1.2\n", "+1.2", "1.2a", "1234567.0"):
        frames = frames_with({"version": bad})
        err = expect_error("bad_message", frames)  # never 'internal', never accepted as 1.2
        assert err.reply_to == header_of(frames)["msg_id"], bad  # the msg_id was readable
    check_version("1.0")


def test_buffer_descriptions_are_checked():
    one = {"a": np.zeros(4, np.float32)}
    spec = header_of(encode(Message("x", buffers=one)))["buffers"][0]
    for change in ({"dtype": "|O"}, {"dtype": ">f4"}, {"dtype": "<c8"}, {"dtype": 5},
                   {"shape": [-4]}, {"shape": [2.0, 2]}, {"shape": "4"}, {"shape": [1] * 9},
                   {"name": ""}, {"name": None}):
        frames = frames_with({"buffers": [{**spec, **change}]}, one)
        expect_error("bad_message", frames)
    for shape in ([0, 1180591620717411303424], [0, 2**41], [2**40, 2**40, 0], [0] + [2**40] * 7):
        frames = frames_with({"buffers": [{**spec, "shape": shape}]}) + [b""]
        err = expect_error("bad_message", frames)  # numpy cannot hold it: refused, not a crash
        assert err.reply_to == header_of(frames)["msg_id"]
    two = frames_with({"buffers": [spec, spec]}, one) + [bytes(16)]
    expect_error("bad_message", two)  # duplicate names
    many = [{**spec, "name": f"b{i}", "shape": [0]} for i in range(MAX_BUFFERS + 1)]
    expect_error("bad_message", frames_with({"buffers": many}) + [b""] * (MAX_BUFFERS + 1))


def test_truncated_and_oversized_buffers():
    buffers = {"a": np.zeros(4, np.float32), "b": np.zeros(2, np.int64)}
    good = [bytes(f) for f in encode(Message("x", buffers=buffers))]
    assert decode(good).buffers["b"].shape == (2,)
    err = expect_error("truncated_message", good[:2])  # header lists 2 buffers, 1 frame follows
    assert "2 buffers" in err.message
    expect_error("truncated_message", good[:2] + [good[2][:-1]])  # one byte short
    expect_error("bad_message", good[:2] + [good[2] + b"\0"])  # one byte long
    expect_error("bad_message", good + [b"extra"])


def test_size_limits():
    frames = encode(Message("x", buffers={"a": np.zeros(1000, np.uint8)}))
    expect_error("message_too_large", frames, max_message_bytes=500)
    assert decode(frames, max_message_bytes=2000).buffers["a"].size == 1000
    huge_header = json.dumps({"pad": "x" * MAX_HEADER_BYTES}).encode()
    expect_error("message_too_large", [huge_header], max_message_bytes=10 * MAX_HEADER_BYTES)


# -- no pickle ---------------------------------------------------------------------------

def test_a_pickle_on_the_wire_stays_inert_bytes():
    class Boom:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    payload = pickle.dumps(Boom())
    # declared as an object array it is refused outright...
    frames = frames_with({"buffers": [{"name": "p", "dtype": "|O", "shape": [1]}]})
    expect_error("bad_message", frames + [payload])
    # ...declared as bytes it is just bytes: nothing ever unpickles it
    frames = encode(Message("x", buffers={"p": np.frombuffer(payload, np.uint8)}))
    assert decode(frames).buffers["p"].tobytes() == payload


def test_no_pickle_in_our_protocol_and_server_code():
    pattern = re.compile(r"import pickle|from pickle|pickle\.loads?|allow_pickle\s*=\s*True|"
                         r"weights_only\s*=\s*False|recv_pyobj|send_pyobj")
    sources = list((ROOT / "protocol").glob("*.py")) + list((ROOT / "backend" / "server").glob("*.py"))
    assert len(sources) >= 8
    offenders = [str(p) for p in sources if pattern.search(p.read_text())]
    assert offenders == []


def test_protocol_package_imports_neither_torch_nor_bpy():
    code = ("import sys, protocol, protocol.client; "
            "bad = [m for m in ('torch', 'bpy', 'backend') if m in sys.modules]; "
            "sys.exit(str(bad) if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_error_code_is_documented_in_the_spec():
    spec = (ROOT / "docs" / "protocol.md").read_text()
    missing = [code for code in ERROR_CODES if f"`{code}`" not in spec]
    assert missing == []


# -- connection files ----------------------------------------------------------------------

def test_connection_file_round_trip_is_private(tmp_path):
    path = write_connection_file(tmp_path / "sub" / "backend.json", "tcp://127.0.0.1:5555", "tok",
                                 device="cpu")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    info = read_connection_file(path)
    assert info["endpoint"] == "tcp://127.0.0.1:5555" and info["token"] == "tok"
    assert info["pid"] == os.getpid() and info["version"] == PROTOCOL_VERSION
    assert info["device"] == "cpu"


def test_bad_connection_files_are_refused(tmp_path):
    bad = tmp_path / "bad.json"
    for text, code in (("{", "bad_message"), ('{"protocol": "choreo", "version": "1.0"}', "bad_message"),
                       ('{"protocol": "x", "version": "1.0", "endpoint": "tcp://a:1"}', "bad_message"),
                       ('{"protocol": "choreo", "version": "2.0", "endpoint": "tcp://a:1"}',
                        "unsupported_version")):
        bad.write_text(text)
        with pytest.raises(ProtocolError) as info:
            read_connection_file(bad)
        assert info.value.code == code
    with pytest.raises(ProtocolError):
        read_connection_file(tmp_path / "missing.json")


def test_clients_find_the_newest_connection_file(tmp_path, monkeypatch):
    monkeypatch.setenv("CHOREO_RUNTIME_DIR", str(tmp_path / "runtime"))
    with pytest.raises(ChoreoError) as info:
        ChoreoClient.from_connection_file()
    assert info.value.code == "no_backend"
    # pid 1 runs (and started before these files were written): both backends count as alive
    old = write_connection_file(default_connection_file(111), "tcp://127.0.0.1:1111", None, pid=1)
    new = write_connection_file(default_connection_file(222), "tcp://127.0.0.1:2222", "tok", pid=1)
    os.utime(old, (time.time() - 60, time.time() - 60))
    assert old.parent == tmp_path / "runtime" and new.name == "backend-222.json"
    assert find_connection_files() == [new, old]
    with ChoreoClient.from_connection_file() as client:
        assert (client.endpoint, client.token) == ("tcp://127.0.0.1:2222", "tok")
    assert default_connection_file(5, {"XDG_RUNTIME_DIR": "/run/user/7"}) == Path(
        "/run/user/7/choreo/backend-5.json")


# -- the client against a raw socket -------------------------------------------------------

def chunk_message(start: int, n: int, names=("l", "r")) -> Message:
    q = np.zeros((n, 24, 4), np.float32)
    q[..., 0] = 1
    return Message("motion_chunk", {"start": start, "frames": n, "fps": 30, "contact_names": list(names)},
                   {"rotations": q, "root_translation": np.full((n, 3), start, np.float32),
                    "contacts": np.zeros((n, len(names)), np.float32)}, job_id="j")


def test_assemble_checks_coverage():
    done = {"frames": 10}
    parts = [StreamedChunk.from_message(decode(encode(chunk_message(s, n)))) for s, n in ((4, 6), (0, 4))]
    result = assemble("j", parts, done)
    assert result.num_frames == 10 and result.contacts.shape == (10, 2)
    assert result.root_translation[3, 0] == 0 and result.root_translation[4, 0] == 4
    with pytest.raises(ProtocolError):
        assemble("j", parts[:1], done)  # a gap at frame 0
    with pytest.raises(ProtocolError):
        assemble("j", parts + [StreamedChunk.from_message(chunk_message(8, 2))], done)  # overlap
    with pytest.raises(ProtocolError):
        StreamedChunk.from_message(Message("motion_chunk", {"start": 0, "frames": 3, "fps": 30,
                                                            "contact_names": []},
                                           {"rotations": np.zeros((2, 24, 4), np.float32),
                                            "root_translation": np.zeros((2, 3), np.float32),
                                            "contacts": np.zeros((2, 0), np.float32)}))


def test_client_times_out_when_nobody_answers():
    ctx = zmq.Context.instance()
    with ctx.socket(zmq.ROUTER) as silent:
        port = silent.bind_to_random_port("tcp://127.0.0.1")
        with ChoreoClient(f"tcp://127.0.0.1:{port}", timeout=0.3) as client:
            t0 = time.monotonic()
            with pytest.raises(ChoreoTimeout):
                client.hello()
            assert 0.25 < time.monotonic() - t0 < 3


def recv(router: zmq.Socket, timeout_ms: int = 2000, key: str = "t") -> tuple[bytes, Message]:
    assert router.poll(timeout_ms), "nothing arrived"
    identity, *frames = router.recv_multipart()
    message = decode(frames)
    assert message.signature is None or verify_signature(frames, key)
    return identity, message


def test_client_heartbeats_while_a_job_is_open_and_hides_their_pongs():
    ctx = zmq.Context.instance()
    with ctx.socket(zmq.ROUTER) as router:
        port = router.bind_to_random_port("tcp://127.0.0.1")
        with ChoreoClient(f"tcp://127.0.0.1:{port}", token="t", heartbeat_interval=0.05) as client:
            assert client.poll_once() == []  # no job open: no heartbeat
            msg_id = client.submit_generate(b"RIFF-bytes", seed=3, seconds=2.0, options={"steps": 4})
            identity, gen = recv(router)
            assert gen.type == "generate" and gen.token is None and gen.signature  # signed, not carried
            assert gen.content["seed"] == 3 and gen.content["options"] == {"steps": 4}
            assert "steps" not in gen.content and "guidance" not in gen.content  # options only (1.4)
            assert gen.buffers["audio"].tobytes() == b"RIFF-bytes"

            deadline = time.monotonic() + 2
            pings = []
            while len(pings) < 2 and time.monotonic() < deadline:
                assert client.poll_once() == []
                while router.poll(0):
                    _, msg = recv(router)
                    pings.append(msg)
                    router.send_multipart([identity, *encode(Message("pong", reply_to=msg.msg_id))])
                time.sleep(0.02)
            assert [p.type for p in pings] == ["ping", "ping"]

            for m in (Message("accepted", reply_to=msg_id, job_id="j1"), chunk_message(0, 2),
                      Message("done", {"summary": {"frames": 2}}, reply_to=msg_id, job_id="j1")):
                m.reply_to = msg_id
                router.send_multipart([identity, *encode(m)])
            got: list[Message] = []
            while len(got) < 3 and time.monotonic() < deadline + 2:
                got += client.poll_once()  # pongs were consumed: only the job's messages come back
                time.sleep(0.01)
            assert [m.type for m in got] == ["accepted", "motion_chunk", "done"]
            assert client.open_jobs == {}
            time.sleep(0.1)
            client.poll_once()
            while router.poll(50):  # pings that were already in flight
                recv(router)
            time.sleep(0.15)
            client.poll_once()
            assert not router.poll(100), "no heartbeats once no job is open"


# -- signing ----------------------------------------------------------------------------------

def test_a_signed_message_verifies_with_its_key_only_and_any_change_breaks_it():
    message = Message("generate", {"seed": 3}, {"audio": np.frombuffer(b"RIFF-bytes", np.uint8)})
    frames = [bytes(f) for f in sign(encode(message), "key-1")]
    assert verify_signature(frames, "key-1") and not verify_signature(frames, "key-2")
    out = decode(frames)
    assert out.signature and out.token is None and out.content == {"seed": 3}
    assert "key-1" not in repr(frames)  # the key itself never goes on the wire
    header = frames[0]
    assert header.endswith(b',"signature":"' + out.signature.encode() + b'"}')
    changed = [
        [header.replace(b'"seed":3', b'"seed":4')] + frames[1:],  # content
        [header] + [b"RIFF-bytez"],  # a buffer
        [header] + frames[1:] + [b""],  # an extra frame
        [header.replace(b',"signature"', b', "signature"')] + frames[1:],  # not the exact last member
        [header.replace(out.signature.encode(), out.signature.upper().encode())] + frames[1:],
        [bytes(encode(message)[0])] + frames[1:],  # no signature at all
    ]
    assert not any(verify_signature(f, "key-1") for f in changed)
    again = sign(encode(message), "key-1")  # a new sign of the same message: the same signature
    assert verify_signature(again, "key-1") and bytes(again[0]) == header
    weird = "\ud800-not-utf8"  # any string is a key, lone surrogates too
    assert verify_signature(sign(encode(message), weird), weird)


# -- connection files: privacy and staleness --------------------------------------------------

def test_the_runtime_folder_is_made_private_even_when_it_already_existed(tmp_path, monkeypatch):
    folder = tmp_path / "runtime"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    monkeypatch.setenv("CHOREO_RUNTIME_DIR", str(folder))
    path = write_connection_file(default_connection_file(), "tcp://127.0.0.1:5555", "k")
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    other = tmp_path / "elsewhere"  # a folder the user chose is theirs: left as it is
    other.mkdir(mode=0o755)
    other.chmod(0o755)
    write_connection_file(other / "c.json", "tcp://127.0.0.1:5555", "k")
    assert stat.S_IMODE(other.stat().st_mode) == 0o755


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_connection_files_are_skipped_removed_and_named(tmp_path, monkeypatch):
    monkeypatch.setenv("CHOREO_RUNTIME_DIR", str(tmp_path / "runtime"))
    pid = dead_pid()
    stale = write_connection_file(default_connection_file(pid), "tcp://127.0.0.1:1111", "k", pid=pid)
    with pytest.raises(ChoreoError) as info:
        ChoreoClient.from_connection_file()
    assert info.value.code == "no_backend" and str(stale) in info.value.message
    assert not stale.exists()

    live = write_connection_file(default_connection_file(1), "tcp://127.0.0.1:2222", "k", pid=1)
    os.utime(live, (time.time() - 30, time.time() - 30))  # older than the stale one below
    stale = write_connection_file(default_connection_file(pid), "tcp://127.0.0.1:1111", "k", pid=pid)
    assert find_connection_files() == [live] and not stale.exists()
    stale = write_connection_file(default_connection_file(pid), "tcp://127.0.0.1:1111", "k", pid=pid)
    with ChoreoClient.from_connection_file() as client:  # the newest file is stale: skipped
        assert client.endpoint == "tcp://127.0.0.1:2222"
    assert not stale.exists()

    named = write_connection_file(tmp_path / "named.json", "tcp://127.0.0.1:1111", "k", pid=pid)
    with pytest.raises(ChoreoError) as info:  # a file given by path is checked too
        ChoreoClient.from_connection_file(named)
    assert info.value.code == "no_backend" and str(named) in info.value.message
    # a backend on another machine: its pid means nothing here, so it is not judged
    remote = write_connection_file(tmp_path / "remote.json", "tcp://192.0.2.7:1111", "k", pid=pid)
    with ChoreoClient.from_connection_file(remote) as client:
        assert client.endpoint == "tcp://192.0.2.7:1111"


# -- the polling API ends jobs of a silent backend --------------------------------------------

def test_poll_once_ends_every_open_job_of_a_silent_backend_with_timeout():
    ctx = zmq.Context.instance()
    with ctx.socket(zmq.ROUTER) as router:
        port = router.bind_to_random_port("tcp://127.0.0.1")
        with ChoreoClient(f"tcp://127.0.0.1:{port}", timeout=0.5, heartbeat_interval=0.1) as client:
            first = client.submit_generate(b"RIFF-one", seed=1)
            identity, _ = recv(router, key="")
            router.send_multipart([identity, *encode(Message("accepted", reply_to=first, job_id="j1"))])
            second = client.submit_generate(b"RIFF-two", seed=2)
            got: list[Message] = []
            deadline = time.monotonic() + 30
            while len([m for m in got if m.type == "error"]) < 2:  # the backend says nothing more
                assert time.monotonic() < deadline, got
                got += client.poll_once()
                time.sleep(0.02)
            assert got[0].type == "accepted"
            ends = {m.reply_to: m for m in got if m.type == "error"}
            assert set(ends) == {first, second}
            assert all(m.content["code"] == "timeout" for m in ends.values())
            assert ends[first].job_id == "j1" and ends[second].job_id is None
            assert client.open_jobs == {}
            assert client.poll_once() == []  # each job ends once
