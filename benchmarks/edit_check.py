"""Measure how the editing engine joins and keeps; writes docs/edit_check.md.

    python benchmarks/edit_check.py [--bridges 16] [--out docs/edit_check.md]

For the bundled song and two real songs in ../shared/data/music/sectoid (a 10 s excerpt
each), two dances are generated with the default model, then every edit mode of
docs/editing.md is run on each with several seeds. Reported per mode: the largest and
median border jump (``backend.metrics.basic.border_jump_ratio``, bound 3), over all
joints and, for body-part edits, over the regenerated and the kept joints separately;
the largest keyframe error; and the time per edit. ``--bridges 8,12,16`` repeats the
whole run for several bridge lengths (``backend.editing.joins.BRIDGE_FRAMES``), which
is how the default was chosen. (A dance's own window seams are joined without a bridge;
see ``EdgeGenerator._fill``.)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

SHARED_SONGS = REPO.parent / "shared" / "data" / "music" / "sectoid"
FRAMES = 300
SEEDS = (1, 2, 3)


def _modes():
    from backend.editing import masks
    upper, lower = masks.JOINT_SETS["upper"], masks.JOINT_SETS["lower"]
    return {
        "range 100:200": (masks.range_mask(FRAMES, 100, 200), None),
        "in-between (keep 90 + 90)": (masks.in_between(FRAMES, 90, 90), None),
        "continuation from 180": (masks.continuation(FRAMES, 180), None),
        "upper body 60:240": (masks.range_mask(FRAMES, 60, 240, joints=upper, root=False), upper),
        "lower body + root 60:240": (masks.range_mask(FRAMES, 60, 240, joints=lower, root=True), lower),
        "keyframes 120, 180 in 60:240": (masks.range_mask(FRAMES, 60, 240), None),
    }


def _songs() -> list[Path]:
    from backend.examples import EXAMPLE_SONG
    return [EXAMPLE_SONG] + sorted(SHARED_SONGS.glob("*/mix.ogg"))[:2]


def measure(bridge: int) -> dict[str, dict]:
    from backend.editing import masks
    from backend.metrics.basic import border_jump_ratio, joint_positions
    from backend.models.base import EditRequest, GenerationRequest
    from backend.models.registry import load_generator
    from backend.motion.clip import MotionClip
    from backend.music.cache import MusicCache

    generator = load_generator("edge", device="cpu")
    generator.edit_bridge_frames = bridge
    cache = MusicCache()
    results: dict[str, dict] = {name: {"jumps": [], "groups": [], "key_deg": [], "seconds": []}
                                for name in _modes()}
    for song in _songs():
        analysis = cache.analyse_bytes(song.read_bytes())
        first = 0 if analysis.features.shape[0] < 2 * FRAMES else FRAMES
        music = np.array(analysis.features[first:first + FRAMES])
        for dance_seed in (5, 6):
            chunks = list(generator.generate(GenerationRequest(music, seed=dance_seed),
                                             lambda: False, lambda s, f: None))
            rot = np.concatenate([c.rotations for c in chunks])
            root = np.concatenate([c.root_translation for c in chunks])
            contacts = np.concatenate([c.contacts for c in chunks])
            for name, (keep, group) in _modes().items():
                sent_rot, sent_root = rot.copy(), root.copy()
                span = masks.edited_span(keep)
                if name.startswith("keyframes"):  # poses from elsewhere: the model must travel
                    keep = masks.keep_frames(keep, [120, 180])
                    sent_rot[[120, 180]], sent_root[[120, 180]] = rot[[20, 280]], root[[20, 280]]
                for seed in SEEDS:
                    t0 = time.perf_counter()
                    made = list(generator.edit(EditRequest(music, sent_rot, sent_root, contacts, keep,
                                                           span, seed=seed), lambda: False, lambda s, f: None))
                    results[name]["seconds"].append(time.perf_counter() - t0)
                    out_rot, out_root = sent_rot.copy(), sent_root.copy()
                    for c in made:
                        out_rot[c.start:c.start + c.num_frames] = c.rotations
                        out_root[c.start:c.start + c.num_frames] = c.root_translation
                    joints = keep[:, :24]  # what the server does: kept values go back as sent
                    out_rot[joints], out_root[keep[:, 24]] = sent_rot[joints], sent_root[keep[:, 24]]
                    positions = joint_positions(MotionClip(out_rot, out_root))
                    regenerated = ~keep.all(axis=1)
                    results[name]["jumps"].append(border_jump_ratio(positions, regenerated))
                    if group is not None:
                        rest = [j for j in range(24) if j not in group]
                        results[name]["groups"].append(max(border_jump_ratio(positions, regenerated, group),
                                                           border_jump_ratio(positions, regenerated, rest)))
                    if name.startswith("keyframes"):
                        made_q = out_rot[[120, 180]].astype(np.float64)
                        sent_q = sent_rot[[120, 180]].astype(np.float64)
                        dots = np.abs(np.sum(made_q * sent_q, -1)) / (
                            np.linalg.norm(made_q, axis=-1) * np.linalg.norm(sent_q, axis=-1))
                        results[name]["key_deg"].append(float(np.degrees(2 * np.arccos(dots.clip(0, 1))).max()))
    return results


def write(out: Path, runs: dict[int, dict[str, dict]], default_bridge: int) -> None:
    songs = ", ".join(p.parent.name if p.name == "mix.ogg" else p.name for p in _songs())
    lines = [
        "# Editing check",
        "",
        f"Made by `python benchmarks/edit_check.py{'' if list(runs) == [default_bridge] else ' --bridges ' + ','.join(map(str, runs))}` "
        f"on {time.strftime('%Y-%m-%d')}. Songs: {songs} (10 s each); 2 dances per song "
        f"(seeds 5, 6) from the default model, each edited with seeds {', '.join(map(str, SEEDS))} "
        "and the default options. The whole page is written by that script.",
        "",
        "Border jump: `backend.metrics.basic.border_jump_ratio`, the change of mean joint speed "
        "across an edit's borders beyond the kept motion's own change there, over the clip's "
        "median joint speed; docs/editing.md asks for at most 3. Kept joints are bit-identical by "
        "construction (the server copies them back), so they are not measured here.",
        "",
    ]
    for bridge, results in runs.items():
        lines += [f"## Bridge of {bridge} frames" + (" (the default)" if bridge == default_bridge else ""), "",
                  "| mode | border jump max | median | body groups max | keyframe error max | time per edit (median) |",
                  "|---|---|---|---|---|---|"]
        for name, r in results.items():
            groups = f"{max(r['groups']):.2f}" if r["groups"] else "–"
            key = f"{max(r['key_deg']):.3f}°" if r["key_deg"] else "–"
            lines.append(f"| {name} | {max(r['jumps']):.2f} | {statistics.median(r['jumps']):.2f} | {groups} | "
                         f"{key} | {statistics.median(r['seconds']):.2f} s |")
        worst = max(max(r["jumps"] + r["groups"]) for r in results.values())
        lines += ["", f"Largest border jump over every mode, song, dance and seed: {worst:.2f}.", ""]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    from backend.editing.joins import BRIDGE_FRAMES
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bridges", default=str(BRIDGE_FRAMES), help="bridge lengths to try, comma-separated")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "edit_check.md")
    args = parser.parse_args(argv)
    import torch
    torch.set_num_threads(2)
    runs = {}
    for bridge in (int(b) for b in args.bridges.split(",")):
        runs[bridge] = measure(bridge)
        print(f"bridge {bridge}: worst {max(max(r['jumps'] + r['groups']) for r in runs[bridge].values()):.2f}",
              flush=True)
    write(args.out, runs, BRIDGE_FRAMES)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
