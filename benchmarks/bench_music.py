"""Music-feature extraction time per minute of audio, cold and warm.

The measured call is the server's own: ``MusicCache.analyse_bytes`` (decode and
resample the uploaded file, then ``analyse_music``), on a fresh cache each time so
nothing is served from it. The audio is the bundled example song tiled to at least a
minute and written as a 16-bit WAV at its own rate and channels, like an upload.

* cold: a fresh Python process (this file with ``--cold``) imports the music modules
  and analyses the file once; the first call compiles librosa's numba kernels. The
  child times imports + first call itself; the parent also times the whole process,
  interpreter start included.
* warm: in this process, after one untimed call, ``repeats`` timed calls.

This module imports only the standard library at the top, so that the cold child's
clock starts before numpy, librosa and ours are imported.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

MIN_SECONDS = 60.0


def example_audio(min_seconds: float = MIN_SECONDS) -> tuple[bytes, float]:
    """WAV bytes of the example song repeated to at least ``min_seconds``, and their length."""
    import io
    import math

    import numpy as np
    import soundfile as sf

    from backend.examples import EXAMPLE_SONG

    samples, rate = sf.read(EXAMPLE_SONG, dtype="float32", always_2d=True)
    copies = max(1, math.ceil(min_seconds * rate / len(samples)))
    tiled = np.tile(samples, (copies, 1))
    buffer = io.BytesIO()
    sf.write(buffer, tiled, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue(), len(tiled) / rate


def _analyse_fresh(data: bytes) -> Any:
    """The server's analysis of an upload, with a cache that has never seen it."""
    from backend.music.cache import MusicCache
    return MusicCache(max_entries=1, max_seconds=600.0).analyse_bytes(data)


def warm_seconds(data: bytes, repeats: int) -> list[float]:
    """Seconds of ``repeats`` analyses in this process, after one untimed call."""
    _analyse_fresh(data)
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        _analyse_fresh(data)
        out.append(time.perf_counter() - t0)
    return out


def cold_run(wav: Path, python: str = sys.executable) -> dict[str, float]:
    """One fresh process: its own imports + first call, and the whole process's wall clock."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    t0 = time.perf_counter()
    done = subprocess.run([python, str(Path(__file__).resolve()), "--cold", str(wav)], env=env,
                          capture_output=True, text=True, timeout=600)
    process = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"the cold feature run failed:\n{done.stderr[-2000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    return {**figures, "process_s": process}


def _cold_main(wav: str) -> int:
    t0 = time.perf_counter()
    from backend.music.cache import MusicCache
    t1 = time.perf_counter()
    data = Path(wav).read_bytes()
    t2 = time.perf_counter()
    MusicCache(max_entries=1, max_seconds=600.0).analyse_bytes(data)
    t3 = time.perf_counter()
    print(json.dumps({"imports_s": t1 - t0, "first_call_s": t3 - t2, "cold_s": (t1 - t0) + (t3 - t2)}))
    return 0


def bench_music(repeats: int, cold_runs: int) -> dict[str, Any]:
    """Cold and warm analysis of the tiled example song; seconds and seconds per minute."""
    data, seconds = example_audio()
    minutes = seconds / 60.0
    with tempfile.TemporaryDirectory(prefix="choreo-bench-") as folder:
        wav = Path(folder) / "example_tiled.wav"
        wav.write_bytes(data)
        colds = [cold_run(wav) for _ in range(cold_runs)]
    warm = warm_seconds(data, repeats)
    cold = statistics.median(c["cold_s"] for c in colds)
    return {"audio_seconds": seconds, "audio_bytes": len(data), "cold_runs": colds,
            "cold_s": cold, "cold_s_per_min": cold / minutes,
            "cold_imports_s": statistics.median(c["imports_s"] for c in colds),
            "cold_process_s": statistics.median(c["process_s"] for c in colds),
            "warm_runs": warm, "warm_s": statistics.median(warm),
            "warm_s_per_min": statistics.median(warm) / minutes}


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--cold":
        sys.exit(_cold_main(sys.argv[2]))
    print(json.dumps(bench_music(repeats=3, cold_runs=1), indent=1))
