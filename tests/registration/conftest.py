"""Shared fixtures: a synthetic thorax-like planning CT on a small grid (64^3, 4 mm)."""

from __future__ import annotations

import numpy as np
import pytest

from igrt.registration import synthetic as S

ISO = np.array([-40.0, -10.0, 20.0])


@pytest.fixture(scope="session")
def planning():
    return S.render(S.grid((64, 64, 64), (4.0, 4.0, 4.0)))


@pytest.fixture(scope="session")
def iso():
    return ISO.copy()
