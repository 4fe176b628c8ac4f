"""Messages of the choreo protocol and their multipart wire form.

A message travels as ZeroMQ multipart frames::

    [header, buffer 0, buffer 1, ...]

The header is a UTF-8 JSON object; the buffers are raw little-endian array bytes,
described in order by ``header["buffers"]``. Arrays never go through JSON (too
slow, too big) nor through pickle (a pickle from the network can run code): a
buffer is just bytes plus a dtype from a short allow-list and a shape, and
``decode`` checks that the bytes and the description agree before anything looks
at them. docs/protocol.md is the spec this module implements.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import uuid
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np

from .errors import ProtocolError

PROTOCOL_NAME = "choreo"
PROTOCOL_VERSION = "1.4"
PROTOCOL_MAJOR = 1

REQUEST_TYPES: frozenset[str] = frozenset({"hello", "generate", "inpaint", "cancel", "ping", "shutdown"})
REPLY_TYPES: frozenset[str] = frozenset({
    "hello_reply", "accepted", "progress", "motion_chunk", "done", "error", "cancelled",
    "pong", "shutdown_reply",
})
RESERVED_TYPES: frozenset[str] = frozenset()
"""Names kept for a later minor version (a server answers them ``unknown_type``); none now.
Version 1.1 added ``inpaint``, which 1.0 reserved."""

ALLOWED_DTYPES: frozenset[str] = frozenset({
    "|b1", "|u1", "|i1", "<u2", "<i2", "<u4", "<i4", "<u8", "<i8", "<f2", "<f4", "<f8",
})
"""Buffer dtypes as numpy spells them: plain numbers, little-endian. No objects."""

DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024 * 1024
# A 10-minute song must fit as a WAV: 600 s x 48 kHz x 2 channels x 4 bytes = 230 MB.
MAX_HEADER_BYTES = 1024 * 1024
MAX_BUFFERS = 16
MAX_NDIM = 8
MAX_ID_LENGTH = 64
MAX_DIM = 2**40
"""The largest length of one buffer axis (a larger one is a ``bad_message``, never a numpy error)."""
SIGNATURE_SCHEME = "hmac-sha256"
"""How requests are signed with the server's key (see ``sign``)."""
_VERSION = re.compile(r"([0-9]{1,6})\.([0-9]{1,6})", re.ASCII)
_SIGNATURE = re.compile(r"[0-9a-f]{64}", re.ASCII)


def new_id() -> str:
    """A fresh message or job id (uuid4 hex): unique without coordination."""
    return uuid.uuid4().hex


def parse_version(version: Any, *, reply_to: str | None = None) -> tuple[int, int]:
    """``"1.1"`` -> ``(1, 1)``; anything else (``"1.\u00b2"``, other scripts' digits, ``"1.2.0"``)
    is a ``bad_message``. Only the ASCII digits 0-9 count."""
    match = _VERSION.fullmatch(version) if isinstance(version, str) else None
    if match is None:
        raise ProtocolError("bad_message", f"version must be a 'major.minor' string of ASCII digits, "
                            f"got {version!r:.40}", reply_to=reply_to)
    return int(match[1]), int(match[2])


def check_version(version: Any, *, reply_to: str | None = None) -> None:
    """Accept our major version with any minor (newer minors only add); refuse other majors."""
    major, _ = parse_version(version, reply_to=reply_to)
    if major != PROTOCOL_MAJOR:
        raise ProtocolError(
            "unsupported_version",
            f"this peer speaks {PROTOCOL_NAME} {PROTOCOL_MAJOR}.x, the message is version {version}",
            reply_to=reply_to)


@dataclass
class Message:
    """One protocol message: a type, a JSON ``content`` and named array ``buffers``.

    ``reply_to`` is the ``msg_id`` of the request a reply (or a streamed job
    message) answers; ``job_id`` names the job the message is about. ``token`` is
    only set on requests to a server that requires one.
    """

    type: str
    content: dict[str, Any] = field(default_factory=dict)
    buffers: dict[str, np.ndarray] = field(default_factory=dict)
    msg_id: str = field(default_factory=new_id)
    reply_to: str | None = None
    job_id: str | None = None
    version: str = PROTOCOL_VERSION
    token: str | None = None
    signature: str | None = None


