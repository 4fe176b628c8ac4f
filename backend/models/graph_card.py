"""The model card's words for ``graph``: what it is and its limits (``benchmarks/dance_check.py``
writes them into docs/model_card_graph.md around the figures it measures)."""

from __future__ import annotations

from typing import Any


def about(config: dict[str, Any]) -> str:
    """The model card's "What it is" paragraph; the graph has no trained config, so it is fixed."""
    return (
        "A motion graph over real dance capture, put on the music's beats (after ChoreoMaster, Chen et al., "
        "SIGGRAPH 2021). The library's segments run from one kinematic beat (a minimum of joint speed) to the "
        "next; transitions join segments whose poses and velocities match. For a song, a beam search over the "
        "music's beats picks the path (`backend/models/graph_plan.py`): each segment lands on one or two beats, "
        "time-warped by at most 20 %; its speed follows the song's loudness; no segment or its mirror repeats "
        "within 20 s; the dancer stays within the travel radius; the seed picks the opening. Cuts fade over "
        "0.4 s or longer with planted feet held, and toes that would sweep low over the floor are lifted by "
        "two-bone IK (`backend/models/graph_synthesis.py`). It streams a window of beats at a time and edits "
        "like the networks: continuation, a range pinned at both ends, a body part over the kept rest, and "
        "keyframes inside a span (the made frames bent onto each key pose).")


LIMITS: tuple[str, ...] = (
    "It can only dance what was captured: 19 minutes of modern dance, free dance, partnered salsa and "
    "breakdance. Salsa is most of it, and its hands reach for a partner who is not there (with style "
    "\"any\" it pays a little, so solo dance leads where it fits).",
    "Fast songs (above about 150 BPM) are mostly danced one segment per two beats: few captured steps "
    "are short enough for every beat within 20 % of warp, so the beat-alignment margin is smallest there.",
    "A range edit meets the kept motion after it by fading the last 0.4 s and by pulling the floor "
    "position across the whole range; a path that wandered far shows as a slow glide over the range.",
    "A body-part edit takes the regenerated joints from a path chosen for the whole body; it does not "
    "look for captures whose kept part matches the kept motion.",
    "Energy follows loudness rank within the song between 0.62 and 0.78 m/s of mean joint speed (the "
    "`energy` option scales it): a quiet song is not danced smaller than a loud one, only its quiet "
    "passages are.",
)
