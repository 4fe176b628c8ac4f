"""The GPU session's parts that run without a GPU: the scripts parse, the packed wheels cover the
backend's dependencies, BVH files come back byte for byte from their packed form, and the
collector releases a stopped run's checkpoint and keeps OUTDIR within what a device call returns.
(The session itself is proven with ``TINY=1 DEVICE=cpu``; docs/real_data.md, "Training on a GPU".)"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from backend.models.checkpoint import load_checkpoint
from benchmarks import bvh_pack
from benchmarks.gpu_session_collect import check_out, collect

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = [REPO / "benchmarks" / "gpu_pack.sh", REPO / "benchmarks" / "gpu_session.sh"]
REAL_BVH = REPO.parent / "shared" / "data" / "mocap" / "cmu" / "49_13.bvh"  # 398 kB, starts with an integer T-pose row


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_the_scripts_parse(script):
    subprocess.run(["bash", "-n", str(script)], check=True)


def test_the_wheels_and_the_device_image_cover_every_dependency():
    listed = subprocess.run(["bash", str(SCRIPTS[0]), "--list"], check=True, capture_output=True, text=True).stdout
    covered = {_norm(line.split()[1]) for line in listed.splitlines()}
    dependencies = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {_norm(re.split(r"[<>=!~ ;\[]", d, maxsplit=1)[0]) for d in dependencies}
    assert names - covered == set()


SYNTHETIC = (b"HIERARCHY\nROOT Hips\n{\n\tOFFSET 0 0 0\n\tCHANNELS 3 Xposition Yposition Zposition\n}\n"
             b"MOTION\nFrames: 4\nFrame Time: .0083333\n"
             b"0 -21 0 \n"  # written another way: kept verbatim
             b"1.2500 -0.0000 3.0001 \n-1.2400 0.0000 -3.0002 \n1.2300 -0.0001 0.0000 \n")


def test_a_bvh_file_comes_back_byte_for_byte(tmp_path):
    src = tmp_path / "a.bvh"
    src.write_bytes(SYNTHETIC)
    (tmp_path / "packed").mkdir()
    packed = bvh_pack.pack_file(src, tmp_path / "packed")
    assert packed.name == "a.bvh.npz"
    assert bvh_pack.unpack_file(packed).read_bytes() == SYNTHETIC
    assert not packed.exists()


def test_a_bvh_file_that_does_not_fit_stays_text(tmp_path):
    src = tmp_path / "ragged.bvh"
    src.write_bytes(SYNTHETIC.replace(b"-3.0002 \n", b"-3.0002 7.0 \n"))
    (tmp_path / "packed").mkdir()
    kept = bvh_pack.pack_file(src, tmp_path / "packed")
    assert kept.name == "ragged.bvh" and kept.read_bytes() == src.read_bytes()


@pytest.mark.skipif(not REAL_BVH.is_file(), reason="shared CMU mocap not present")
def test_a_real_capture_file_comes_back_byte_for_byte_and_smaller_under_xz(tmp_path):
    import lzma

    import numpy as np
    raw = REAL_BVH.read_bytes()
    packed = bvh_pack.pack_file(REAL_BVH, tmp_path)
    with np.load(packed, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    assert len(arrays["verbatim_rows"]) == 1  # the T-pose row
    assert bvh_pack.decode(arrays) == raw
    assert len(lzma.compress(packed.read_bytes())) < 0.8 * len(lzma.compress(raw))


def test_a_stopped_run_gives_its_last_checkpoint_and_the_report_holds_it(tmp_path):
    work, out = tmp_path / "work", tmp_path / "out"
    run = work / "run_dancenet"
    run.mkdir(parents=True)
    out.mkdir()
    shutil.copyfile(REPO / "backend" / "checkpoints" / "dancenet_default.pt", run / "checkpoint.pt")
    (run / "loss_log.jsonl").write_text('{"step": 50, "seconds": 5.0, "total": 2.0}\n'
                                        '{"step": 100, "seconds": 10.0, "total": 1.5}\n')
    (work / "stages.tsv").write_text("build\t61.2\t0\ntrain_dancenet\t300.0\t124\n")
    report = collect(work, out, ["dancenet"], 400.0)
    entry = report["models"]["dancenet"]
    assert entry["timed_out"] and entry["from"].startswith("last saved checkpoint")
    assert entry["steps"] == 100 and entry["steps_per_second"] == 10.0 and len(entry["loss_log"]) == 2
    assert load_checkpoint(out / "dancenet.pt")["model"] == "dancenet"
    assert json.loads((out / "gpu_session.json").read_text())["stages"][1] == {
        "name": "train_dancenet", "seconds": 300.0, "exit": 124}
    assert check_out(out) == []
    for k in range(8):
        (out / f"extra{k}.txt").write_text("x")
    assert check_out(out) == ["10 files (at most 8)"]
