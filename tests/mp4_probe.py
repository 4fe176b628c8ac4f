"""Read an MP4's tracks and lengths with the standard library (no ffprobe needed).

An MP4 is a tree of boxes (ISO/IEC 14496-12): ``moov`` holds ``mvhd`` (the movie's
timescale and duration) and one ``trak`` per stream, whose ``mdia`` holds ``hdlr`` (the
handler: ``vide`` for video, ``soun`` for audio) and ``mdhd`` (the track's timescale and
duration). That is all a test needs to say "a video and an audio stream, this long".
The preview test uses this, and cross-checks with ``ffprobe`` where it is installed.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Track:
    kind: str  # "vide", "soun", ...
    seconds: float


@dataclass
class Mp4Info:
    brand: str
    seconds: float
    tracks: list[Track]

    def kinds(self) -> list[str]:
        return [t.kind for t in self.tracks]


def _boxes(data: bytes, start: int, end: int):  # noqa: ANN202
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        header = 8
        if size == 1:
            size = struct.unpack(">Q", data[pos + 8:pos + 16])[0]
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise ValueError(f"bad box {kind!r} at {pos}")
        yield kind.decode("latin-1"), pos + header, pos + size
        pos += size


def _child(data: bytes, start: int, end: int, kind: str) -> tuple[int, int] | None:
    for k, a, b in _boxes(data, start, end):
        if k == kind:
            return a, b
    return None


def _time_header(data: bytes, a: int) -> tuple[int, int]:
    """(timescale, duration) of an ``mvhd`` or ``mdhd`` box's payload."""
    if data[a] == 1:
        return struct.unpack(">IQ", data[a + 20:a + 32])
    return struct.unpack(">II", data[a + 12:a + 20])


def probe(path: str | Path) -> Mp4Info:
    data = Path(path).read_bytes()
    ftyp = _child(data, 0, len(data), "ftyp")
    moov = _child(data, 0, len(data), "moov")
    if ftyp is None or moov is None:
        raise ValueError(f"{path} is not an MP4 (no ftyp/moov box)")
    brand = data[ftyp[0]:ftyp[0] + 4].decode("latin-1")
    mvhd = _child(data, *moov, "mvhd")
    scale, duration = _time_header(data, mvhd[0])
    tracks = []
    for kind, a, b in _boxes(data, *moov):
        if kind != "trak":
            continue
        mdia = _child(data, a, b, "mdia")
        hdlr, mdhd = _child(data, *mdia, "hdlr"), _child(data, *mdia, "mdhd")
        handler = data[hdlr[0] + 8:hdlr[0] + 12].decode("latin-1")
        t_scale, t_duration = _time_header(data, mdhd[0])
        tracks.append(Track(handler, t_duration / t_scale if t_scale else 0.0))
    return Mp4Info(brand, duration / scale if scale else 0.0, tracks)
