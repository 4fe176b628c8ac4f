"""docs/benchmarks.md from one run's measurements: the budgets, their verdicts, the tables.

The writer only formats: every number it prints is in ``measurements`` (the dict
``bench_backend.run`` gathers), so nothing in the report can come from anywhere but
the run that made it. Its keys:

* ``command``, ``date``, ``machine``, ``quick``, ``gpu`` (CUDA device name or None);
* ``server``: ``bench_server.bench_server`` (without its chunks);
* ``models``: ``bench_models.bench_models``;
* ``music``: ``bench_music.bench_music``;
* ``protocol``: ``dance`` and ``sustained`` (``bench_protocol.measure_throughput``),
  ``dance_seconds``;
* ``blender``: ``bench_blender.bench_keyframes``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from benchmarks.bench_blender import PLANT_BUDGET_S, PLANT_RIGS, plant_method, plant_table
from benchmarks.bench_protocol import latency_summary

COLD_START_S = 5.0
FIRST_RUN_READY_S = 10.0  # issue 15: a fresh install's first start, librosa's kernels not yet compiled
WARM_30S_DANCE_S = 10.0
FIRST_CHUNK_S = 1.5
GPU_60S_DANCE_S = 2.0
GPU_SECONDS = 60.0
LINEARITY_RATIO = 1.3
PROTOCOL_OVERHEAD_PCT = 5.0
CPU_DANCE_RATE = 3.0  # seconds of dance per wall-clock second, every default model on a 2-core CPU
AR_FIRST_CHUNK_S = 0.5  # a streaming model's first chunk, request to message, warm CPU server
STREAMING_FAMILIES = ("autoregressive", "motion_graph")  # families that send frames as they make them
GRAPH_30S_DANCE_S = 2.0  # the motion graph: 30 s of dance, warm, 2 CPU cores (issue 13)
NO_GPU = "no GPU in this run"

UNITS = {"s": "{:.2f} s", "s3": "{:.3f} s", "x": "{:.2f}x", "%": "{:.3f} %", "rate": "{:.1f} s/s", "n": "{:.0f}"}
LIMITS = {"s": "{:g} s", "s3": "{:.3f} s", "x": "{:g}x", "%": "{:g} %", "rate": "{:g} s/s", "n": "{:g}"}


@dataclass(frozen=True)
class Budget:
    """One row of the budgets table. ``measured`` None: not measured, ``note`` says why.

    A budget is a ceiling (times, ratios) unless ``at_least``: then it is a floor (rates)."""

    what: str
    measured: float | None
    limit: float
    unit: str = "s"
    note: str = ""
    at_least: bool = False

    @property
    def verdict(self) -> str:
        if self.measured is None or not math.isfinite(self.measured):
            return self.note or "not measured"
        met = self.measured >= self.limit if self.at_least else self.measured <= self.limit
        return "pass" if met else "FAIL"

    def row(self) -> str:
        fmt = UNITS[self.unit]
        known = self.measured is not None and math.isfinite(self.measured)
        measured = fmt.format(self.measured) if known else "—"
        sign = "≥" if self.at_least else "≤"
        return f"| {self.what} | {measured} | {sign} {LIMITS[self.unit].format(self.limit)} | {self.verdict} |"


def linearity(rows: Sequence[dict[str, Any]]) -> dict[str, float]:
    """How close to linear (time against dance length) one model/device's rows are.

    ``ratio``: max ÷ min of wall clock per second of dance across the lengths (1.00 =
    exactly proportional; the budget). ``slope``/``intercept``: the least-squares line
    time = intercept + slope × length; ``max_residual``: its largest |fit − measured| ÷
    measured (0 for two lengths, which any line fits).
    """
    lengths = np.array([r["seconds"] for r in rows], dtype=float)
    walls = np.array([r["wall_s"] for r in rows], dtype=float)
    per_second = walls / lengths
    if len(rows) < 2:
        return {"ratio": math.nan, "slope": math.nan, "intercept": math.nan, "max_residual": math.nan}
    slope, intercept = np.polyfit(lengths, walls, 1)
    residual = np.abs(intercept + slope * lengths - walls) / walls
    return {"ratio": float(per_second.max() / per_second.min()), "slope": float(slope),
            "intercept": float(intercept), "max_residual": float(residual.max())}


def find_run(measurements: dict[str, Any], device: str, model: str | None = None) -> dict[str, Any] | None:
    """The models' run of ``model`` (default: the default model) on ``device``, if any."""
    models = measurements["models"]
    model = model or models["default_model"]
    return next((r for r in models["runs"] if r["model"] == model and r["device"] == device), None)