def _wire_array(name: str, array: Any) -> np.ndarray:
    """The array as contiguous little-endian bytes in an allowed dtype, or a clear error."""
    if isinstance(array, (bytes, bytearray, memoryview)):
        array = np.frombuffer(array, dtype=np.uint8)
    array = np.asarray(array)
    dtype = array.dtype
    if dtype.kind not in "biuf":
        raise ProtocolError("bad_message", f"buffer {name!r}: dtype {dtype} cannot go on the wire")
    if dtype.byteorder not in ("<", "|") and dtype.itemsize > 1:
        dtype = dtype.newbyteorder("<")
    if dtype.str not in ALLOWED_DTYPES:
        raise ProtocolError("bad_message", f"buffer {name!r}: dtype {dtype.str} is not allowed")
    return np.ascontiguousarray(array, dtype=dtype)


def encode(message: Message) -> list[bytes | memoryview]:
    """Frames for ``message``: the JSON header, then one frame per buffer."""
    arrays = [(name, _wire_array(name, a)) for name, a in message.buffers.items()]
    if len(arrays) > MAX_BUFFERS:
        raise ProtocolError("bad_message", f"at most {MAX_BUFFERS} buffers, got {len(arrays)}")
    header: dict[str, Any] = {
        "protocol": PROTOCOL_NAME,
        "version": message.version,
        "type": message.type,
        "msg_id": message.msg_id,
        "reply_to": message.reply_to,
        "job_id": message.job_id,
        "content": message.content,
        "buffers": [{"name": n, "dtype": a.dtype.str, "shape": list(a.shape)} for n, a in arrays],
    }
    if message.token is not None:
        header["token"] = message.token
    try:
        text = json.dumps(header, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise ProtocolError("bad_message", f"content is not plain JSON: {exc}") from exc
    return [text.encode("utf-8")] + [memoryview(a.reshape(-1).view(np.uint8)) for _, a in arrays]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_header(frame: bytes | memoryview) -> dict[str, Any]:
    """The header frame as a dict, checked to be a bounded UTF-8 JSON object."""
    if len(frame) > MAX_HEADER_BYTES:
        raise ProtocolError("message_too_large",
                            f"header is {len(frame)} bytes, the limit is {MAX_HEADER_BYTES}")
    try:
        header = json.loads(bytes(frame).decode("utf-8"), parse_constant=_reject_constant)
    except RecursionError:  # deeply nested JSON: refuse it, never crash the reader
        raise ProtocolError("bad_message", "header JSON is nested too deeply") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProtocolError("bad_message", f"header is not UTF-8 JSON: {exc}") from None
    if not isinstance(header, dict):
        raise ProtocolError("bad_message", "header must be a JSON object")
    return header


def peek_msg_id(frame: bytes | memoryview) -> str | None:
    """Best effort: the ``msg_id`` of a header, so that even a refused message gets a
    reply its sender can match. None when the header cannot be read."""
    try:
        msg_id = parse_header(frame).get("msg_id")
    except ProtocolError:
        return None
    return msg_id if _is_id(msg_id) else None


def _is_id(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_ID_LENGTH


def _optional_id(header: dict[str, Any], key: str, reply_to: str | None) -> str | None:
    value = header.get(key)
    if value is None or _is_id(value):
        return value
    raise ProtocolError("bad_message", f"{key} must be null or an id string", reply_to=reply_to)


def _buffer_specs(header: dict[str, Any], reply_to: str | None) -> list[tuple[str, np.dtype, tuple[int, ...]]]:
    specs = header.get("buffers", [])
    if not isinstance(specs, list):
        raise ProtocolError("bad_message", "buffers must be a list", reply_to=reply_to)
    if len(specs) > MAX_BUFFERS:
        raise ProtocolError("bad_message", f"at most {MAX_BUFFERS} buffers, header lists {len(specs)}",
                            reply_to=reply_to)
    out = []
    names = set()
    for i, spec in enumerate(specs):
        if not isinstance(spec, dict):
            raise ProtocolError("bad_message", f"buffers[{i}] must be an object", reply_to=reply_to)
        name, dtype, shape = spec.get("name"), spec.get("dtype"), spec.get("shape")
        if not isinstance(name, str) or not name or name in names:
            raise ProtocolError("bad_message", f"buffers[{i}] needs a unique non-empty name",
                                reply_to=reply_to)
        names.add(name)
        if dtype not in ALLOWED_DTYPES:
            raise ProtocolError("bad_message",
                                f"buffer {name!r}: dtype {dtype!r} not in {sorted(ALLOWED_DTYPES)}",
                                reply_to=reply_to)
        if (not isinstance(shape, list) or len(shape) > MAX_NDIM
                or not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= MAX_DIM
                           for d in shape)):
            raise ProtocolError("bad_message",
                                f"buffer {name!r}: shape must be a list of at most {MAX_NDIM} "
                                f"ints in [0, 2**40], got {shape!r:.200}", reply_to=reply_to)
        out.append((name, np.dtype(dtype), tuple(shape)))
    return out


def decode(frames: Sequence[bytes | memoryview | Any],
           max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> Message:
    """Check and unpack the frames of one message (without a ROUTER identity frame).

    Raises ``ProtocolError``; when the header could be read, the error's
    ``reply_to`` is the offending message's ``msg_id``. Buffers come back as
    read-only arrays over the received frames (no copy).
    """
    frames = [_byte_view(f) for f in frames]
    if not frames:
        raise ProtocolError("bad_message", "empty message (no header frame)")
    total = sum(len(f) for f in frames)
    if total > max_message_bytes:
        raise ProtocolError("message_too_large",
                            f"message is {total} bytes, the limit is {max_message_bytes}",
                            reply_to=peek_msg_id(frames[0]))
    header = parse_header(frames[0])
    msg_id = header.get("msg_id")
    reply_to = msg_id if _is_id(msg_id) else None
    if header.get("protocol") != PROTOCOL_NAME:
        raise ProtocolError("bad_message", f"protocol must be {PROTOCOL_NAME!r}, got "
                            f"{header.get('protocol')!r}", reply_to=reply_to)
    check_version(header.get("version"), reply_to=reply_to)
    if reply_to is None:
        raise ProtocolError("bad_message", f"msg_id must be a string of 1-{MAX_ID_LENGTH} characters")
    kind = header.get("type")
    if not isinstance(kind, str) or not kind:
        raise ProtocolError("bad_message", "type must be a non-empty string", reply_to=reply_to)
    content = header.get("content", {})
    if not isinstance(content, dict):
        raise ProtocolError("bad_message", "content must be a JSON object", reply_to=reply_to)
    token = header.get("token")
    if token is not None and not isinstance(token, str):
        raise ProtocolError("bad_message", "token must be a string", reply_to=reply_to)
    signature = header.get("signature")
    if signature is not None and not isinstance(signature, str):
        raise ProtocolError("bad_message", "signature must be a string", reply_to=reply_to)

    specs = _buffer_specs(header, reply_to)
    data = frames[1:]
    if len(data) < len(specs):
        raise ProtocolError("truncated_message",
                            f"header lists {len(specs)} buffers, only {len(data)} frames follow",
                            reply_to=reply_to)
    if len(data) > len(specs):
        raise ProtocolError("bad_message",
                            f"header lists {len(specs)} buffers, {len(data)} frames follow",
                            reply_to=reply_to)
    buffers: dict[str, np.ndarray] = {}
    for (name, dtype, shape), frame in zip(specs, data):
        expected = math.prod(shape) * dtype.itemsize
        if len(frame) < expected:
            raise ProtocolError("truncated_message",
                                f"buffer {name!r} is {len(frame)} bytes, {dtype.str}{list(shape)} "
                                f"needs {expected}", reply_to=reply_to)
        if len(frame) > expected:
            raise ProtocolError("bad_message",
                                f"buffer {name!r} is {len(frame)} bytes, {dtype.str}{list(shape)} "
                                f"needs {expected}", reply_to=reply_to)
        try:
            buffers[name] = np.frombuffer(frame, dtype=dtype).reshape(shape)
        except (ValueError, OverflowError) as exc:  # e.g. [0, 2**40, 2**40]: too big for numpy
            raise ProtocolError("bad_message", f"buffer {name!r}: shape {list(shape)} is not an "
                                f"array numpy can hold: {exc}", reply_to=reply_to) from None
    return Message(type=kind, content=content, buffers=buffers, msg_id=msg_id,
                   reply_to=_optional_id(header, "reply_to", reply_to),
                   job_id=_optional_id(header, "job_id", reply_to),
                   version=header["version"], token=token, signature=signature)


def _key_bytes(key: str) -> bytes:
    return key.encode("utf-8", "surrogatepass")


def _digest(key: str, header: bytes, buffers: Sequence[Any]) -> str:
    mac = hmac.new(_key_bytes(key), header, hashlib.sha256)
    for frame in buffers:
        view = _byte_view(frame)
        mac.update(len(view).to_bytes(8, "big"))
        mac.update(view)
    return mac.hexdigest()


def sign(frames: Sequence[Any], key: str) -> list[Any]:
    """``frames`` (as ``encode`` makes them) signed with ``key``, as Jupyter signs its messages.

    The signature is the HMAC-SHA256, keyed with the key's UTF-8 bytes, of the header
    frame as it was before signing, followed by each buffer frame's length (8 bytes,
    unsigned big-endian) and bytes. It goes into the
    header as its last member, written exactly ``,"signature":"<64 hex digits>"}``, so
    the receiver gets the signed bytes back by cutting that member off.
    """
    header = bytes(_byte_view(frames[0]))
    if not header.endswith(b"}") or len(header) < 3:
        raise ProtocolError("bad_message", "only a JSON object header can be signed")
    digest = _digest(key, header, frames[1:])
    return [header[:-1] + b',"signature":"' + digest.encode() + b'"}', *frames[1:]]


def verify_signature(frames: Sequence[Any], key: str) -> bool:
    """True when the header's ``signature`` is ``sign``'s for these frames and ``key``."""
    header = bytes(_byte_view(frames[0]))
    try:
        signature = json.loads(header.decode("utf-8")).get("signature")
    except (UnicodeDecodeError, ValueError, AttributeError, RecursionError):
        return False
    if not isinstance(signature, str) or not _SIGNATURE.fullmatch(signature):
        return False
    suffix = b',"signature":"' + signature.encode() + b'"}'
    if not header.endswith(suffix):
        return False
    expected = _digest(key, header[:-len(suffix)] + b"}", frames[1:])
    return hmac.compare_digest(expected, signature)


def same_key(given: str, key: str) -> bool:
    """A carried ``token`` against the key, in constant time (any string, lone surrogates too)."""
    return hmac.compare_digest(_key_bytes(given), _key_bytes(key))


def _byte_view(frame: Any) -> memoryview:
    """A flat byte view of a frame given as bytes, a memoryview or a ``zmq.Frame``."""
    view = frame.buffer if hasattr(frame, "buffer") else memoryview(frame)
    return view if view.format == "B" and view.ndim == 1 else view.cast("B")


def reply(request: Message, type: str, content: dict[str, Any] | None = None,
          buffers: dict[str, np.ndarray] | None = None, job_id: str | None = None) -> Message:
    """A message answering ``request`` (its ``reply_to`` is the request's ``msg_id``)."""
    return Message(type=type, content=content or {}, buffers=buffers or {},
                   reply_to=request.msg_id, job_id=job_id if job_id is not None else request.job_id)


def error(code: str, message: str, reply_to: str | None = None,
          job_id: str | None = None) -> Message:
    """An ``error`` message; ``reply_to`` is None only when the request had no readable msg_id."""
    return Message(type="error", content={"code": code, "message": message},
                   reply_to=reply_to, job_id=job_id)


def frames_nbytes(frames: Iterable[bytes | memoryview]) -> int:
    """Total size of some frames, for size limits on the sending side."""
    return sum(memoryview(f).nbytes for f in frames)
