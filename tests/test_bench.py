"""The benchmark's machinery, not its speed: streams are counted right, budgets judged
right, the report and plots written, Blender skipped cleanly. No timing assertions
here: speed targets live in the benchmark's own budgets table."""

from __future__ import annotations

import math
import os
import stat
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmarks import bench_blender, bench_models, bench_music, bench_protocol
from benchmarks.bench_report import (GPU_SECONDS, NO_GPU, Budget, all_met, budgets, linearity, plant_budgets,
                                     protocol_overhead_pct, render, write_report)
from protocol.client import StreamedChunk
from protocol.messages import encode, frames_nbytes

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunks(sizes: list[int]) -> list[StreamedChunk]:
    rng = np.random.default_rng(0)
    out, start = [], 0
    for n in sizes:
        q = rng.standard_normal((n, 24, 4)).astype(np.float32)
        q /= np.linalg.norm(q, axis=-1, keepdims=True)
        out.append(StreamedChunk("job", start, q, rng.standard_normal((n, 3)).astype(np.float32),
                                 rng.random((n, 4)).astype(np.float32), ("a", "b", "c", "d"), 30.0))
        start += n
    return out


def _rows(walls: dict[float, float], cuda: bool = False) -> list[dict[str, Any]]:
    return [{"seconds": s, "wall_s": w, "first_chunk_s": 0.2, "all_wall_s": [w], "repeats": 1, "chunks": 3,
             "cuda_peak_mb": 512.0 if cuda else None} for s, w in walls.items()]


def measurements(gpu: bool = False) -> dict[str, Any]:
    """A complete measurements dict, as ``bench_backend.measure`` returns one."""
    stream = bench_protocol.dance_stream(_chunks([120, 100, 80]))
    nbytes = bench_protocol.stream_nbytes(stream)
    throughput = {"messages": 3, "frames": 300, "bytes": nbytes, "trials": 2, "repeat": 1, "times_s": [1e-3, 1e-3],
                  "median_s": 1e-3, "frames_per_s": 3e5, "messages_per_s": 3e3, "mb_per_s": nbytes / 1e3 / 1e6}
    runs = [{"model": "edge", "family": "diffusion", "device": "cpu", "parameters": 1_670_000,
             "options": {"steps": 20}, "lengths": _rows({10.0: 0.6, 30.0: 1.9, 120.0: 7.0, 600.0: 36.0})}]
    edge_sized = [{"device": "cpu", "parameters": 44_800_000, "seconds": 10.0, "wall_s": 14.0,
                   "s_per_dance_s": 1.4, "default_config": {"d_model": 128, "num_layers": 4, "num_heads": 4},
                   "default_parameters": 1_670_000}]
    if gpu:
        runs.append({**runs[0], "device": "cuda", "lengths": _rows({10.0: 0.3, 30.0: 0.9, GPU_SECONDS: 1.8}, True)})
        edge_sized.append({**edge_sized[0], "device": "cuda", "wall_s": 1.0, "s_per_dance_s": 0.1})
    return {
        "command": "choreo bench --quick", "date": "2026-01-01", "machine": "test machine, 2 cores",
        "gpu": "Test GPU" if gpu else None, "quick": True,
        "server": {"cold_start_s": 4.0, "first_run_ready_s": 4.5, "first_run_first_chunk_s": 27.0,
                   "warm_30s_dance_s": 2.2, "first_chunk_s": 0.44, "runs": 2,
                   "all_totals": [2.2, 2.3], "all_firsts": [0.44, 0.45], "dance_generation_s": 1.8,
                   "edit_5s_s": 0.24, "generate_5s_s": 0.18, "dance_rate_5s_s": 0.27,
                   "ping_idle_s": list(np.linspace(1e-4, 5e-4, 50)), "ping_busy_s": list(np.linspace(1e-3, 9e-3, 50)),
                   "ping_busy_jobs": 1, "peak_rss_mb": 900.0, "chunk_frames": [120, 100, 80],
                   "per_model": {"edge": {"family": "diffusion", "first_chunk_s": 0.44, "total_s": 2.2,
                                          "all_firsts": [0.44]},
                                 "fact": {"family": "autoregressive", "first_chunk_s": 0.3, "total_s": 0.6,
                                          "all_firsts": [0.3]}}},
        "protocol": {"dance_seconds": 30.0, "dance": throughput, "sustained": {**throughput, "repeat": 20}},
        "music": {"audio_seconds": 60.0, "audio_bytes": 10_000_000, "cold_runs": [{}], "cold_s": 4.0,
                  "cold_s_per_min": 4.0, "cold_imports_s": 0.1, "cold_process_s": 4.4, "warm_runs": [0.3, 0.3],
                  "warm_s": 0.3, "warm_s_per_min": 0.3},
        "models": {"default_model": "edge", "runs": runs, "edge_sized": edge_sized},
        "blender": bench_blender.bench_keyframes([]),
    }


