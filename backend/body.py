"""The SMPL body mesh for the Blender add-on, made from the user's own SMPL model file.

Why here and not in Blender: reading an SMPL model takes ``smplx``, and ``smplx``
takes torch, which never goes into Blender. So the backend turns the model into a
plain ``.npz`` of arrays (rest vertices, faces, skinning weights, joints) that the
add-on reads with numpy alone (``blender_addon.body_mesh``).

The SMPL model itself is not ours to ship (it has its own licence); each user
downloads it and points this command at it::

    python -m backend.body SMPL_NEUTRAL.npz --out body.npz [--gender neutral]

Model files, and pickle. We read ``.npz`` model files with numpy only
(``allow_pickle=False``) and hand the arrays to ``smplx``; nothing in them can run
code. The official downloads are ``.pkl`` files, which ``smplx`` can only load with
Python's ``pickle``, and unpickling a file runs whatever code it names. We accept a
``.pkl`` only with ``--allow-pickle``, as the user's statement that the file is
their own licensed download from the SMPL site, never a file from elsewhere (the
original files also need the ``chumpy`` package to unpickle). Saving the arrays of
a trusted ``.pkl`` once with ``np.savez`` gives an ``.npz`` that needs neither.

The output is in our conventions (metres, Z-up, facing -Y) and placed on the rig:
SMPL is Y-up, so points go through ``Y_UP_TO_Z_UP``, ``(x, y, z) -> (x, -z, y)``,
and the whole body moves so that its pelvis joint stands where the rig's pelvis bone
stands, ``(0, 0, PELVIS_REST_HEIGHT)``, which puts the soles near ``z = 0``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import zipfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from backend.conventions import Y_UP_TO_Z_UP
from backend.errors import InputError
from protocol.skeleton import JOINT_NAMES, PARENTS, PELVIS_REST_HEIGHT, rest_joint_positions

BODY_FORMAT_VERSION = 1
"""Version of the body ``.npz`` layout; ``blender_addon.body_mesh`` checks it."""
REQUIRED_FIELDS: tuple[str, ...] = ("v_template", "f", "J_regressor", "weights", "shapedirs",
                                    "posedirs", "kintree_table")
"""What ``smplx.SMPL`` reads from a model file."""
MISALIGNMENT_WARNING_M = 0.02
"""Joints farther than this from the rig's bones make the body bend in slightly wrong places."""


class BodyModelError(InputError):
    """An SMPL model file we cannot use; ``code`` says which way."""


def model_file(path: Path, gender: str) -> Path:
    """The model file: ``path`` itself, or ``SMPL_<GENDER>.npz``/``.pkl`` in a folder.

    Folders follow ``smplx``'s layout (the file may also sit in a ``smpl`` subfolder).
    """
    if not path.is_dir():
        if not path.is_file():
            raise BodyModelError("body_model_missing", f"no SMPL model file at {path}")
        return path
    for folder in (path, path / "smpl"):
        for ext in ("npz", "pkl"):
            candidate = folder / f"SMPL_{gender.upper()}.{ext}"
            if candidate.is_file():
                return candidate
    raise BodyModelError("body_model_missing", f"no SMPL_{gender.upper()}.npz or .pkl in {path}")


def load_smpl(path: Path, gender: str = "neutral", allow_pickle: bool = False) -> Any:
    """An ``smplx.SMPL`` model from an ``.npz`` (numpy only) or, if allowed, a ``.pkl`` file.

    We call ``smplx.SMPL`` rather than ``smplx.create``: ``create`` takes the model
    type from the file name (``SMPL_*``) and always unpickles; the class takes the
    arrays we read ourselves (``data_struct``) and is what ``create`` returns anyway.
    """
    import smplx  # torch comes with it: imported here so `--help` stays fast
    from smplx.utils import Struct

    suffix = path.suffix.lower()
    quiet = contextlib.redirect_stdout(io.StringIO())  # smplx prints a note about 10 betas
    if suffix == ".npz":
        with quiet:
            return smplx.SMPL(model_path=str(path), data_struct=Struct(**_read_npz(path)), gender=gender)
    if suffix == ".pkl":
        if not allow_pickle:
            raise BodyModelError("body_model_pickle", (
                f"{path.name} is a pickle file, which smplx loads with Python's pickle; unpickling "
                "runs code named in the file. If it is your own licensed download from the SMPL "
                "site, pass --allow-pickle; otherwise use an .npz model file"))
        try:
            with quiet:
                return smplx.SMPL(model_path=str(path), gender=gender)
        except ModuleNotFoundError as error:
            raise BodyModelError("body_model_format", (
                f"unpickling {path.name} needs the '{error.name}' package (the original SMPL files "
                "hold chumpy arrays); install it, or load the file once where it is installed and "
                "save its arrays with np.savez as an .npz model")) from error
        except Exception as error:  # a damaged or foreign pickle: say which file
            raise BodyModelError("body_model_format", f"cannot read {path.name}: {error}") from error
    raise BodyModelError("body_model_format", f"{path.name}: expected an SMPL model as .npz or .pkl")


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """The model's arrays, read without pickle; missing or object fields are refused clearly."""
    if not zipfile.is_zipfile(path):  # np.load would take it for a pickle and say so, misleadingly
        raise BodyModelError("body_model_format", f"cannot read {path.name}: it is not an .npz (zip) file")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except ValueError as error:  # "Object arrays cannot be loaded when allow_pickle=False"
        raise BodyModelError("body_model_format", (
            f"{path.name} holds Python objects (e.g. a scipy sparse J_regressor), which we do not "
            "unpickle; save every field as a plain numeric array")) from error
    except OSError as error:
        raise BodyModelError("body_model_format", f"cannot read {path.name}: {error}") from error
    missing = [key for key in REQUIRED_FIELDS if key not in arrays]
    if missing:
        raise BodyModelError("body_model_format",
                             f"{path.name} is not an SMPL model: no {', '.join(missing)}")
    return arrays


