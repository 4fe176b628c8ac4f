"""Keyframe writing in Blender: the add-on's bulk path beside ``keyframe_insert``, same run.

Run with a Python that has ``bpy`` (e.g. ``.venv-bpy-5.0.1/bin/python
benchmarks/bench_keyframes.py``; ``python -m tests.blender`` makes that environment).
It writes docs/bench_keyframes.md, and with ``--json`` prints the figures instead
(``choreo bench`` uses that). Budget: 60 s of motion (30 fps) on the 24-bone SMPL rig
in at most 0.5 s.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

import bpy
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from blender_addon import keyframes, rig  # noqa: E402
from blender_addon.core import quaternions, smpl_pose  # noqa: E402
from protocol.skeleton import JOINT_NAMES  # noqa: E402

BUDGET_S = 0.5
SECONDS = 60.0
INSERT_SECONDS = 60.0  # the same 60 s, key by key


def _motion(frames: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    q = quaternions.normalize(np.array([1.0, 0, 0, 0]) + 0.2 * rng.standard_normal((frames, 24, 4)))
    root = np.c_[np.linspace(0, 2, frames), np.zeros(frames), np.full(frames, 0.95)]
    return q, root


def measure(repeats: int = 3) -> dict:
    frames = int(SECONDS * 30)
    q, root = _motion(frames)
    bulk = []
    for _ in range(repeats):
        obj = rig.build_smpl_rig(bpy.context, body=False)
        rot, loc = smpl_pose.to_channels(q, root)
        t = time.perf_counter()
        keyframes.write_motion(obj, 1, rotations=rot, locations=loc)
        bulk.append(time.perf_counter() - t)
    keys = frames * (24 * 4 + 3)
    obj = rig.build_smpl_rig(bpy.context, body=False)
    n = int(INSERT_SECONDS * 30)
    t = time.perf_counter()
    for f in range(n):
        for j, name in enumerate(JOINT_NAMES):
            pb = obj.pose.bones[name]
            pb.rotation_quaternion = q[f, j]
            pb.keyframe_insert("rotation_quaternion", frame=f + 1)
        pelvis = obj.pose.bones["pelvis"]
        pelvis.location = root[f] - smpl_pose.PELVIS_REST_HEAD
        pelvis.keyframe_insert("location", frame=f + 1)
    insert_s = time.perf_counter() - t
    insert_keys = n * (24 * 4 + 3)
    best = min(bulk)
    return {"blender": bpy.app.version_string, "frames": frames, "keys": keys, "bulk_s": best,
            "bulk_keys_per_s": keys / best, "insert_keys": insert_keys, "insert_s": insert_s,
            "insert_keys_per_s": insert_keys / insert_s, "insert_60s_estimate_s": keys / (insert_keys / insert_s),
            "speedup": (keys / best) / (insert_keys / insert_s), "budget_s": BUDGET_S,
            "pass": best <= BUDGET_S, "machine": f"{platform.machine()}, {platform.processor() or ''}".strip(", ")}


def report(r: dict) -> str:
    return "\n".join([
        "# Blender keyframe writing",
        "",
        f"Made by `python benchmarks/bench_keyframes.py` on {time.strftime('%Y-%m-%d')}, Blender "
        f"{r['blender']} (headless `bpy`), {r['machine']}. Rerun it to check.",
        "",
        "| what | keys | seconds | keys per second |",
        "|---|---|---|---|",
        f"| add-on bulk write (`keyframe_points.add` + `foreach_set`), 60 s on the 24-bone rig, best of 3 | "
        f"{r['keys']} | {r['bulk_s']:.3f} | {r['bulk_keys_per_s']:,.0f} |",
        f"| `keyframe_insert`, {INSERT_SECONDS:.0f} s of the same motion | {r['insert_keys']} | "
        f"{r['insert_s']:.3f} | {r['insert_keys_per_s']:,.0f} |",
        "",
        f"Budget: 60 s of motion in ≤ {r['budget_s']} s: {r['bulk_s']:.3f} s, "
        f"{'pass' if r['pass'] else 'FAIL'}. The bulk path is {r['speedup']:.0f}x faster per key; "
        f"`keyframe_insert` would need about {r['insert_60s_estimate_s']:.1f} s for the 60 s.",
        "",
    ])


if __name__ == "__main__":
    result = measure()
    if "--json" in sys.argv:
        print(json.dumps(result))
    else:
        out = REPO / "docs" / "bench_keyframes.md"
        out.write_text(report(result), encoding="utf-8")
        print(report(result))