def _row(run: dict[str, Any] | None, seconds: float) -> dict[str, Any] | None:
    if run is None:
        return None
    return next((r for r in run["lengths"] if r["seconds"] == seconds), None)


def protocol_overhead_pct(measurements: dict[str, Any]) -> float:
    """Streaming a 30 s dance's chunks through the socket ÷ the server generating it, in %."""
    return 100.0 * measurements["protocol"]["dance"]["median_s"] / measurements["server"]["dance_generation_s"]


def budgets(measurements: dict[str, Any]) -> list[Budget]:
    """Every budget with its measured value, in the order of the report's table."""
    server = measurements["server"]
    out = [
        Budget("backend cold start to ready (default model, CPU)", server["cold_start_s"], COLD_START_S),
        Budget("first run after a fresh install (numba cache empty): launch to ready",
               server.get("first_run_ready_s"), FIRST_RUN_READY_S, note="not measured"),
        Budget("30 s of dance, warm CPU server, through the socket, features included",
               server["warm_30s_dance_s"], WARM_30S_DANCE_S),
        Budget("`generate` request to first `motion_chunk`, warm CPU server",
               server["first_chunk_s"], FIRST_CHUNK_S),
        Budget("edit of a 5 s range ≤ generating 5 s of a 30 s dance (model time)",
               server["edit_5s_s"], server["dance_rate_5s_s"], "s3"),
    ]
    gpu = _row(find_run(measurements, "cuda"), GPU_SECONDS)
    out.append(Budget(f"{GPU_SECONDS:.0f} s of dance on a GPU (default model, in process)",
                      None if gpu is None else gpu["wall_s"], GPU_60S_DANCE_S, note=NO_GPU))
    for run in measurements["models"]["runs"]:
        if run["device"] != "cpu":
            continue
        slowest = min(r["seconds"] / r["wall_s"] for r in run["lengths"])
        out.append(Budget(f"{run['model']} on cpu: seconds of dance per second, slowest dance length",
                          slowest, CPU_DANCE_RATE, "rate", at_least=True))
    for name, timed in server.get("per_model", {}).items():
        if timed["family"] in STREAMING_FAMILIES:
            out.append(Budget(f"{name}: `generate` request to first `motion_chunk`, warm CPU server",
                              timed["first_chunk_s"], AR_FIRST_CHUNK_S, "s3"))
    graph = _row(find_run(measurements, "cpu", "graph"), 30.0) if any(
        r["model"] == "graph" for r in measurements["models"]["runs"]) else None
    if graph is not None:
        out.append(Budget("graph on cpu: 30 s of dance, warm, in process", graph["wall_s"], GRAPH_30S_DANCE_S))
    for run in measurements["models"]["runs"]:
        lengths = ", ".join(f"{r['seconds']:g}" for r in run["lengths"])
        out.append(Budget(f"linear cost: {run['model']} on {run['device']}, max ÷ min cost per second of "
                          f"dance over {lengths} s", linearity(run["lengths"])["ratio"], LINEARITY_RATIO, "x",
                          note="needs two lengths"))
    out.append(Budget("protocol overhead: streaming a 30 s dance's chunks ÷ generating it",
                      protocol_overhead_pct(measurements), PROTOCOL_OVERHEAD_PCT, "%"))
    soak = measurements.get("soak")
    if soak is not None:
        for key, what in (("frames_lost", "frames lost"), ("jobs_without_terminal", "jobs without a terminal message"),
                          ("queue_full_to_live_clients", "`queue_full` to live clients within `max_queue`"),
                          ("internal_errors", "`internal` errors"),
                          ("same_seed_mismatches", "same-seed pairs that differ")):
            out.append(Budget(f"soak ({soak['jobs']} jobs): {what}", float(soak[key]), 0.0, "n"))
    blender = measurements["blender"]
    out.append(Budget("Blender: 60 s of motion keyed on the 24-bone rig (bulk path)",
                      blender.get("bulk_s"), float(blender.get("budget_s", 0.5)), "s3",
                      note=blender.get("skipped", "")))
    return out + plant_budgets(blender)


