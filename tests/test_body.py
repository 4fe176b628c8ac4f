"""``python -m backend.body``: an SMPL model file in, the add-on's body ``.npz`` out.

The real SMPL model is licensed and not in the repository, so the tests write a tiny
model in SMPL's format: a small cube of vertices around each of the 24 joints of the
zero-shape skeleton, in SMPL's Y-up frame, each cube skinned to its own joint. The
command must bring it to our frame with its joints exactly on the rig's.
(``tests/blender/test_body_mesh.py`` uses the same model; this file imports no torch.)
"""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from protocol.skeleton import (JOINT_INDEX, JOINT_NAMES, OFFSETS_Y_UP, PARENTS, PELVIS_REST_HEIGHT,
                               PELVIS_REST_POSITION_Y_UP, SOLE_BELOW_FOOT_JOINT, rest_joint_positions)

REPO_ROOT = Path(__file__).resolve().parents[1]
CUBE_HALF = SOLE_BELOW_FOOT_JOINT
"""Half the cube's side: the foot cubes' bottoms are then the soles, SOLE_BELOW_FOOT_JOINT down."""
_CUBE_CORNERS = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=float)
_CUBE_TRIANGLES = np.array([  # corner index = 4x + 2y + z (0: -1, 1: +1), outward winding
    [0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
    [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]])


def small_model_arrays(rng_seed: int = 0) -> dict[str, np.ndarray]:
    """The arrays of an SMPL model file (the fields ``smplx.SMPL`` reads), 192 vertices."""
    joints = np.zeros((len(JOINT_NAMES), 3))
    for j, parent in enumerate(PARENTS):
        joints[j] = PELVIS_REST_POSITION_Y_UP if parent < 0 else joints[parent] + OFFSETS_Y_UP[j]
    n = len(JOINT_NAMES)
    vertices = (joints[:, None, :] + CUBE_HALF * _CUBE_CORNERS[None]).reshape(-1, 3)
    owner = np.repeat(np.arange(n), 8)
    rng = np.random.default_rng(rng_seed)
    kintree = np.stack([np.array(PARENTS, dtype=np.int64), np.arange(n)]).astype(np.uint32)
    return {
        "v_template": vertices,
        "f": (np.arange(n)[:, None, None] * 8 + _CUBE_TRIANGLES[None]).reshape(-1, 3).astype(np.uint32),
        "J_regressor": np.eye(n)[:, owner] / 8.0,  # each joint: the mean of its cube
        "weights": np.eye(n)[owner],
        # Shape and pose bases are not used at zero shape and pose; random, to be sure of it.
        "shapedirs": rng.normal(scale=0.01, size=(vertices.shape[0], 3, 10)),
        "posedirs": rng.normal(scale=0.01, size=(vertices.shape[0], 3, 9 * (n - 1))),
        "kintree_table": kintree,  # root's parent is 2**32 - 1, as in the SMPL files
    }


def write_small_smpl_model(path: Path) -> Path:
    """Save the small model as an ``.npz`` SMPL model file (plain arrays, no pickle)."""
    np.savez(path, **small_model_arrays())
    return path


def rig_joints() -> np.ndarray:
    """Where the rig's bone heads stand (pelvis at PELVIS_REST_HEIGHT above the floor)."""
    return rest_joint_positions() + np.array([0.0, 0.0, PELVIS_REST_HEIGHT])


def run_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "backend.body", *map(str, args)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300)


