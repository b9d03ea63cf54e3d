"""Shared test setup: the hypothesis profiles, and a fixture for misaligned arrays.

``make test`` runs the "ci" profile: derandomized, so that a failure reproduces on the
next run and on every machine, and without deadlines, which shared CI runners would trip.
``make hypothesis-long`` sets ``HYPOTHESIS_PROFILE=long``: fresh random examples, and
many more of them.
"""

import os
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import settings

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    max_examples=200,
    print_blob=True,
)
settings.register_profile("long", deadline=None, max_examples=5000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def _misaligned(x: npt.NDArray[Any]) -> npt.NDArray[Any]:
    raw = np.zeros(x.nbytes + 1, dtype=np.uint8)
    raw[1:] = np.frombuffer(x.tobytes(), dtype=np.uint8)
    out: npt.NDArray[Any] = np.frombuffer(raw.data, dtype=x.dtype, offset=1).reshape(x.shape)
    assert not out.flags.aligned
    assert out.flags.c_contiguous
    return out


@pytest.fixture
def misaligned() -> Callable[[npt.NDArray[Any]], npt.NDArray[Any]]:
    """A C-contiguous copy of an array whose data starts one byte past an aligned address.

    numpy makes such arrays from buffers at odd offsets (``np.frombuffer(b, offset=1)``),
    for example when audio is sliced out of a network packet.
    """
    return _misaligned
