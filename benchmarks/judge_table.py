"""One table from several ``dance_judge.py`` results, to compare checkpoints side by side.

    python benchmarks/dance_judge.py --model fact --checkpoint A.pt --data DATA --out out/judge/a
    python benchmarks/dance_judge.py --model fact --checkpoint B.pt --data DATA --out out/judge/b
    python benchmarks/judge_table.py "procedural=out/judge/a/judge_fact.json" "real=out/judge/b/judge_fact.json"

Prints a markdown table: each result's means over its runs (worst run in brackets where a
bar is about every run), the song and seed distances, and FID against the held-out capture.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

COLUMNS = (
    ("pose_spread", "spread m", "{:.3f}", "min"), ("mean_joint_speed", "speed m/s", "{:.2f}", None),
    ("jerk_per_speed", "jerk/speed", "{:.0f}", None), ("beat_align_margin", "BA margin", "{:+.3f}", None),
    ("toe_skating", "toe skating", "{:.2f}", "max"), ("sole_median", "sole median m", "{:.3f}", "max"),
    ("penetration", "penetration m", "{:.3f}", "max"),
)


def row(label: str, result: dict) -> str:
    s = result["summary"]
    cells = []
    for key, _, fmt, worst in COLUMNS:
        v = s.get(key)
        cells.append("—" if v is None else fmt.format(v["mean"]) + (f" ({fmt.format(v[worst])})" if worst else ""))
    seeds = sum(result["seed_distance"].values()) / len(result["seed_distance"])
    held = result.get("held_out") or {}
    song = result.get("song_distance")
    wrists = [r.get("wrist_bend_deg") for r in result["rows"] if r.get("wrist_bend_deg") is not None]
    cells += ["—" if song is None else f"{song:.3f}", f"{seeds:.3f}",
              "—" if not wrists else f"{sum(wrists) / len(wrists):.1f}",
              "—" if "fid_k" not in held else f"{held['fid_k']:.0f}",
              "—" if "fid_g" not in held else f"{held['fid_g']:.1f}",
              "—" if "copy_seconds" not in s else f"{s['copy_seconds']['max']:.1f}"]
    return f"| {result['model']} {label} | " + " | ".join(cells) + " |"


def main(argv: list[str]) -> int:
    heads = [label for _, label, _, _ in COLUMNS] + [
        "two songs apart m", "two seeds apart m", "wrist bend sd °", "FID_k held-out", "FID_g held-out",
        "longest copy s"]
    print("| checkpoint | " + " | ".join(heads) + " |")
    print("|---" * (len(heads) + 1) + "|")
    for item in argv:
        label, _, path = item.partition("=")
        print(row(label, json.loads(Path(path).read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