def rest_body(model: Any) -> dict[str, np.ndarray]:
    """Zero-shape rest vertices, faces, weights and joints, in SMPL's own frame (Y-up)."""
    import torch
    from smplx.lbs import vertices2joints

    with torch.no_grad():
        # forward_shape, not forward: forward also picks extra keypoints at fixed
        # vertex ids of the full mesh, which the rest body does not need.
        shaped = model.forward_shape(betas=torch.zeros(1, model.num_betas, dtype=model.dtype)).vertices
        joints = vertices2joints(model.J_regressor, shaped)
    return {
        "vertices": shaped[0].double().numpy(),
        "faces": np.asarray(model.faces, dtype=np.int64),
        "weights": model.lbs_weights.double().numpy(),
        "joints": joints[0].double().numpy(),
        "parents": model.parents.numpy(),
    }


def place_on_rig(rest: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Check it is SMPL's 24-joint body; convert to Z-up and stand its pelvis on the rig's."""
    joints, weights, faces = rest["joints"], rest["weights"], rest["faces"]
    n_vertices = rest["vertices"].shape[0]
    if joints.shape != (len(JOINT_NAMES), 3) or weights.shape != (n_vertices, len(JOINT_NAMES)):
        raise BodyModelError("body_model_format", (
            f"expected SMPL's {len(JOINT_NAMES)} joints; the model has {joints.shape[0]} joints "
            f"and weights of shape {weights.shape}"))
    parents = rest["parents"].astype(np.int64)
    if tuple(parents[1:]) != PARENTS[1:]:
        raise BodyModelError("body_model_format", "the model's joint hierarchy is not SMPL's (kintree_table)")
    if faces.ndim != 2 or faces.shape[1] != 3 or faces.min() < 0 or faces.max() >= n_vertices:
        raise BodyModelError("body_model_format", "the model's faces are not triangles of its vertices")
    shift = np.array([0.0, 0.0, PELVIS_REST_HEIGHT]) - Y_UP_TO_Z_UP @ joints[0]
    return {
        "vertices": (rest["vertices"] @ Y_UP_TO_Z_UP.T + shift).astype(np.float32),
        "faces": faces.astype(np.int32),
        "weights": weights.astype(np.float32),
        "joints": (joints @ Y_UP_TO_Z_UP.T + shift).astype(np.float32),
    }


def misalignment(joints: np.ndarray) -> np.ndarray:
    """Distance (metres) of each body joint from the rig's bone head for that joint."""
    rig = rest_joint_positions() + np.array([0.0, 0.0, PELVIS_REST_HEIGHT])
    return np.linalg.norm(joints - rig, axis=1)


def save_body(body: dict[str, np.ndarray], out: Path, gender: str) -> Path:
    """Write the body as plain arrays (loadable with ``allow_pickle=False``); returns the path."""
    if out.suffix.lower() != ".npz":
        out = out.with_name(out.name + ".npz")
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, format_version=np.int32(BODY_FORMAT_VERSION),
                        joint_names=np.array(JOINT_NAMES), gender=np.array(gender), **body)
    return out


def make_body(model_path: Path, out: Path, gender: str = "neutral", allow_pickle: bool = False,
              ) -> tuple[Path, dict[str, np.ndarray]]:
    """Model file in, body ``.npz`` out: the whole command, for callers other than the CLI."""
    model = load_smpl(model_file(model_path, gender), gender, allow_pickle)
    body = place_on_rig(rest_body(model))
    return save_body(body, out, gender), body


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m backend.body",
        description="Make the SMPL body mesh for the Blender add-on from your SMPL model file.")
    parser.add_argument("model", type=Path,
                        help="SMPL model: an .npz file, a .pkl file (with --allow-pickle), or a folder "
                             "holding SMPL_<GENDER>.npz/.pkl")
    parser.add_argument("--out", type=Path, default=Path("smpl_body.npz"), help="output .npz")
    parser.add_argument("--gender", default="neutral", choices=("neutral", "female", "male"),
                        help="which model to pick from a folder; recorded in the output")
    parser.add_argument("--allow-pickle", action="store_true",
                        help="load a .pkl model with pickle: only for your own licensed SMPL download")
    args = parser.parse_args(argv)
    try:
        out, body = make_body(args.model, args.out, args.gender, args.allow_pickle)
    except BodyModelError as error:
        print(f"error: {error.message}", file=sys.stderr)
        return 2
    off = misalignment(body["joints"])
    print(f"wrote {out}: {body['vertices'].shape[0]} vertices, {body['faces'].shape[0]} faces; "
          f"soles at z = {body['vertices'][:, 2].min():+.3f} m")
    if off.max() > MISALIGNMENT_WARNING_M:
        worst = int(off.argmax())
        print(f"warning: the model's {JOINT_NAMES[worst]} is {off[worst] * 100:.1f} cm from the rig's "
              "(its skeleton differs from the one the rig is built on); the body will bend slightly "
              "off its joints", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
