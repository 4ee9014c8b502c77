"""Small phantom patients shared by the phantom tests (built once per session)."""

import pytest

from igrt.phantom import build_patient


@pytest.fixture(scope="session")
def lung():
    # 3 mm in-plane, 4 mm slices: fine enough for 3-5 mm margins, small enough to build in ~1 s
    return build_patient("lung", shape=(64, 128, 128), spacing=(3.0, 3.0, 4.0), seed=3)


@pytest.fixture(scope="session")
def pelvis():
    return build_patient("pelvis", shape=(64, 128, 128), spacing=(3.0, 3.0, 3.0), seed=5)


@pytest.fixture(scope="session")
def lung_small():
    return build_patient("lung", shape=(48, 64, 64), spacing=(6.0, 6.0, 6.0), seed=1)