def _verdict(m: dict[str, Any], start: str) -> str:
    return next(b.verdict for b in budgets(m) if b.what.startswith(start))


# -- protocol --------------------------------------------------------------------------


def test_throughput_counts_the_encoded_stream():
    stream = bench_protocol.dance_stream(_chunks([90, 60, 30]))
    result = bench_protocol.measure_throughput(stream, trials=2, repeat=2)
    assert result["bytes"] == 2 * sum(frames_nbytes(encode(m)) for m in stream)
    assert result["frames"] == 2 * 180 and result["messages"] == 6 and len(result["times_s"]) == 2
    for key in ("frames_per_s", "messages_per_s", "mb_per_s", "median_s"):
        assert math.isfinite(result[key]) and result[key] > 0, key


def test_chunk_messages_are_what_the_client_reads():
    chunks = _chunks([50, 40])
    for chunk, message in zip(chunks, bench_protocol.dance_stream(chunks), strict=True):
        read = StreamedChunk.from_message(message)
        assert read.start == chunk.start and read.num_frames == chunk.num_frames
        np.testing.assert_array_equal(read.rotations, chunk.rotations)


def test_latency_summary_uses_nearest_rank():
    summary = bench_protocol.latency_summary([0.001] * 99 + [0.1])
    assert summary == {"n": 100, "median_ms": 1.0, "p99_ms": 1.0}
    assert bench_protocol.latency_summary([0.001] * 98 + [0.1] * 2)["p99_ms"] == pytest.approx(100.0)


# -- budgets ---------------------------------------------------------------------------


def test_budget_verdict_flips_at_the_limit():
    assert Budget("x", 1.5, 1.5).verdict == "pass"
    assert Budget("x", 1.51, 1.5).verdict == "FAIL"
    assert Budget("x", None, 2.0, note=NO_GPU).verdict == NO_GPU
    assert Budget("x", math.nan, 1.3, "x", note="needs two lengths").verdict == "needs two lengths"
    assert Budget("x", 3.0, 3.0, "rate", at_least=True).verdict == "pass"
    assert Budget("x", 2.9, 3.0, "rate", at_least=True).verdict == "FAIL"
    assert "≥ 3 s/s" in Budget("x", 2.9, 3.0, "rate", at_least=True).row()


def test_cpu_rate_and_autoregressive_first_chunk_budgets():
    m = measurements()
    m["models"]["runs"].append({"model": "fact", "family": "autoregressive", "device": "cpu", "parameters": 10,
                                "options": {}, "lengths": _rows({10.0: 0.5, 30.0: 1.5})})
    assert _verdict(m, "edge on cpu: seconds of dance") == "pass"
    assert _verdict(m, "fact on cpu: seconds of dance") == "pass"
    assert _verdict(m, "fact: `generate` request to first") == "pass"
    assert not any(b.what.startswith("edge: `generate`") for b in budgets(m))  # diffusion: no such budget
    m["models"]["runs"][0]["lengths"][0]["wall_s"] = 10.0 / 2.9  # the slowest length decides
    assert _verdict(m, "edge on cpu: seconds of dance") == "FAIL"
    m["server"]["per_model"]["fact"]["first_chunk_s"] = 0.51
    assert _verdict(m, "fact: `generate` request to first") == "FAIL"