def test_command_writes_body_in_our_frame_on_the_rig(tmp_path: Path) -> None:
    model = write_small_smpl_model(tmp_path / "SMPL_NEUTRAL.npz")
    done = run_cli(model, "--out", tmp_path / "body.npz")
    assert done.returncode == 0, done.stderr
    assert "warning" not in done.stderr

    with np.load(tmp_path / "body.npz", allow_pickle=False) as data:
        body = {key: data[key] for key in data.files}
    source = small_model_arrays()
    n_vertices = source["v_template"].shape[0]
    assert body["vertices"].shape == (n_vertices, 3) and body["vertices"].dtype == np.float32
    assert body["faces"].shape == source["f"].shape and body["faces"].dtype == np.int32
    assert np.array_equal(body["faces"], source["f"])
    assert body["weights"].shape == (n_vertices, 24)
    assert np.allclose(body["weights"], source["weights"])
    assert tuple(body["joint_names"]) == JOINT_NAMES
    assert int(body["format_version"]) == 1 and str(body["gender"]) == "neutral"

    # Joints exactly on the rig's bone heads, the soles on the floor.
    assert np.allclose(body["joints"], rig_joints(), atol=1e-5)
    assert body["vertices"][:, 2].min() == pytest.approx(0.0, abs=1e-5)
    # Z-up, facing -Y: the head is above the pelvis, the toes in front of (below in y) the ankles.
    joints = body["joints"]
    assert joints[JOINT_INDEX["head"], 2] > joints[JOINT_INDEX["pelvis"], 2] + 0.4
    for side in ("left", "right"):
        assert joints[JOINT_INDEX[f"{side}_foot"], 1] < joints[JOINT_INDEX[f"{side}_ankle"], 1] - 0.05
    assert joints[JOINT_INDEX["left_hip"], 0] > 0 > joints[JOINT_INDEX["right_hip"], 0]
    # Each vertex keeps its place around its joint (the conversion is a rotation, not a mirror).
    cubes = body["vertices"].reshape(24, 8, 3) - joints[:, None]
    expected = CUBE_HALF * np.stack([_CUBE_CORNERS[:, 0], -_CUBE_CORNERS[:, 2], _CUBE_CORNERS[:, 1]], 1)
    assert np.allclose(cubes, expected[None], atol=1e-5)


def test_pickle_needs_consent(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A .pkl is refused with an explanation, and read by smplx only with --allow-pickle."""
    from backend.body import main

    model = tmp_path / "basicmodel_neutral.pkl"
    model.write_bytes(pickle.dumps(small_model_arrays()))
    assert main([str(model), "--out", str(tmp_path / "body.npz")]) == 2
    message = capsys.readouterr().err
    assert "pickle" in message and "--allow-pickle" in message and "licensed" in message
    assert not (tmp_path / "body.npz").exists()

    assert main([str(model), "--out", str(tmp_path / "body"), "--allow-pickle"]) == 0
    with np.load(tmp_path / "body.npz", allow_pickle=False) as data:
        assert np.allclose(data["joints"], rig_joints(), atol=1e-5)


@pytest.mark.parametrize("damage", ["object_field", "missing_field", "not_smpl_tree", "not_a_zip",
                                    "not_a_model"])
def test_unusable_model_files_are_explained(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            damage: str) -> None:
    from backend.body import main

    arrays = small_model_arrays()
    model = tmp_path / "model.npz"
    if damage == "object_field":  # e.g. a sparse J_regressor saved as it was
        arrays["J_regressor"] = np.array([arrays["J_regressor"], None], dtype=object)
        expected = "Python objects"
    elif damage == "missing_field":
        del arrays["posedirs"]
        expected = "no posedirs"
    elif damage == "not_smpl_tree":
        arrays["kintree_table"][0, 5] = 1
        expected = "hierarchy"
    elif damage == "not_a_zip":
        expected = "not an .npz (zip) file"
    else:
        model = tmp_path / "model.obj"
        expected = "expected an SMPL model"
    if damage in ("not_a_zip", "not_a_model"):
        model.write_text("v 0 0 0\n")
    else:
        np.savez(model, **arrays)
    assert main([str(model), "--out", str(tmp_path / "body.npz")]) == 2
    assert expected in capsys.readouterr().err


def test_folder_and_gender_and_misalignment_warning(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """A folder in smplx's layout picks SMPL_<GENDER>; a skeleton unlike the rig's is flagged."""
    from backend.body import main

    arrays = small_model_arrays()
    arrays["v_template"] = arrays["v_template"] * 1.1  # a taller body than the rig's skeleton
    (tmp_path / "models" / "smpl").mkdir(parents=True)
    np.savez(tmp_path / "models" / "smpl" / "SMPL_FEMALE.npz", **arrays)
    out = tmp_path / "body.npz"
    assert main([str(tmp_path / "models"), "--gender", "female", "--out", str(out)]) == 0
    assert "warning" in capsys.readouterr().err
    with np.load(out, allow_pickle=False) as data:
        assert str(data["gender"]) == "female"
        # Still placed by its pelvis on the rig's pelvis.
        assert np.allclose(data["joints"][0], [0.0, 0.0, PELVIS_REST_HEIGHT], atol=1e-5)

    assert main([str(tmp_path / "models"), "--gender", "male", "--out", str(out)]) == 2
    assert "SMPL_MALE" in capsys.readouterr().err
