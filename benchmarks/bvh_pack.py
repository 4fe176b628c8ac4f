"""Lossless smaller BVH files, so the shared capture fits into one GPU session's carry.

A device call carries 64 MiB in all, the repository's tracked files included (about 32 MiB).
The CMU capture is 95 MB of BVH text; xz brings it to about 19 MB, which with the songs,
the wheels and the repository goes over the limit. BVH motion is a table of fixed-point
decimals that change smoothly from frame to frame, so its numbers, stored as integers,
differenced along time and split into byte planes, compress about a third better than the
text (``benchmarks/gpu_pack.sh`` then runs xz over the result).

The packed form is exact: ``pack_file`` rebuilds the text from what it stores and keeps
the packed file only when the bytes come back identical (sha256); a file that does not
(another number format, ragged rows) is left as text. ``unpack_file`` rebuilds the text
and checks the sha256 again, so the GPU session reads the very bytes of ../shared/data.

    python benchmarks/bvh_pack.py pack SRC_DIR DST_DIR   # copy SRC_DIR to DST_DIR, BVH packed
    python benchmarks/bvh_pack.py unpack DIR             # every *.bvh.npz back to its *.bvh
"""

from __future__ import annotations

import argparse
import hashlib
import io
import shutil
import sys
from pathlib import Path

import numpy as np

SUFFIX = ".npz"  # 05_02.bvh -> 05_02.bvh.npz
MAX_VERBATIM = 0.01
"""At most this share of a file's rows (or one row) may be stored as text; else the file stays text."""


def _split(raw: bytes) -> tuple[bytes, list[bytes], bytes] | None:
    """Header (through the ``Frame Time`` line), motion rows, and what follows the last row."""
    at = raw.find(b"Frame Time")
    if at < 0:
        return None
    start = raw.find(b"\n", at) + 1
    if start == 0:
        return None
    rows = raw[start:].split(b"\n")
    tail = b"\n" if rows and rows[-1] == b"" else b""
    rows = rows[:-1] if tail else rows
    return raw[:start], rows, tail


def _text(values: np.ndarray, negative_zero: np.ndarray, decimals: int, row_end: bytes) -> bytes:
    """The motion rows as BVH writes them: ``%.<decimals>f``, one space between numbers."""
    floats = values / 10.0 ** decimals
    floats[negative_zero] = -0.0
    out = io.BytesIO()
    np.savetxt(out, floats, fmt=f"%.{decimals}f", delimiter=" ", newline=row_end.decode() + "\n")
    return out.getvalue()


def encode(raw: bytes) -> dict[str, np.ndarray] | None:
    """The arrays that rebuild ``raw`` exactly, or None when this file does not fit the scheme.

    Rows written another way than the rest (the integer T-pose frame some CMU files start
    with) are kept verbatim, up to ``MAX_VERBATIM`` of the rows or one row."""
    parts = _split(raw)
    if parts is None or not parts[1]:
        return None
    header, rows, tail = parts
    last = rows[-1]
    row_end = last[len(last.rstrip()):]  # e.g. one trailing space
    try:
        tokens = np.array([r[:len(r) - len(row_end)].split(b" ") for r in rows], dtype=np.bytes_)
        decimals = len(tokens[-1, 0].split(b".")[1])
        values = np.char.replace(tokens, b".", b"").astype(np.int64)
    except (ValueError, IndexError):  # ragged rows, numbers without a point, other formats
        return None
    negative_zero = np.char.startswith(tokens, b"-") & (values == 0)
    rebuilt = _text(values, negative_zero, decimals, row_end).split(b"\n")[:-1]
    verbatim = [i for i, (a, b) in enumerate(zip(rebuilt, rows)) if a != b]
    if len(verbatim) > max(1.0, MAX_VERBATIM * len(rows)):
        return None
    deltas = np.diff(values, axis=0, prepend=0).T  # channel by channel: neighbours in time sit together
    if np.abs(deltas).max(initial=0) >= 2**31:
        return None
    planes = np.ascontiguousarray(deltas.astype("<i4")).view(np.uint8).reshape(-1, 4).T
    arrays = {"header": np.frombuffer(header, dtype=np.uint8), "planes": np.ascontiguousarray(planes),
              "shape": np.array(values.shape), "decimals": np.array(decimals),
              "row_end": np.frombuffer(row_end, dtype=np.uint8), "trailing_newline": np.array(bool(tail)),
              "negative_zero": np.flatnonzero(negative_zero), "verbatim_rows": np.array(verbatim, dtype=np.int64),
              "verbatim": np.frombuffer(b"\n".join(rows[i] for i in verbatim), dtype=np.uint8),
              "sha256": np.frombuffer(hashlib.sha256(raw).digest(), dtype=np.uint8)}
    try:
        decode(arrays)
    except ValueError:
        return None
    return arrays


