"""The model card's words for ``edge``: what it is and its limits (``benchmarks/dance_check.py``
writes them into docs/model_card_edge.md around the figures it measures)."""

from __future__ import annotations

from typing import Any


def about(cfg: dict[str, Any]) -> str:
    """The model card's "What it is" paragraph, sizes from the checkpoint's config."""
    return (f"An EDGE-style diffusion transformer (`backend/models/edge.py`): width {cfg['d_model']}, "
            f"{cfg['num_layers']} decoder layers, {cfg['num_heads']} heads, {cfg['music_layers']} music-encoder "
            f"layers, {cfg['window_frames']}-frame windows at {cfg['fps']} fps, motion layout `{cfg['layout']}` "
            f"({cfg['motion_channels']} channels), cosine schedule with {cfg['diffusion_steps']} steps, "
            "sampled with DDIM. Long songs are generated window by window, each held to the last "
            "(`backend/models/edge_generator.py`). It is small on purpose: it must run on two CPU cores "
            "faster than real time (see docs/benchmarks.md).")


LIMITS: tuple[str, ...] = (
    "It dances the vocabulary of the procedural data (grooves, steps, arm moves, turns), not the "
    "range of real dancers; train on AIST++ or FineDance (`choreo train`) for that.",
    "Hands and fingers are not animated (the SMPL hand joints follow the wrists).",
    "It has seen only the music of its training set: synthesised styles and four rock songs.",
    "Seams fall on the stillest frame of each window's last second and are joined in position "
    "and speed; in the frames after a seam the network's own motion can still speed up as fast "
    "as the dance does elsewhere, which reads as a quick move rather than a pop.",
    "Its style is staccato: like its training data, it nearly stops on every beat.",
)
