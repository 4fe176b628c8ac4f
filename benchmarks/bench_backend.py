"""Backend speed, measured the way an animator meets it; writes docs/benchmarks.md and its plots.

Run it with ``choreo bench [--quick]`` (or ``python benchmarks/bench_backend.py
[--quick] [--out PATH]``). Every figure in the report comes from this one run, on the
machine that ran it; the PNG plots go to ``images/`` beside the report.

What it measures, each in a module named for it:

* ``bench_server``: a real server process through the real socket: cold start, 30 s
  of dance with music features, time to first chunk, editing cost, ``ping`` round
  trips idle and busy, and the process's peak resident memory;
* ``bench_protocol``: ``motion_chunk`` throughput between two processes, with the
  server's socket type, options, framing and chunk sizes;
* ``bench_music``: music-feature extraction per minute of audio, cold and warm;
* ``bench_models``: every registered model on the CPU and on CUDA when present, for
  several dance lengths, and the EDGE-sized reference configuration;
* ``bench_blender``: keyframe writing through bpy, when a Python with bpy exists;
* ``bench_soak``: 1,000 jobs from many clients over every model, with cancels,
  disconnects and silent clients: nothing lost, nobody refused.

``bench_report`` turns the measurements into the markdown with a budgets table.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Sequence

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks import (  # noqa: E402
    bench_blender, bench_models, bench_music, bench_protocol, bench_server, bench_soak,
)
from benchmarks.bench_report import write_report  # noqa: E402

DEFAULT_OUT = REPO / "docs" / "benchmarks.md"


def machine() -> str:
    """CPU model, cores, torch and Python versions: what the report's header names."""
    import torch
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), Python {platform.python_version()}")


def gpu_name() -> str | None:
    import torch
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def measure(quick: bool, bpy_pythons: Sequence[str | os.PathLike[str]] | None = None) -> dict[str, Any]:
    """Run every benchmark; returns the measurements ``bench_report`` writes up."""
    print("server: cold start, warm dances, editing, round trips, peak memory", flush=True)
    server = bench_server.bench_server(repeats=2 if quick else 5, pings=200 if quick else 500)
    chunks = server.pop("chunks")
    print("protocol: motion_chunk throughput", flush=True)
    stream = bench_protocol.dance_stream(chunks)
    protocol = {"dance_seconds": bench_server.DANCE_SECONDS,
                "dance": bench_protocol.measure_throughput(stream, trials=20 if quick else 100),
                "sustained": bench_protocol.measure_throughput(stream, trials=3 if quick else 10, repeat=20)}
    print("music: feature extraction, cold and warm", flush=True)
    music = bench_music.bench_music(repeats=2 if quick else 5, cold_runs=1 if quick else 3)
    print("models: generation speed per model and device", flush=True)
    models = bench_models.bench_models(quick)
    print("blender: keyframe writing", flush=True)
    blender = bench_blender.bench_keyframes(bpy_pythons)
    print("soak: jobs from many clients over every model, with cancels and disconnects", flush=True)
    soak = bench_soak.bench_soak(quick)
    return {"command": "choreo bench" + (" --quick" if quick else ""), "date": time.strftime("%Y-%m-%d"),
            "machine": machine(), "gpu": gpu_name(), "quick": quick, "server": server,
            "protocol": protocol, "music": music, "models": models, "blender": blender, "soak": soak}


def run(out: Path | str = DEFAULT_OUT, quick: bool = False, *,
        bpy_pythons: Sequence[str | os.PathLike[str]] | None = None) -> int:
    """Measure, write ``out`` and ``<out's folder>/images/bench_*.png``; returns 0.

    ``bpy_pythons``: where to look for a Python with bpy (None: ``$CHOREO_BENCH_BPY_PYTHON``,
    then the repository's ``.venv-bpy-*``; an empty list skips the Blender part).
    A missed budget is reported (in the file and on stdout), not turned into an exit status:
    timings on a busy machine say nothing about the code's correctness.
    """
    measurements = measure(quick, bpy_pythons)
    ok = write_report(Path(out), measurements)
    print(f"wrote {out} ({'all budgets met' if ok else 'a budget was missed'})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the report (plots go to images/ beside it)")
    parser.add_argument("--quick", action="store_true", help="shorter dances, fewer repetitions (a smoke run)")
    parser.add_argument("--bpy-python", action="append", default=None, metavar="PYTHON",
                        help="a Python with bpy for the keyframe benchmark (repeatable; default: look it up)")
    args = parser.parse_args(argv)
    return run(out=args.out, quick=args.quick, bpy_pythons=args.bpy_python)


if __name__ == "__main__":
    sys.exit(main())
