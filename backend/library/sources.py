"""Which capture files go into the motion library, and the style each one is.

The files live beside the repository in ``../shared/data/mocap/cmu`` (see its
README). Style labels come from CMU's own trial descriptions; they are what the
``graph`` generator's ``style`` option filters on.

Credit line CMU asks for wherever the data is used: "The data used in this project
was obtained from mocap.cs.cmu.edu. The database was created with funding from NSF
EIA-0196217."
"""

from __future__ import annotations

import argparse
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MOCAP_DIR = REPO_ROOT.parent / "shared" / "data" / "mocap" / "cmu"
DEFAULT_LIBRARY = REPO_ROOT / "backend" / "checkpoints" / "graph_library.npz"
"""The bundled library: the ``graph`` model's "checkpoint"."""

STYLES: tuple[str, ...] = ("modern", "free", "salsa", "breakdance")
"""Every style label a clip may carry, in a fixed order (their index is stored)."""

_PREFIX_STYLE: dict[str, str] = {
    "05": "modern",  # subject 5: modern dance / ballet
    "49": "modern",  # subject 49: slow modern dance (arabesques, balances)
    "55": "free",  # subject 55: "dance, whirl", free movement
    "60": "salsa",  # subjects 60 and 61: partnered salsa, lead and follow
    "61": "salsa",
    "85": "breakdance",  # subject 85: up-rock, footwork, flips
}


def style_of(name: str) -> str:
    """The style label of a clip named like CMU's trials (``05_02``, ``60_11``, ...)."""
    prefix = Path(name).stem.split("_")[0]
    if prefix not in _PREFIX_STYLE:
        raise ValueError(f"no style known for clip {name!r} (subjects: {', '.join(_PREFIX_STYLE)})")
    return _PREFIX_STYLE[prefix]


def source_files(mocap_dir: Path = DEFAULT_MOCAP_DIR) -> list[Path]:
    """Every BVH file of the known subjects under ``mocap_dir``, in a stable order."""
    files = sorted(p for p in Path(mocap_dir).rglob("*.bvh") if p.stem.split("_")[0] in _PREFIX_STYLE)
    if not files:
        from backend.library.library import LibraryError
        raise LibraryError(f"no CMU dance BVH files under {mocap_dir} (see ../shared/data/README.md)", "no_mocap")
    return files


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``choreo library build``'s options (here, so the CLI need not import the build)."""
    p.add_argument("--mocap", type=Path, default=DEFAULT_MOCAP_DIR, help="folder of CMU BVH files")
    p.add_argument("--out", type=Path, default=DEFAULT_LIBRARY, help="library file to write")
    p.add_argument("--force", action="store_true", help="rebuild even if the sources have not changed")
    p.add_argument("--exclude", nargs="+", default=[], metavar="TRIAL",
                   help="trials to leave out (file stems such as 05_20 60_12), e.g. motion held out of "
                        "training; part of the cache hash")