def decode(arrays: dict[str, np.ndarray]) -> bytes:
    """The exact bytes ``encode`` was given (checked against the stored sha256)."""
    frames, channels = (int(n) for n in arrays["shape"])
    deltas = np.ascontiguousarray(arrays["planes"].T).view("<i4").reshape(channels, frames).T
    values = np.cumsum(deltas.astype(np.int64), axis=0)
    negative_zero = np.zeros(values.shape, dtype=bool)
    negative_zero.flat[arrays["negative_zero"]] = True
    rows = _text(values, negative_zero, int(arrays["decimals"]), arrays["row_end"].tobytes()).split(b"\n")[:-1]
    if len(arrays["verbatim_rows"]):
        for i, row in zip(arrays["verbatim_rows"], arrays["verbatim"].tobytes().split(b"\n")):
            rows[int(i)] = row
    raw = arrays["header"].tobytes() + b"\n".join(rows) + (b"\n" if bool(arrays["trailing_newline"]) else b"")
    if hashlib.sha256(raw).digest() != arrays["sha256"].tobytes():
        raise ValueError("rebuilt BVH does not match its sha256")
    return raw


def pack_file(src: Path, dst_dir: Path) -> Path:
    """Write ``src`` into ``dst_dir`` packed (``NAME.bvh.npz``), or as it is when it does not fit."""
    arrays = encode(src.read_bytes())
    if arrays is None:
        return Path(shutil.copyfile(src, dst_dir / src.name))
    dst = dst_dir / (src.name + SUFFIX)
    np.savez(dst, **arrays)
    return dst


def unpack_file(packed: Path) -> Path:
    """Rebuild ``NAME.bvh`` beside ``NAME.bvh.npz`` and remove the packed file."""
    with np.load(packed, allow_pickle=False) as z:
        raw = decode({k: z[k] for k in z.files})
    out = packed.with_name(packed.name.removesuffix(SUFFIX))
    out.write_bytes(raw)
    packed.unlink()
    return out


def pack_tree(src: Path, dst: Path) -> tuple[int, int]:
    """Copy the folder ``src`` to ``dst``, every BVH packed; returns (packed, left as text)."""
    packed = kept = 0
    for path in sorted(p for p in src.rglob("*") if p.is_file()):
        target_dir = dst / path.parent.relative_to(src)
        target_dir.mkdir(parents=True, exist_ok=True)
        if path.suffix.lower() == ".bvh":
            wrote = pack_file(path, target_dir)
            packed, kept = (packed + 1, kept) if wrote.name.endswith(SUFFIX) else (packed, kept + 1)
        else:
            shutil.copyfile(path, target_dir / path.name)
    return packed, kept


def unpack_tree(root: Path) -> int:
    """Rebuild every packed BVH under ``root``; returns how many."""
    files = sorted(root.rglob("*.bvh" + SUFFIX))
    for packed in files:
        unpack_file(packed)
    return len(files)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    pk = sub.add_parser("pack", help="copy SRC to DST with every BVH packed")
    pk.add_argument("src", type=Path)
    pk.add_argument("dst", type=Path)
    up = sub.add_parser("unpack", help="rebuild every packed BVH under DIR")
    up.add_argument("dir", type=Path)
    args = p.parse_args(argv)
    if args.command == "pack":
        packed, kept = pack_tree(args.src, args.dst)
        print(f"{packed} BVH files packed, {kept} left as text")
    else:
        print(f"{unpack_tree(args.dir)} BVH files rebuilt and checked")
    return 0


if __name__ == "__main__":
    sys.exit(main())
