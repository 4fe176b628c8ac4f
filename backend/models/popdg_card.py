"""The model card's words for ``popdg``: what it is and its limits (``benchmarks/dance_check.py``
writes them into docs/model_card_popdg.md around the figures it measures)."""

from __future__ import annotations

from typing import Any

from backend.models.popdg import SPACE_AUGMENTED_JOINTS, PopdgConfig
from backend.motion.layout import LAYOUTS
from backend.motion.skeleton import JOINT_NAMES


def about(config: dict[str, Any]) -> str:
    """The model card's "What it is" paragraph, sizes from the checkpoint's config."""
    cfg = PopdgConfig.from_dict(config)
    layout = LAYOUTS[cfg.layout]
    trunk = ", ".join(JOINT_NAMES[j] for j in SPACE_AUGMENTED_JOINTS)

    def count(n: int, noun: str) -> str:
        return f"{n} {noun}{'' if n == 1 else 's'}"

    return (
        f"A POPDG-style diffusion transformer (Luo et al., CVPR 2024; `backend/models/popdg.py`): "
        f"width {cfg.d_model}, {count(cfg.num_layers, 'decoder block')}, {count(cfg.num_heads, 'head')}, "
        f"{count(cfg.music_layers, 'music-encoder block')} with temporal and feature attention. Every decoder "
        f"block has DS-Attention across the 24 joints of each frame ({cfg.joint_dim}-wide joint tokens, "
        f"{count(cfg.joint_heads, 'head')}; Space Augmentation {'on' if cfg.space_augmentation else 'off'}: the "
        f"root's attention passes from parent to child along the trunk: {trunk}), then temporal "
        f"attention, cross-attention to the music and a feed-forward layer, each FiLM-modulated by an "
        f"Alignment Module (1D convolution, kernel {cfg.align_kernel}, plus the diffusion time). Improved "
        f"DDPM: it predicts x0 and a learned variance, trained with L_simple + {cfg.vlb_lambda} L_vlb on a "
        f"cosine schedule of {cfg.diffusion_steps} steps; sampled with DDIM (the variance trains with the "
        f"bound, DDIM does not use it). Motion layout `{cfg.layout}` ({layout.num_channels} channels: "
        f"{len(layout.contact_joints)} body contacts). It streams {cfg.window_frames}-frame windows at "
        f"{cfg.fps} fps, each held to the last by inpainting, and edits (continuation, range, joints, "
        f"keyframes) by inpainting at every DDIM step, with EDGE's generator (`backend/models/edge_generator.py`)."
    )


LIMITS: tuple[str, ...] = (
    "It dances the vocabulary of the procedural data (grooves, steps, arm moves, turns), not the range "
    "of real dancers, let alone PopDanceSet's pop dances; train on AIST++ or FineDance (`choreo train`) for that.",
    "It is far smaller and far more briefly trained than the paper's model (10,000 steps of batch 16, "
    "about 42 minutes on a 2-core CPU), so that it runs faster than real time on two CPU cores.",
    "Its timing is loosest on slow music: on the 95 BPM ballad it meets fewer beats than on the "
    "faster songs (see the table above).",
    "The learned variance shapes training only: DDIM sampling, which streaming and editing use, "
    "does not read it.",
    "The head, wrist and hand contact labels come from joint speed (still = in contact), as in the "
    "POPDG code, not from real contact with the floor or the body.",
    "Hands and fingers are not animated (the SMPL hand joints follow the wrists).",
    "It has seen only the music of its training set: synthesised styles and four rock songs.",
)


MISSED: dict[str, str] = {
    "pose_spread": "It learned the procedural dances, which are small themselves (docs/procedural_data.md); the "
                   "retraining on real motion widened its poses (0.15 m) but was not bundled (fid_k below).",
    "mean_joint_speed": "The procedural dances' pace (0.39 m/s) and a model that rounds them down.",
    "jerk_per_speed": "A diffusion denoiser trained 10,000 steps on two CPU cores leaves frame-to-frame noise in "
                      "what it makes: 1,013 against its training data's own 605. The real-motion retraining was "
                      "noisier still (1,411 after 7,500 steps).",
    "freeze_ratio": "In one run it slows to a quarter of its opening pace: the procedural vocabulary's small "
                    "grooves are all it has to go on with.",
    "two seeds apart": "Seeds differ by 4.1 cm at worst (the bar is 5): one small vocabulary, few ways to dance it.",
    "copy": "The copy check compares with every window of the real-motion build, whose procedural part holds the "
            "very dances this checkpoint learned: it replays one for 10.5 s. The real-motion retraining copies "
            "0.5 s at most.",
    "fid_k": "The retraining on real motion (7,500 steps in all, two CPU cores) moved more and like real dance "
             "in its poses (FID_g 50 against 49), but its motion was noise the short run had not trained out: "
             "feet sliding in 70 % of planted frames, sinking 2 cm, beat margin below zero. So the "
             "procedural-only checkpoint stays until a longer run (benchmarks/gpu_session.sh) beats it.",
}
"""Why it misses the issue-14 bars it misses (benchmarks/dance_check.py prints the figures)."""
