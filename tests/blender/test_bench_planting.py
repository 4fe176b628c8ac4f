"""The planting benchmark (``benchmarks/bench_keyframes.py``) runs in Blender and gives its rows.

Its machinery, not its speed (``choreo bench`` judges that): the real dance it plants is
60 s of the motion library's capture with its contact labels, planting changes the legs on
every rig it names, and the figures make the budget rows and the table ``choreo bench``
writes. One repeat per rig.
"""

from __future__ import annotations

import math

import numpy as np

from benchmarks import bench_blender, bench_keyframes
from benchmarks.bench_report import plant_budgets
from blender_addon.core import foot_contacts as fc


def test_the_benchmark_dance_is_a_minute_of_library_capture_with_its_contacts():
    q, root, labels, names, clips = bench_keyframes.library_dance(1800)
    assert q.shape == (1800, 24, 4) and root.shape == (1800, 3) and labels.shape == (1800, len(names))
    assert np.allclose(np.linalg.norm(q, axis=-1), 1.0)
    assert names == ["left_ankle", "left_foot", "right_ankle", "right_foot"] and len(clips) >= 2
    assert set(np.unique(labels)) <= {0.0, 1.0}
    for c in range(labels.shape[1]):  # the feet come down and lift again: spans to plant
        assert len(fc.contact_spans(labels[:, c])) >= 10
    # Each clip starts where the one before it ended on the floor (no teleport at a join).
    assert np.abs(np.diff(root[:, :2], axis=0)).max() < 0.2


def test_planting_benchmark_runs_on_every_rig_and_reports_its_rows(scene):  # noqa: ANN001
    plant = bench_keyframes.measure_planting(repeats=1)
    assert list(plant["rigs"]) == list(bench_blender.PLANT_RIGS)
    for kind, r in plant["rigs"].items():
        assert r["frames"] == 1800 and len(r["all_s"]) == 1 and r["best_s"] == r["all_s"][0] > 0, kind
        assert 0 < r["changed_frames"] <= r["frames"] and r["spans"] >= 40, (kind, r)
        assert r["budget_s"] == bench_blender.PLANT_BUDGET_S and r["pass"] == (r["best_s"] <= r["budget_s"])
    assert not any(o.type == "ARMATURE" for o in scene.objects), "the benchmark removes its rigs"
    rows = plant_budgets({"plant": plant})
    assert len(rows) == len(bench_blender.PLANT_RIGS)
    for row in rows:
        assert math.isfinite(row.measured) and row.verdict in ("pass", "FAIL"), row
    table = bench_blender.plant_table(plant)
    assert len(table) == 2 + len(plant["rigs"])
    assert all(name in "\n".join(table) for name in bench_blender.PLANT_RIGS.values())
    assert "Best of 1" in bench_blender.plant_method(plant) and plant["dance"] in bench_blender.plant_method(plant)
