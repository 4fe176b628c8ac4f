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


MISSED: dict[str, str] = {
    "pose_spread": "It learned the procedural dances, which are small themselves (docs/procedural_data.md). Its "
                   "retraining on real motion reached 0.135 m on average but was not bundled (fid_k below).",
    "mean_joint_speed": "The procedural dances' pace (0.39 m/s), and in the slowest runs less.",
    "jerk_per_speed": "A diffusion denoiser trained 6,000 steps on two CPU cores leaves frame-to-frame noise in "
                      "what it makes: 977 against its training data's own 605. The sampler is not the cause: on "
                      "the real-motion candidate, 50 DDIM steps, no guidance or eta 0 give 1,166, 1,197 and "
                      "1,317 against 1,149 with the defaults; training is: 1,401 after 1,500 steps, 1,149 after "
                      "4,500 (`benchmarks/noise_probe.py`, its two probe songs).",
    "toe_skating": "In its worst run planted feet slide in 16 % of frames (bar 15 %): the same noise, at the feet.",
    "freeze_ratio": "In its worst run the last 10 s move at 0.60 of the first 10 s: the procedural vocabulary is "
                    "small and it sometimes settles into one groove.",
    "copy": "The copy check compares with every window of the real-motion build, whose procedural part holds the "
            "very dances this checkpoint learned from: it replays one for 7.5 s. Its real-motion retraining "
            "replays 5.5 s at most.",
    "fid_k": "The retraining on real motion (4,500 steps in all, two CPU cores) made poses closer to real dance "
             "(FID_g 44 against 59) but motion further from it (FID_k 295 against 88): faster (0.93 m/s), "
             "noisy (jerk 1,211), feet sliding in two thirds of planted frames, off the beat (margin -0.02). So "
             "the procedural-only checkpoint stays until a longer run (benchmarks/gpu_session.sh) beats it.",
}
"""Why it misses the issue-14 bars it misses (benchmarks/dance_check.py prints the figures)."""