def plant_budgets(blender: dict[str, Any]) -> list[Budget]:
    """Issue 15's planting budget, one row per rig ``bench_keyframes`` plants on (``blender``:
    ``bench_blender.bench_keyframes``'s result; skipped or without planting: rows say so)."""
    planted = blender.get("plant", {}).get("rigs", {})
    return [Budget(f"Blender: feet planted over 60 s of real dance on {name}", planted.get(kind, {}).get("best_s"),
                   float(planted.get(kind, {}).get("budget_s", PLANT_BUDGET_S)), "s3",
                   note=blender.get("skipped", "not measured"))
            for kind, name in PLANT_RIGS.items()]


def all_met(rows: Sequence[Budget]) -> bool:
    """No budget failed (rows that could not be measured do not fail the run)."""
    return all(b.verdict != "FAIL" for b in rows)


def _relative(image: Path, out: Path) -> str:
    return image.resolve().relative_to(out.resolve().parent).as_posix()


def _f(value: float | None, fmt: str = "{:.2f}", none: str = "—") -> str:
    return none if value is None or not math.isfinite(value) else fmt.format(value)


def _models_section(m: dict[str, Any], images: dict[str, str]) -> list[str]:
    runs = m["models"]["runs"]
    lines = ["## Generation speed per model and device (in process)", "",
             "Each registered model on each device, after one untimed warm-up window: wall clock from the "
             "`generate` call to the last and to the first chunk, best of "
             f"{runs[0]['lengths'][0]['repeats'] if runs else 0} (the repeats go round the lengths, so a slow spell "
             "of the machine does not fall on one length only), the model's default options, the example "
             "song's real music features repeated to the length (features not included: the server "
             "section has them). On CUDA also `torch.cuda.max_memory_allocated` per length.", ""]
    for run in runs:
        lin = linearity(run["lengths"])
        params = f", {run['parameters'] / 1e6:.2f} M parameters" if run.get("parameters") else ""
        lines += [f"### {run['model']} on {run['device']} ({run['family']}{params})", "",
                  f"Options: {run['options']}.", "",
                  "| dance length | wall clock | seconds of dance per second | first chunk | chunks | "
                  "CUDA peak memory |", "|---|---|---|---|---|---|"]
        for r in run["lengths"]:
            lines.append(f"| {r['seconds']:g} s | {r['wall_s']:.2f} s | {r['seconds'] / r['wall_s']:.1f} | "
                         f"{r['first_chunk_s']:.3f} s | {r['chunks']} | "
                         f"{_f(r.get('cuda_peak_mb'), '{:.0f} MiB', 'not CUDA')} |")
        lines += ["", f"Linearity: cost per second of dance varies by {_f(lin['ratio'])}x across lengths "
                  f"(max ÷ min; 1.00 = exactly proportional; budget ≤ {LINEARITY_RATIO}x). Least-squares "
                  f"line: {_f(lin['intercept'], '{:.3f}')} s + {_f(lin['slope'], '{:.4f}')} s per second of "
                  f"dance, largest relative residual {_f(100 * lin['max_residual'], '{:.1f}')} %"
                  + (" (two lengths: any line fits them exactly)" if len(run["lengths"]) == 2 else "")
                  + ".", ""]
    lines += [f"![Generation time against dance length]({images['scaling']})", "",
              f"![Seconds of dance per second]({images['rates']})", ""]
    return lines


def _edge_sized_section(m: dict[str, Any]) -> list[str]:
    lines = ["## EDGE-sized reference, same code, same run", ""]
    for ref in m["models"]["edge_sized"]:
        default = find_run(m, ref["device"], "edge")
        base = default["lengths"][0] if default else None
        cfg = ref["default_config"]
        line = (f"On {ref['device']}: 8 layers, width 512, 8 heads ({ref['parameters'] / 1e6:.1f} M parameters), "
                f"50 DDIM steps, guidance 2, random weights: {ref['wall_s']:.2f} s for {ref['seconds']:g} s of "
                f"dance, {ref['s_per_dance_s']:.3f} s per second of dance")
        if base is not None:
            rate = base["wall_s"] / base["seconds"]
            line += (f", {ref['s_per_dance_s'] / rate:.0f}x the default model's {rate:.3f} s per second "
                     f"(its {base['seconds']:g} s row above; width {cfg['d_model']}, {cfg['num_layers']} "
                     f"layers, {cfg['num_heads']} heads, {ref['default_parameters'] / 1e6:.2f} M parameters)")
        lines += [line + ".", ""]
    return lines