def test_graph_budgets_its_30_s_dance_and_first_chunk():
    m = measurements()
    m["models"]["runs"].append({"model": "graph", "family": "motion_graph", "device": "cpu", "parameters": None,
                                "options": {}, "lengths": _rows({10.0: 0.1, 30.0: 0.3})})
    m["server"]["per_model"]["graph"] = {"family": "motion_graph", "first_chunk_s": 0.2, "total_s": 0.5,
                                         "all_firsts": [0.2]}
    assert _verdict(m, "graph on cpu: 30 s of dance") == "pass"
    assert _verdict(m, "graph: `generate` request to first") == "pass"
    m["models"]["runs"][-1]["lengths"][1]["wall_s"] = 2.1
    m["server"]["per_model"]["graph"]["first_chunk_s"] = 0.6
    assert _verdict(m, "graph on cpu: 30 s of dance") == "FAIL"
    assert _verdict(m, "graph: `generate` request to first") == "FAIL"


def test_the_soak_is_budgeted_and_reported(tmp_path: Path):
    m = measurements()
    m["soak"] = {"jobs": 1000, "jobs_done": 700, "jobs_cancelled": 150, "jobs_disconnected": 100, "jobs_failed": 50,
                 "terminal_messages": 900, "jobs_without_terminal": 0, "frames_lost": 0, "same_seed_pairs": 600,
                 "same_seed_mismatches": 0, "queue_full_to_live_clients": 0, "internal_errors": 0,
                 "silent_jobs": 160, "silent_client_timeouts": 40, "per_model": {"edge": 500, "graph": 500},
                 "usage_before": {"rss_mb": 500.0, "open_fds": 15}, "usage_after": {"rss_mb": 502.0, "open_fds": 14},
                 "seconds": 270.0, "problems": [], "max_queue": 8, "client_timeout_s": 20.0}
    assert _verdict(m, "soak (1000 jobs): frames lost") == "pass"
    out = tmp_path / "benchmarks.md"
    assert write_report(out, m)
    text = out.read_text()
    assert "## Soak" in text and "| frames lost | 0 |" in text and "500.00 → 502.00 MiB" in text
    m["soak"]["frames_lost"] = 3
    assert _verdict(m, "soak (1000 jobs): frames lost") == "FAIL"


@pytest.mark.parametrize("path, start, ok, bad", [
    (("server", "first_chunk_s"), "`generate` request", 1.4, 1.6),
    (("server", "cold_start_s"), "backend cold start", 4.9, 5.1),
    (("server", "warm_30s_dance_s"), "30 s of dance", 9.9, 10.1),
    (("server", "edit_5s_s"), "edit of a 5 s range", 0.26, 0.28),
])
def test_measured_values_crossing_a_budget_fail_it(path, start, ok, bad):
    m = measurements()
    for value, verdict in ((ok, "pass"), (bad, "FAIL")):
        m[path[0]][path[1]] = value
        assert _verdict(m, start) == verdict
        assert all_met(budgets(m)) == (verdict == "pass")


def test_gpu_budget_says_no_gpu_without_one_and_judges_with_one():
    assert _verdict(measurements(), f"{GPU_SECONDS:.0f} s of dance on a GPU") == NO_GPU
    m = measurements(gpu=True)
    assert _verdict(m, f"{GPU_SECONDS:.0f} s of dance on a GPU") == "pass"
    next(r for r in m["models"]["runs"][1]["lengths"] if r["seconds"] == GPU_SECONDS)["wall_s"] = 2.1
    assert _verdict(m, f"{GPU_SECONDS:.0f} s of dance on a GPU") == "FAIL"


def test_linearity_budget_and_fit():
    m = measurements()
    rows = m["models"]["runs"][0]["lengths"]
    assert _verdict(m, "linear cost: edge on cpu") == "pass"
    exact = linearity(_rows({10.0: 1.0, 30.0: 3.0, 120.0: 12.0}))
    assert exact["ratio"] == pytest.approx(1.0) and exact["slope"] == pytest.approx(0.1)
    assert exact["intercept"] == pytest.approx(0.0, abs=1e-9) and exact["max_residual"] < 1e-9
    rows[-1]["wall_s"] = 600.0 * 0.06 * 1.4  # 1.4x the 10 s row's cost per second
    assert linearity(rows)["ratio"] > 1.3 and _verdict(m, "linear cost: edge on cpu") == "FAIL"


