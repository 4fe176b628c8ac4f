"""Reading an existing dance for retargeting, without Blender: ``core.dance_file``."""

from __future__ import annotations

import numpy as np
import pytest

from blender_addon.core.dance_file import DanceFileError, read_npz
from protocol.skeleton import JOINT_NAMES


def _write(path, t: int = 10, **over):  # noqa: ANN001, ANN202
    arrays = dict(rotations=np.tile(np.array([2.0, 0, 0, 0], np.float32), (t, 24, 1)),
                  root_translation=np.zeros((t, 3), np.float32), fps=np.float32(30),
                  contacts=np.ones((t, 2), np.float32), contact_names=np.array(["left_ankle", "right_ankle"]),
                  joint_names=np.array(JOINT_NAMES))
    arrays.update(over)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


def test_a_choreo_npz_reads_with_unit_quaternions_and_its_contacts(tmp_path) -> None:  # noqa: ANN001
    dance = read_npz(_write(tmp_path / "song.npz"))
    assert dance.frames == 10 and dance.fps == 30.0 and dance.name == "song"
    assert np.allclose(dance.rotations[..., 0], 1.0)
    assert dance.contact_names == ("left_ankle", "right_ankle") and dance.contacts.shape == (10, 2)


def test_contacts_that_do_not_fit_are_dropped(tmp_path) -> None:  # noqa: ANN001
    dance = read_npz(_write(tmp_path / "a.npz", contacts=np.ones((3, 2), np.float32)))
    assert dance.contact_names == () and dance.contacts.shape == (10, 0)


@pytest.mark.parametrize("over, match", [
    ({"rotations": np.zeros((10, 22, 4), np.float32)}, "not"),
    ({"root_translation": None}, "no root_translation"),
    ({"fps": np.float32(0)}, "positive"),
    ({"joint_names": np.array(list(reversed(JOINT_NAMES)))}, "SMPL order"),
    ({"root_translation": np.full((10, 3), np.nan, np.float32)}, "NaN"),
])
def test_wrong_files_are_refused_with_the_reason(tmp_path, over, match) -> None:  # noqa: ANN001
    with pytest.raises(DanceFileError, match=match):
        read_npz(_write(tmp_path / "w.npz", **over))


def test_a_corrupt_file_is_refused(tmp_path) -> None:  # noqa: ANN001
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 broken")
    with pytest.raises(DanceFileError, match="cannot read"):
        read_npz(bad)