def _server_section(m: dict[str, Any]) -> list[str]:
    s = m["server"]
    peak = ("not measured on this platform" if s["peak_rss_mb"] is None
            else f"{s['peak_rss_mb']:.0f} MiB")
    return [
        "## Warm server through the real socket (default model, CPU)", "",
        "One `python -m backend.server` process; cold start is from launching it to its connection "
        "file (models loaded; the warm-up, a click track analysed and one short dance per model, "
        "goes on in the background and the first job waits for it: an untimed dance waits it out "
        "before the runs below). Each dance request sends the 30 s example song with "
        "inaudible noise added, so the server analyses its music every time.", "",
        "| what | median | all runs |", "|---|---|---|",
        f"| cold start | {s['cold_start_s']:.2f} s | one start |",
        *([f"| first run after a fresh install (numba cache empty): launch to ready | "
           f"{s['first_run_ready_s']:.2f} s | one start |",
           f"| the same start: launch to the first chunk of a 30 s dance requested at once | "
           f"{s['first_run_first_chunk_s']:.2f} s | one start |"] if "first_run_ready_s" in s else []),
        f"| 30 s of dance, request to last chunk, features included | {s['warm_30s_dance_s']:.2f} s | "
        f"{', '.join(f'{t:.2f}' for t in s['all_totals'])} |",
        f"| request to first `motion_chunk` | {s['first_chunk_s']:.2f} s | "
        f"{', '.join(f'{t:.2f}' for t in s['all_firsts'])} |",
        f"| model time of the 30 s dance (`timings.generation_s`) | {s['dance_generation_s']:.2f} s | |",
        "",
        "Every loaded model on the same server, 30 s of dance from new audio each time, default options:", "",
        "| model | family | request to first `motion_chunk` (median) | all runs | request to last chunk |",
        "|---|---|---|---|---|",
        *[f"| {name} | {t['family']} | {t['first_chunk_s']:.3f} s | "
          f"{', '.join(f'{x:.3f}' for x in t['all_firsts'])} | {t['total_s']:.2f} s |"
          for name, t in s.get("per_model", {}).items()],
        "",
        f"Peak resident memory of the server process (`VmHWM` from `/proc/<pid>/status`, read just "
        f"before stopping it, after everything in this section and the round trips below): {peak}.", "",
        "## Editing cost (default model, same server, model time as the server reports it)", "",
        "| what | seconds |", "|---|---|",
        f"| edit of a 5 s range (frames 300:450 of a 30 s dance, every joint; median of {s['runs']}) | "
        f"{s['edit_5s_s']:.3f} |",
        f"| 5 s of a 30 s dance (a sixth of its generation time; median of {s['runs']}) | "
        f"{s['dance_rate_5s_s']:.3f} |",
        f"| a stand-alone 5 s dance (one window, no overlap; median of {s['runs']}) | "
        f"{s['generate_5s_s']:.3f} |",
        "",
        f"Budget: an edit of 5 s costs no more than generating 5 s of dance: {s['edit_5s_s']:.3f} s against "
        f"{s['dance_rate_5s_s']:.3f} s. The edit samples one window of the 5 s plus kept context on each "
        f"side, so it costs {s['edit_5s_s'] / s['generate_5s_s']:.2f}x a stand-alone 5 s window, which has "
        "no context at all (docs/editing.md).", "",
    ]


def _music_section(m: dict[str, Any]) -> list[str]:
    mu = m["music"]
    minutes = mu["audio_seconds"] / 60.0
    return [
        "## Music-feature extraction", "",
        f"The server's own call (`MusicCache.analyse_bytes`: decode, resample to 15360 Hz, 35 features, "
        f"tempo, beats) on a fresh cache, for the example song tiled to {mu['audio_seconds']:.0f} s "
        f"({minutes:.2f} min), a {mu['audio_bytes'] / 1e6:.1f} MB 16-bit WAV.", "",
        "| what | seconds | seconds per minute of audio |", "|---|---|---|",
        f"| cold: fresh process, imports + first call (median of {len(mu['cold_runs'])}) | {mu['cold_s']:.2f} | "
        f"{mu['cold_s_per_min']:.2f} |",
        f"| cold, whole process (interpreter start included) | {mu['cold_process_s']:.2f} | "
        f"{mu['cold_process_s'] / minutes:.2f} |",
        f"| warm: same process, cache bypassed (median of {len(mu['warm_runs'])}) | {mu['warm_s']:.3f} | "
        f"{mu['warm_s_per_min']:.3f} |",
        "",
        "Most of the cold cost is first-call work (librosa loads lazily and compiles its numba kernels), "
        "which the server pays once in its warm-up, before it reports ready.", "",
    ]


