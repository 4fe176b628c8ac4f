"""A contact sheet of a dance: stick figures every half second above traces over time.

Numbers said "fine" while every model held one stance and twitched (issue 13); a page
of stick figures shows it at a glance. The sheet is what to look at before calling a
model good: does the body change shape, step, turn, go down to the floor, jump? Do the
stops (minima of joint speed) fall on the music's beats?

Layout, top to bottom:

* rows of stick figures, one every ``FIGURE_STEP_S`` (0.5 s), at most
  ``FIGURES_PER_ROW`` a row (a 30 s dance: 3 rows of 20). Front view (the camera on
  -Y looking at +Y, world X to the right, Z up: the dancer's left shows on the right
  when facing the camera; a turn shows as a side or back view). One scale for all
  figures; each is centred horizontally on its pelvis, but keeps its real height, so
  jumps lift off the drawn floor line and floor work sinks to it. Left side blue,
  right side red. Each figure's time is written under it, in orange when a music
  beat lies within 0.1 s of it.
* mean joint speed (m/s) with the motion beats (smoothed-speed minima, as beat
  alignment finds them) marked;
* both feet's height above the floor (per foot the lower of ankle and toe base, each
  minus its height in the rest pose standing on the floor, so a planted foot reads 0);
* the pelvis's horizontal distance from where it started (travel, m).

Music beats are grey vertical lines across the traces.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from backend.metrics.beats import (
    BAILANDO_SMOOTH_FRAMES_AT_30FPS, REFERENCE_FPS, mean_joint_speed, motion_beats,
)
from backend.metrics.physical import rest_clearance  # the skating measure's "height above the floor"
from backend.motion.skeleton import JOINT_INDEX, JOINT_NAMES, NUM_JOINTS, PARENTS

FIGURE_STEP_S: float = 0.5
FIGURES_PER_ROW: int = 20
ON_BEAT_S: float = 0.1
"""A figure within this of a music beat gets an orange time label (beat alignment's sigma)."""

DPI: int = 100
CELL_IN: float = 1.0  # width of one stick figure's cell, inches
MARGIN_LEFT_IN, MARGIN_RIGHT_IN, TITLE_IN = 0.75, 0.25, 0.55
TRACE_IN, TRACE_GAP_IN, BOTTOM_IN = 1.25, 0.3, 0.5
MIN_PLOT_WIDTH_IN: float = 8.0

LEFT_COLOUR, RIGHT_COLOUR, CENTRE_COLOUR = "#1f5fbf", "#c8322b", "#333333"
BEAT_COLOUR, ON_BEAT_COLOUR = "#9a9a9a", "#e07b00"

_J = JOINT_INDEX
LEFT_FOOT = (_J["left_ankle"], _J["left_foot"])
RIGHT_FOOT = (_J["right_ankle"], _J["right_foot"])
BONES: tuple[tuple[int, int], ...] = tuple((PARENTS[j], j) for j in range(NUM_JOINTS) if PARENTS[j] >= 0)


def _bone_colour(child: int) -> str:
    name = JOINT_NAMES[child]
    if name.startswith("left_"):
        return LEFT_COLOUR
    return RIGHT_COLOUR if name.startswith("right_") else CENTRE_COLOUR


BONE_COLOURS: tuple[str, ...] = tuple(_bone_colour(child) for _, child in BONES)


def sample_frames(num_frames: int, fps: float, step_s: float = FIGURE_STEP_S) -> np.ndarray:
    """The frames drawn as figures: one every ``step_s`` seconds from frame 0."""
    times = np.arange(0.0, (num_frames - 1) / fps + 1e-9, step_s)
    return np.minimum(np.rint(times * fps).astype(int), num_frames - 1)


def layout(num_frames: int, fps: float) -> tuple[int, int, float]:
    """(figures per row, rows, figure width in inches) of a sheet for a clip this long."""
    count = len(sample_frames(num_frames, fps))
    per_row = min(count, FIGURES_PER_ROW)
    rows = math.ceil(count / per_row)
    width = MARGIN_LEFT_IN + max(per_row * CELL_IN, MIN_PLOT_WIDTH_IN) + MARGIN_RIGHT_IN
    return per_row, rows, width


def foot_heights(positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(T,) left and right foot height: lower of ankle and toe base over its rest height."""
    clearance = rest_clearance()

    def one(joints: tuple[int, ...]) -> np.ndarray:
        return (positions[:, list(joints), 2] - clearance[list(joints)]).min(axis=1)

    return one(LEFT_FOOT), one(RIGHT_FOOT)


def _figure_spacing(poses: np.ndarray) -> float:
    """Metres between neighbouring figures: wide enough for most poses (arms out overlap a little)."""
    half_width = np.abs(poses[..., 0] - poses[:, :1, 0]).max(axis=1)
    return float(np.clip(2.0 * np.percentile(half_width, 90) + 0.15, 0.7, 1.6))


def _row_geometry(poses: np.ndarray) -> tuple[float, float, float, float]:
    """(spacing m, lowest z, highest z, row height in inches) shared by every figure row."""
    spacing = _figure_spacing(poses)
    z = poses[..., 2]
    z_low = min(0.0, float(z.min())) - 0.22  # room for the time labels under the floor
    z_high = max(1.9, float(z.max())) + 0.05
    return spacing, z_low, z_high, (z_high - z_low) * CELL_IN / spacing


def _draw_figure_rows(fig: Figure, poses: np.ndarray, times: np.ndarray, beat_times: np.ndarray,
                      per_row: int, rows: int, top_in: float) -> None:
    """Draw the stick-figure rows from ``top_in`` inches below the figure's top."""
    spacing, z_low, z_high, row_in = _row_geometry(poses)
    centred = poses.copy()
    centred[..., 0] -= poses[:, :1, 0]
    width_in = per_row * CELL_IN
    fig_w, height_in = fig.get_figwidth(), fig.get_figheight()
    for r in range(rows):
        bottom_in = height_in - top_in - (r + 1) * row_in
        ax = fig.add_axes((MARGIN_LEFT_IN / fig_w, bottom_in / height_in,
                           width_in / fig_w, row_in / height_in))
        ax.set_xlim(-spacing / 2, per_row * spacing - spacing / 2)
        ax.set_ylim(z_low, z_high)
        ax.set_axis_off()
        ax.axhline(0.0, color="#777777", lw=0.8, zorder=0)
        segments, colours = [], []
        for k in range(r * per_row, min((r + 1) * per_row, len(poses))):
            shift = np.array([(k - r * per_row) * spacing, 0.0])
            xz = centred[k][:, [0, 2]] + shift
            segments += [(xz[a], xz[b]) for a, b in BONES]
            colours += BONE_COLOURS
            ax.plot(*xz[_J["head"]], "o", ms=3.5, color=CENTRE_COLOUR)
            on_beat = len(beat_times) and np.abs(beat_times - times[k]).min() <= ON_BEAT_S
            ax.text(shift[0], z_low + 0.02, f"{times[k]:.1f}", ha="center", va="bottom", fontsize=7,
                    color=ON_BEAT_COLOUR if on_beat else "#555555", weight="bold" if on_beat else "normal")
        ax.add_collection(LineCollection(segments, colors=colours, linewidths=1.6, capstyle="round"))


def _trace_axes(fig: Figure, index: int, top_in: float, height_in: float, seconds: float,
                beat_times: np.ndarray, ylabel: str):
    fig_w = fig.get_figwidth()
    width_in = fig_w - MARGIN_LEFT_IN - MARGIN_RIGHT_IN
    bottom_in = height_in - top_in - (index + 1) * TRACE_IN - index * TRACE_GAP_IN
    ax = fig.add_axes((MARGIN_LEFT_IN / fig_w, bottom_in / height_in, width_in / fig_w, TRACE_IN / height_in))
    ax.set_xlim(0.0, seconds)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.tick_params(labelsize=7)
    for b in beat_times:
        ax.axvline(b, color=BEAT_COLOUR, lw=0.6, alpha=0.7, zorder=0)
    ax.grid(axis="y", color="#e4e4e4", lw=0.5)
    return ax


def sheet_figure(positions: np.ndarray, fps: float, beat_times: np.ndarray | None,
                 title: str = "") -> Figure:
    """The contact sheet as a matplotlib Figure (no pyplot state; saved by ``contact_sheet``).

    positions: (T, 24, 3) world joint positions, metres, Z-up, SMPL order; fps: its
    rate; beat_times: the music's beats in seconds (None or empty: no beat lines).
    """
    p = np.asarray(positions, dtype=np.float64)
    if p.ndim != 3 or p.shape[1:] != (NUM_JOINTS, 3) or len(p) < 2:
        raise ValueError(f"positions must be (T >= 2, {NUM_JOINTS}, 3), got shape {p.shape}")
    if not np.isfinite(p).all():
        raise ValueError("positions contain NaN or infinite values")
    fps = float(fps)
    seconds = (len(p) - 1) / fps
    beats = np.asarray([] if beat_times is None else beat_times, dtype=np.float64)
    beats = beats[(beats >= 0) & (beats <= seconds)]

    frames = sample_frames(len(p), fps)
    per_row, rows, width_in = layout(len(p), fps)
    rows_in = rows * _row_geometry(p[frames])[3]
    traces_in = 3 * TRACE_IN + 2 * TRACE_GAP_IN
    height_in = TITLE_IN + rows_in + 0.2 + traces_in + BOTTOM_IN

    fig = Figure(figsize=(width_in, height_in), dpi=DPI)
    fig.suptitle(title, x=MARGIN_LEFT_IN / width_in, y=1 - 0.12 / height_in, ha="left", va="top",
                 fontsize=11)
    _draw_figure_rows(fig, p[frames], frames / fps, beats, per_row, rows, TITLE_IN)
    traces_top = TITLE_IN + rows_in + 0.2
    t = np.arange(len(p)) / fps

    speed = mean_joint_speed(p) * fps
    ax = _trace_axes(fig, 0, traces_top, height_in, seconds, beats, "joint speed m/s")
    ax.plot(t, speed, color=CENTRE_COLOUR, lw=0.9)
    stops = motion_beats(p, BAILANDO_SMOOTH_FRAMES_AT_30FPS * fps / REFERENCE_FPS)
    ax.plot(t[stops], speed[stops], "v", ms=3.5, color=ON_BEAT_COLOUR, label="motion beat")
    # a single pop (a seam, a glitch) would flatten the rest; let it run off the top instead
    highest = min(float(speed.max()), 3.0 * float(np.percentile(speed, 99)))
    ax.set_ylim(0.0, max(highest, 0.05) * 1.08)
    ax.legend(loc="upper right", fontsize=7, frameon=False)
    ax.tick_params(labelbottom=False)

    left, right = foot_heights(p)
    ax = _trace_axes(fig, 1, traces_top, height_in, seconds, beats, "foot height m")
    ax.plot(t, left, color=LEFT_COLOUR, lw=0.9, label="left")
    ax.plot(t, right, color=RIGHT_COLOUR, lw=0.9, label="right")
    ax.axhline(0.0, color="#777777", lw=0.6)
    ax.legend(loc="upper right", fontsize=7, frameon=False, ncol=2)
    ax.tick_params(labelbottom=False)

    travel = np.linalg.norm(p[:, 0, :2] - p[0, 0, :2], axis=-1)
    ax = _trace_axes(fig, 2, traces_top, height_in, seconds, beats, "travel m")
    ax.plot(t, travel, color=CENTRE_COLOUR, lw=0.9)
    ax.set_ylim(bottom=0.0)
    ax.set_xlabel("seconds" + (" (grey lines: music beats)" if len(beats) else ""), fontsize=8)

    return fig


def contact_sheet(positions: np.ndarray, fps: float, beat_times: np.ndarray | None,
                  path: str | Path, title: str = "") -> Path:
    """Write a PNG contact sheet of a dance (module docstring) to ``path``; returns the path.

    positions: (T, 24, 3) world joint positions, metres, Z-up, SMPL order; fps: its
    rate; beat_times: the music's beats in seconds (None or empty: no beat lines).
    """
    fig = sheet_figure(positions, fps, beat_times, title)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=DPI, format="png")
    return out
