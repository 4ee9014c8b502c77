"""Bad input gives a failed result with a reason (or a typed error for bad arguments)."""

from __future__ import annotations

import numpy as np
import pytest

from igrt.geometry import RigidTransform, Volume
from igrt.registration import synthetic as S
from igrt.registration.errors import RegistrationError
from igrt.registration.rigid3d import register_rigid
from igrt.registration.roi import roi_from_box, roi_from_mask

from reg_helpers import errors, make_daily


@pytest.fixture(scope="module")
def daily(iso):
    rng = np.random.default_rng(31)
    return make_daily(rng, RigidTransform.from_params((4.0, -3.0, 2.0), (1.0, 0.5, -1.0), iso))


def test_images_without_overlap(planning):
    far = S.grid((40, 40, 40), (4.0, 4.0, 4.0), (0.0, 0.0, 1000.0))
    res = register_rigid(planning, S.render(far))
    assert not res.success and "overlap" in res.failure_reason


def test_constant_images(planning, daily):
    flat = daily.with_array(np.full(daily.shape, 40.0, np.float32))
    res = register_rigid(planning, flat)
    assert not res.success and "constant" in res.failure_reason
    res = register_rigid(planning.with_array(np.zeros(planning.shape, np.float32)), daily)
    assert not res.success and "constant" in res.failure_reason


def test_empty_roi(planning, daily):
    res = register_rigid(planning, daily, roi=roi_from_mask(planning.with_array(np.zeros(planning.shape, bool))))
    assert not res.success and "empty" in res.failure_reason
    res = register_rigid(planning, daily, roi=roi_from_box((500, 500, 500), (600, 600, 600)))
    assert not res.success and "sample points" in res.failure_reason


def test_nan_image(planning, daily):
    a = daily.array.copy()
    a[3, 4, 5] = np.nan
    res = register_rigid(planning, daily.with_array(a))
    assert not res.success and "NaN" in res.failure_reason


def test_featureless_roi_is_refused(planning, daily, iso):
    """A box in the air outside the body has no structure: never a confident shift."""
    lo, hi = planning.bounds()
    roi = roi_from_box((lo[0], lo[1], lo[2]), (lo[0] + 40, lo[1] + 40, hi[2]))
    res = register_rigid(planning, daily, roi=roi)
    assert not res.success


@pytest.mark.parametrize("start", [((70.0, -60.0, 50.0), (12.0, -10.0, 8.0)), ((0.0, 0.0, 150.0), (0.0, 0.0, 0.0))])
def test_wildly_wrong_start_is_never_a_confident_wrong_answer(planning, daily, iso, start):
    truth = RigidTransform.from_params((4.0, -3.0, 2.0), (1.0, 0.5, -1.0), iso)
    init = RigidTransform.from_params(*start, iso)
    res = register_rigid(planning, daily, centre_mm=iso, initial=init)
    et, er = errors(res, truth, iso)
    if res.success:
        assert np.abs(et).max() < 0.5 and np.abs(er).max() < 0.3
    else:
        assert res.failure_reason


def test_wrong_patient_low_similarity(planning, iso):
    rng = np.random.default_rng(32)
    other = Volume.centred(rng.normal(0, 300, (48, 48, 48)).astype(np.float32), (4.0, 4.0, 4.0))
    res = register_rigid(planning, other, centre_mm=iso)
    assert not res.success and res.failure_reason


def test_bad_arguments_raise_typed_errors(planning, daily):
    with pytest.raises(RegistrationError, match="metric"):
        register_rigid(planning, daily, metric="cc")
    with pytest.raises(RegistrationError, match="mode"):
        register_rigid(planning, daily, mode="organ")
    with pytest.raises(RegistrationError, match="initialisation"):
        register_rigid(planning, daily, initial="middle")
