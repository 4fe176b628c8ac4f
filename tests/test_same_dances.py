"""Same seeds, same dances: every bundled model against its recorded output (tests/same_dances.py).

A refactor must not change what any model dances. When a checkpoint is retrained on
purpose, record again with ``python -m tests.same_dances --write``.
"""

import numpy as np
import pytest

from backend.models.registry import available_models
from tests import same_dances


@pytest.fixture(scope="module")
def recording():
    with np.load(same_dances.RECORDING, allow_pickle=False) as stored:
        return {key: stored[key] for key in stored.files}


@pytest.fixture(scope="module")
def music():
    return same_dances._music()


def test_every_bundled_model_is_recorded(recording):
    recorded = sorted({key.split("/")[0] for key in recording if key != "machine"})
    assert recorded == available_models()


@pytest.mark.parametrize("name", available_models())
def test_the_same_seed_gives_the_recorded_dance(name, recording, music):
    now = same_dances.dance_model(name, music)
    assert sorted(now) == sorted(k.split("/", 1)[1] for k in recording if k.startswith(name + "/"))
    exact = str(recording["machine"]) == same_dances.machine_fingerprint()
    for key, value in now.items():
        stored = recording[f"{name}/{key}"]
        assert value.shape == stored.shape, key
        if exact:
            assert np.array_equal(value, stored), f"{name} {key}: max difference {np.abs(value - stored).max()}"
        else:
            np.testing.assert_allclose(value, stored, atol=same_dances.OTHER_MACHINE_TOLERANCE, err_msg=key)
