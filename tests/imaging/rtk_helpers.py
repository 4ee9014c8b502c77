"""Import RTK (itk-rtk wheel) or skip the test; shared by the imaging tests."""

import pytest


def rtk_or_skip():
    pytest.importorskip("itk")
    try:
        from itk import RTK as rtk

        rtk.ThreeDCircularProjectionGeometry  # noqa: B018 - the lazy loader raises here if RTK is absent
    except Exception as exc:  # noqa: BLE001 - any failure means RTK is not usable here
        pytest.skip(f"RTK not importable: {exc}")
    return rtk