def _protocol_section(m: dict[str, Any], images: dict[str, str]) -> list[str]:
    p, s = m["protocol"], m["server"]
    idle, busy = latency_summary(s["ping_idle_s"]), latency_summary(s["ping_busy_s"])
    dance, sustained = p["dance"], p["sustained"]
    frames = ", ".join(str(n) for n in s["chunk_frames"])
    lines = [
        "## Protocol", "",
        "Round trips: `ping` → `pong` through `ChoreoClient` against the warm server process above, one "
        "after another; median and 99th percentile (nearest rank). During a job: the same client has a "
        "30 s dance running, pings go after random pauses of up to 10 ms so that they spread over the "
        "job, and a round trip counts only if that job had not ended when its `pong` came back "
        f"(generation jobs it took: {s['ping_busy_jobs']}).", "",
        "| server | round trips | median | 99th percentile |", "|---|---|---|---|",
        f"| idle | {idle['n']} | {idle['median_ms']:.2f} ms | {idle['p99_ms']:.2f} ms |",
        f"| running a generation job | {busy['n']} | {busy['median_ms']:.2f} ms | {busy['p99_ms']:.2f} ms |",
        "",
        f"![Round-trip latency]({images['latency']})", "",
        "Throughput: the `motion_chunk` messages of the last 30 s dance above, as the server's worker "
        f"builds them ({len(s['chunk_frames'])} chunks of {frames} frames), encoded with "
        "`protocol.messages.encode` and sent from a ROUTER with the server's socket options in this "
        "process to a DEALER in a second process over loopback TCP, which decodes and checks every "
        "message as `ChoreoClient` does and then acknowledges. A trial is timed from the first encode to "
        "the acknowledgement; median of the trials after one untimed warm-up trial. MB = 10^6 bytes of "
        "frames (header and buffers).", "",
        "| stream | messages | motion frames | bytes | median time | motion frames/s | messages/s | MB/s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, t in ((f"one {p['dance_seconds']:g} s dance ({dance['trials']} trials)", dance),
                     (f"{p['dance_seconds'] * sustained['repeat'] / 60:g} min of dance, the same chunks "
                      f"{sustained['repeat']}x ({sustained['trials']} trials)", sustained)):
        lines.append(f"| {label} | {t['messages']} | {t['frames']:,} | {t['bytes']:,} | "
                     f"{1000 * t['median_s']:.2f} ms | {t['frames_per_s']:,.0f} | {t['messages_per_s']:,.0f} | "
                     f"{t['mb_per_s']:.1f} |")
    lines += ["", f"Protocol overhead = time to stream the {p['dance_seconds']:g} s dance's chunk messages "
              f"through the socket ({1000 * dance['median_s']:.2f} ms, the first row) ÷ the server's model "
              f"time for that dance ({s['dance_generation_s']:.2f} s, `timings.generation_s`, median) = "
              f"{protocol_overhead_pct(m):.3f} % (budget ≤ {PROTOCOL_OVERHEAD_PCT:g} %). An upper bound: in the "
              "server, chunks stream while the next window is sampled, not after.", ""]
    return lines


def _shown_path(path: str) -> str:
    """A path inside the repository as the repository-relative path anyone's checkout has."""
    try:
        return str(Path(path).relative_to(Path(__file__).resolve().parents[1]))
    except ValueError:
        return path


def _blender_section(m: dict[str, Any]) -> list[str]:
    b = m["blender"]
    lines = ["## Blender keyframe writing and foot planting", ""]
    if "skipped" in b:
        return lines + [b["skipped"][0].upper() + b["skipped"][1:] + ".", ""]
    lines += [
        f"`benchmarks/bench_keyframes.py --json` under Blender {b['blender']} (headless `bpy`, "
        f"`{_shown_path(b['python'])}`), both paths in the same run:", "",
        "| what | keys | seconds | keys per second |", "|---|---|---|---|",
        f"| add-on bulk write (`keyframe_points.add` + `foreach_set`), 60 s on the 24-bone rig, best of 3 | "
        f"{b['keys']:,} | {b['bulk_s']:.3f} | {b['bulk_keys_per_s']:,.0f} |",
        f"| `keyframe_insert`, the same motion key by key | {b['insert_keys']:,} | {b['insert_s']:.3f} | "
        f"{b['insert_keys_per_s']:,.0f} |",
        "", f"The bulk path is {b['speedup']:.0f}x faster per key.", "",
    ]
    if "plant" in b:
        lines += [plant_method(b["plant"]), "", *plant_table(b["plant"]), ""]
    return lines


