"""The PNG plots of docs/benchmarks.md, drawn from one run's measurements.

matplotlib's object API on the Agg canvas (no pyplot, no display, no global state),
so ``choreo bench`` draws the same pictures on a headless machine as on a laptop.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

SCALING = "bench_scaling.png"
RATES = "bench_rates.png"
LATENCY = "bench_latency.png"


def _label(run: dict[str, Any]) -> str:
    return f"{run['model']} ({run['device']})"


def _save(figure: Figure, path: Path) -> Path:
    FigureCanvasAgg(figure)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    return path


def plot_scaling(runs: Sequence[dict[str, Any]], path: Path) -> Path:
    """Wall clock against dance length (with the least-squares line), and cost per second."""
    figure = Figure(figsize=(10, 4))
    wall_axes, cost_axes = figure.subplots(1, 2)
    for run in runs:
        lengths = np.array([r["seconds"] for r in run["lengths"]])
        walls = np.array([r["wall_s"] for r in run["lengths"]])
        points = wall_axes.plot(lengths, walls, "o", label=_label(run))[0]
        if len(lengths) >= 2:
            slope, intercept = np.polyfit(lengths, walls, 1)
            xs = np.linspace(0.0, lengths.max(), 50)
            wall_axes.plot(xs, intercept + slope * xs, "--", color=points.get_color(),
                           label=f"fit: {intercept:.2f} s + {slope:.3f} s per s")
        cost_axes.plot(lengths, walls / lengths, "o-", color=points.get_color(), label=_label(run))
    wall_axes.set(xlabel="dance length (s)", ylabel="wall clock (s)", title="Generation time against length")
    cost_axes.set(xlabel="dance length (s, log scale)", ylabel="wall clock per second of dance (s)",
                  title="Cost per second of dance (flat = linear)", xscale="log")
    measured = sorted({r["seconds"] for run in runs for r in run["lengths"]})
    cost_axes.set_xticks(measured, [f"{s:g}" for s in measured])
    cost_axes.minorticks_off()
    highest = max((r["wall_s"] / r["seconds"] for run in runs for r in run["lengths"]), default=1.0)
    cost_axes.set_ylim(0, 1.25 * highest)  # room for the legend above the points
    for axes in (wall_axes, cost_axes):
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8)
    return _save(figure, path)


def plot_rates(runs: Sequence[dict[str, Any]], path: Path) -> Path:
    """Seconds of dance per wall-clock second, one group of bars per model and device."""
    figure = Figure(figsize=(8, 4))
    axes = figure.subplots()
    lengths = sorted({r["seconds"] for run in runs for r in run["lengths"]})
    colors = {s: f"C{i}" for i, s in enumerate(lengths)}  # one colour per length, in every group
    width = 0.8 / max(1, max((len(run["lengths"]) for run in runs), default=1))
    labelled: set[float] = set()
    for j, run in enumerate(runs):
        rows = sorted(run["lengths"], key=lambda r: r["seconds"])
        for i, row in enumerate(rows):
            seconds = row["seconds"]
            bars = axes.bar(j + (i - (len(rows) - 1) / 2) * width, seconds / row["wall_s"], width,
                            color=colors[seconds], label=None if seconds in labelled else f"{seconds:g} s dance")
            labelled.add(seconds)
            axes.bar_label(bars, fmt="%.1f", fontsize=7)
    axes.set_xticks(range(len(runs)), [_label(run) for run in runs])
    axes.set(ylabel="seconds of dance per second", title="Generation speed (higher is faster)")
    axes.grid(axis="y", alpha=0.3)
    handles, labels = axes.get_legend_handles_labels()
    ordered = sorted(zip(handles, labels, strict=True), key=lambda hl: float(hl[1].split()[0]))
    axes.legend([h for h, _ in ordered], [lbl for _, lbl in ordered], fontsize=8)
    return _save(figure, path)


def plot_latency(idle_s: Sequence[float], busy_s: Sequence[float], path: Path) -> Path:
    """Distribution of ping round trips, idle and during a job (log-spaced bins)."""
    figure = Figure(figsize=(8, 4))
    axes = figure.subplots()
    ms = [np.asarray(idle_s) * 1000.0, np.asarray(busy_s) * 1000.0]
    values = np.concatenate([m for m in ms if m.size]) if any(m.size for m in ms) else np.array([1.0])
    low, high = max(values.min(), 1e-3), max(values.max(), values.min() * 1.01, 1e-3 * 1.01)
    bins = np.geomspace(low, high, 40)
    for data, label in zip(ms, ("idle server", "during a generation job"), strict=True):
        if data.size:
            axes.hist(data, bins=bins, alpha=0.6, label=f"{label} (n={data.size})")
    axes.set(xscale="log", xlabel="ping round trip (ms)", ylabel="count", title="Round-trip latency")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    return _save(figure, path)


def write_plots(measurements: dict[str, Any], folder: Path) -> dict[str, Path]:
    """Every plot into ``folder``; returns them by name (``scaling``, ``rates``, ``latency``)."""
    runs = measurements["models"]["runs"]
    server = measurements["server"]
    return {"scaling": plot_scaling(runs, folder / SCALING),
            "rates": plot_rates(runs, folder / RATES),
            "latency": plot_latency(server["ping_idle_s"], server["ping_busy_s"], folder / LATENCY)}