def test_protocol_overhead_budget():
    m = measurements()
    assert protocol_overhead_pct(m) == pytest.approx(100 * 1e-3 / 1.8)
    assert _verdict(m, "protocol overhead") == "pass"
    m["protocol"]["dance"]["median_s"] = 0.1  # 5.6 % of 1.8 s
    assert _verdict(m, "protocol overhead") == "FAIL"


# -- report and plots ------------------------------------------------------------------


@pytest.mark.parametrize("gpu", [False, True])
def test_report_has_every_budget_and_valid_plots(tmp_path: Path, gpu: bool):
    import matplotlib.image

    m = measurements(gpu)
    out = tmp_path / "docs" / "benchmarks.md"
    assert write_report(out, m) is True
    text = out.read_text(encoding="utf-8")
    rows = budgets(m)
    # the 8 fixed rows (first run after install among them), one planting row per rig, one
    # linearity row per model and device, one rate row per model on the CPU, one first-chunk
    # row per streaming model (fact)
    assert len(rows) == 8 + len(bench_blender.PLANT_RIGS) + len(m["models"]["runs"]) + 1 + 1
    assert "first run after a fresh install" in text and "27.00 s" in text
    for b in rows:
        assert b.row() in text
    assert "choreo bench --quick" in text and "test machine" in text
    pngs = sorted((out.parent / "images").glob("bench_*.png"))
    assert [p.name for p in pngs] == ["bench_latency.png", "bench_rates.png", "bench_scaling.png"]
    for png in pngs:
        assert f"](images/{png.name})" in text
        assert png.read_bytes()[:8] == PNG_SIGNATURE
        pixels = matplotlib.image.imread(png)
        assert pixels.shape[0] > 100 and pixels.shape[1] > 100 and float(np.ptp(pixels[..., :3])) > 0.5


def test_report_marks_a_missed_budget(tmp_path: Path):
    m = measurements()
    m["server"]["first_chunk_s"] = 3.0
    assert write_report(tmp_path / "b.md", m) is False
    assert "| 3.00 s | ≤ 1.5 s | FAIL |" in (tmp_path / "b.md").read_text(encoding="utf-8")


# -- Blender ---------------------------------------------------------------------------


def test_blender_skipped_without_a_bpy_python(tmp_path: Path):
    assert bench_blender.bench_keyframes([]) == {"skipped": bench_blender.SKIP_NO_BPY}
    assert bench_blender.bench_keyframes([tmp_path / "no-python"]) == {"skipped": bench_blender.SKIP_NO_BPY}
    m = measurements()
    text = render(m, {"scaling": "s.png", "rates": "r.png", "latency": "l.png"})
    assert "no Python with bpy found (`python -m tests.blender` creates `.venv-bpy-5.0.1`)" in text
    assert _verdict(m, "Blender") == bench_blender.SKIP_NO_BPY
    assert {b.verdict for b in plant_budgets(m["blender"])} == {bench_blender.SKIP_NO_BPY}


def _blender_run(plant_s: dict[str, float]) -> dict[str, Any]:
    """``bench_blender.bench_keyframes``'s result from a run that measured planting in ``plant_s``
    seconds per rig (the shape ``bench_keyframes.measure`` returns, its figures made up)."""
    rigs = {kind: {"bones": 24 + i, "frames": 1800, "changed_frames": 1790, "spans": 272, "hip_drop_frames": 1500,
                   "all_s": [s, s + 0.01, s + 0.02], "best_s": s, "budget_s": bench_blender.PLANT_BUDGET_S,
                   "pass": s <= bench_blender.PLANT_BUDGET_S}
            for i, (kind, s) in enumerate(plant_s.items())}
    return {"blender": "5.0.1", "frames": 1800, "keys": 178_200, "bulk_s": 0.058, "bulk_keys_per_s": 3.07e6,
            "insert_keys": 178_200, "insert_s": 11.6, "insert_keys_per_s": 15_300.0, "insert_60s_estimate_s": 11.6,
            "speedup": 200.0, "budget_s": 0.5, "pass": True, "machine": "x86_64",
            "python": ".venv-bpy-5.0.1/bin/python",
            "plant": {"dance": "motion library clips 60_09, 61_09 (1800 frames at 30 fps)", "rigs": rigs}}