def _soak_section(m: dict[str, Any]) -> list[str]:
    s = m.get("soak")
    if s is None:
        return []
    before, after = s.get("usage_before") or {}, s.get("usage_after") or {}
    per_model = ", ".join(f"{k} {v}" for k, v in sorted(s.get("per_model", {}).items()))
    return [
        "## Soak", "",
        f"`benchmarks/bench_soak.py` (`backend/server/soak.py`): a fresh CPU server (`max_queue` "
        f"{s['max_queue']}, client timeout {s['client_timeout_s']:g} s) and {s['jobs']} jobs from six live "
        "clients over every loaded model, some cancelled, some abandoned by a client that closes in the "
        "middle, beside two silent clients that submit and never read.", "",
        "| figure | value |", "|---|---|",
        f"| jobs (per model) | {s['jobs']} ({per_model}) |",
        f"| done / cancelled / client gone / failed | {s['jobs_done']} / {s['jobs_cancelled']} / "
        f"{s['jobs_disconnected']} / {s['jobs_failed']} |",
        f"| terminal messages received | {s['terminal_messages']} |",
        f"| jobs without a terminal message | {s['jobs_without_terminal']} |",
        f"| frames lost | {s['frames_lost']} |",
        f"| same-seed pairs compared (differing) | {s['same_seed_pairs']} ({s['same_seed_mismatches']}) |",
        f"| `queue_full` to live clients | {s['queue_full_to_live_clients']} |",
        f"| `internal` errors | {s['internal_errors']} |",
        f"| silent clients' jobs (ended by `client_timeout`) | {s['silent_jobs']} ({s['silent_client_timeouts']}) |",
        f"| server memory (RSS) before → after | {_f(before.get('rss_mb'))} → {_f(after.get('rss_mb'))} MiB |",
        f"| server open file descriptors before → after | {before.get('open_fds')} → {after.get('open_fds')} |",
        f"| wall clock | {s['seconds']:g} s |",
        *([""] + [f"Problems seen: {p}" for p in s["problems"]] if s.get("problems") else []),
        "",
    ]


def render(m: dict[str, Any], images: dict[str, str]) -> str:
    """The whole report; ``images`` maps plot names to links relative to the report."""
    rows = budgets(m)
    gpu = f"; GPU: {m['gpu']}" if m.get("gpu") else "; no GPU"
    lines = [
        "# Benchmarks", "",
        f"Made by `{m['command']}` on {m['date']}; machine: {m['machine']}{gpu}.",
        "Every number below comes from that one run; rerun the command to check them."
        + (" This was a quick run: shorter dances, fewer repeats." if m.get("quick") else ""), "",
        "## Budgets", "",
        "| budget | measured | limit | |", "|---|---|---|---|",
        *[b.row() for b in rows], "",
        "Each bundled model's speed on the CPU is judged at its slowest dance length: seconds of dance "
        "made per wall-clock second (from the `generate` call to the last chunk, music features "
        "not included), and for the autoregressive models the time from the `generate` request to their "
        "first chunk through the server (music features included, as in the server section). "
        f"Linear cost means the wall clock per second of dance, across the lengths measured, varies by at "
        f"most {LINEARITY_RATIO}x (largest ÷ smallest); the least-squares line through (length, time) is "
        "given with each model below. Protocol overhead is the time to stream a 30 s dance's "
        "`motion_chunk` messages through the socket (encode, send, receive, decode) ÷ the server's model "
        "time for generating that dance. The GPU budget is the default model in process, from music "
        "features to the last chunk.", "",
    ]
    lines += _models_section(m, images)
    lines += _edge_sized_section(m)
    lines += _server_section(m)
    lines += _music_section(m)
    lines += _protocol_section(m, images)
    lines += _blender_section(m)
    lines += _soak_section(m)
    return "\n".join(lines)


def write_report(out: Path, measurements: dict[str, Any]) -> bool:
    """Plots into ``<out's folder>/images``, then the markdown; True when no budget failed."""
    from benchmarks.bench_plots import write_plots

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    plots = write_plots(measurements, out.parent / "images")
    out.write_text(render(measurements, {k: _relative(p, out) for k, p in plots.items()}), encoding="utf-8")
    return all_met(budgets(measurements))