def test_planting_budget_is_judged_per_rig_and_reported(tmp_path: Path):
    m = measurements()
    m["blender"] = _blender_run({kind: 0.3 for kind in bench_blender.PLANT_RIGS})
    rows = plant_budgets(m["blender"])
    assert [b.what for b in rows] == [f"Blender: feet planted over 60 s of real dance on {name}"
                                      for name in bench_blender.PLANT_RIGS.values()]
    assert [b.verdict for b in rows] == ["pass"] * len(rows) and all(b in budgets(m) for b in rows)
    text = render(m, {"scaling": "s.png", "rates": "r.png", "latency": "l.png"})
    assert "| Blender: feet planted over 60 s of real dance on the 24-bone SMPL rig | 0.300 s | ≤ 0.300 s | pass |" \
        in text
    assert "## Blender keyframe writing and foot planting" in text and "clips 60_09, 61_09" in text
    assert "| the Mixamo-style test rig | 25 | 1,800 (1,790) | 272 | 1,500 | 0.300 | ≤ 0.3 s: pass |" in text
    assert "Best of 3" in text
    m["blender"] = _blender_run({"smpl": 0.25, "mixamo": 0.31})
    assert [b.verdict for b in plant_budgets(m["blender"])] == ["pass", "FAIL"]
    assert write_report(tmp_path / "b.md", m) is False
    # A run from before planting was measured: the rows say so, and fail nothing.
    del m["blender"]["plant"]
    assert {b.verdict for b in plant_budgets(m["blender"])} == {"not measured"} and all_met(plant_budgets(m["blender"]))


def test_bpy_python_lookup_order(tmp_path: Path):
    env_python = tmp_path / "env-python"
    assert bench_blender.default_candidates({bench_blender.ENV_VAR: str(env_python)}, tmp_path)[0] == env_python
    assert bench_blender.default_candidates({}, tmp_path)[0] == tmp_path / ".venv-bpy-5.0.1" / "bin" / "python"
    second = tmp_path / "second"
    second.write_text("#!/bin/sh\n")
    second.chmod(second.stat().st_mode | stat.S_IXUSR)
    assert bench_blender.find_bpy_python([tmp_path / "missing", second]) == second
    if os.name == "posix":
        plain = tmp_path / "not-executable"
        plain.write_text("")
        assert bench_blender.find_bpy_python([plain]) is None


def test_a_failing_bpy_python_is_skipped_not_raised(tmp_path: Path):
    if os.name != "posix":
        pytest.skip("a shell script stands in for a Python")
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho 'no bpy here' >&2\nexit 3\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    result = bench_blender.bench_keyframes([fake])
    assert result["skipped"].startswith("skipped:") and "exit 3" in result["skipped"]


# -- inputs ----------------------------------------------------------------------------


def test_example_audio_is_at_least_a_minute():
    import io

    import soundfile as sf

    data, seconds = bench_music.example_audio()
    assert seconds >= 60.0
    assert sf.info(io.BytesIO(data)).duration == pytest.approx(seconds)


def test_every_registered_model_runs_through_the_timing_loop():
    from backend.models.registry import available_models, load_generator

    for name in available_models():
        generator = load_generator(name, device="cpu")
        options = bench_models.default_options(generator)
        if "steps" in options:
            options["steps"] = 2
        row = bench_models.time_generation(generator, 6.0, options, "cpu")
        assert row["seconds"] == 6.0 and row["chunks"] >= 1 and row["cuda_peak_mb"] is None
        assert 0 < row["first_chunk_s"] <= row["wall_s"]
        assert bench_models.music_features(45).shape == (45, bench_models._song_features().shape[1])

