"""2D/3D kV-pair registration (DRRs from igrt.imaging) and fiducial-marker matching."""

from __future__ import annotations

import numpy as np
import pytest

from igrt.geometry import RigidTransform
from igrt.imaging.drr import render, stereo_kv_pair
from igrt.registration import synthetic as S
from igrt.registration.rigid2d3d import bin_view, detect_markers, kabsch, register_2d3d, register_fiducials
from reg_helpers import errors, marker_projection

ISO = np.array([-40.0, -10.0, 20.0])


@pytest.fixture(scope="module")
def ct():
    """Planning CT covering the whole body width (DRRs need the full path of each ray)."""
    return S.render(S.grid((64, 64, 80), (4.0, 4.0, 4.0)))


@pytest.fixture(scope="module")
def daily_grid():
    return S.grid((96, 96, 120), (2.7, 2.7, 2.7))


def test_kv_pair_accuracy(ct, daily_grid):
    """Room-mounted oblique pair, images from a finer displaced CT plus noise: <= 0.5 mm, <= 0.5 deg."""
    pa, pb = stereo_kv_pair(isocentre_mm=ISO, shape=(96, 96), spacing_mm=(2.0, 2.0))
    rng = np.random.default_rng(51)
    et_all, er_all = [], []
    for _ in range(3):
        truth = S.random_setup_error(rng, ISO, 10.0, 3.0)
        daily = S.render(daily_grid, truth)
        ims = [render(daily, p) for p in (pa, pb)]
        ims = [im + rng.normal(0, 0.02 * im.std(), im.shape) for im in ims]
        res = register_2d3d(ct, [pa, pb], ims, centre_mm=ISO)
        assert res.success, res.failure_reason
        et, er = errors(res, truth, ISO)
        et_all.append(et)
        er_all.append(er)
    assert np.abs(et_all).mean() <= 0.5 and np.abs(er_all).mean() <= 0.5
    assert np.abs(et_all).max() < 1.0 and np.abs(er_all).max() < 1.0


def test_kv_pair_wrong_images_fail(ct):
    pa, pb = stereo_kv_pair(isocentre_mm=ISO, shape=(64, 64), spacing_mm=(3.0, 3.0))
    rng = np.random.default_rng(52)
    noise = [rng.normal(size=(64, 64)) for _ in range(2)]
    res = register_2d3d(ct, [pa, pb], noise, centre_mm=ISO)
    assert not res.success and res.failure_reason
    res = register_2d3d(ct, [pa, pb], [np.zeros((64, 64))] * 2, centre_mm=ISO)
    assert not res.success and "constant" in res.failure_reason


def test_bin_view_keeps_the_detector_centre():
    pa, _ = stereo_kv_pair(isocentre_mm=ISO, shape=(97, 96), spacing_mm=(1.0, 1.0))
    img = np.arange(96 * 97, dtype=float).reshape(96, 97)
    pose2, im2 = bin_view(pa, img, 2)
    assert im2.shape == (48, 48) and pose2.shape == (48, 48)
    # the centre of the kept block is half a pixel from the original centre (97 -> 96 columns)
    assert np.linalg.norm(pose2.detector_centre_mm - pa.detector_centre_mm) <= 0.5 + 1e-9
    np.testing.assert_allclose(im2[0, 0], img[0:2, 0:2].mean())


def test_kabsch_recovers_a_known_transform():
    rng = np.random.default_rng(53)
    p = rng.normal(0, 20, (5, 3))
    t = RigidTransform.from_params((3, -2, 7), (2, -3, 4), (10, 0, 0))
    fit, rms = kabsch(p, t.apply(p))
    assert fit.is_close(t, 1e-9, 1e-7) and rms < 1e-9


@pytest.fixture(scope="module")
def marker_case(ct, daily_grid):
    pa, pb = stereo_kv_pair(isocentre_mm=ISO, shape=(192, 192), spacing_mm=(1.0, 1.0))
    planned = ISO + np.array([[8.0, -5.0, 12.0], [-10.0, 4.0, -6.0], [3.0, 9.0, -14.0], [-4.0, -8.0, 3.0]])
    truth = RigidTransform.from_params((4.0, -6.0, 3.0), (1.5, -1.0, 2.0), ISO)
    daily = S.render(daily_grid, truth)
    return pa, pb, planned, truth, daily


def _images(pa, pb, daily, markers, rng):
    return [render(daily, p) + marker_projection(p, markers) + rng.normal(0, 0.05, (192, 192)) for p in (pa, pb)]


def test_fiducial_match(marker_case):
    pa, pb, planned, truth, daily = marker_case
    rng = np.random.default_rng(54)
    ia, ib = _images(pa, pb, daily, truth.apply(planned), rng)
    assert len(detect_markers(ia)) >= 4
    res = register_fiducials(planned, pa, ia, pb, ib, centre_mm=ISO)
    assert res.success, res.failure_reason
    et, er = errors(res, truth, ISO)
    assert np.abs(et).max() < 0.5 and np.abs(er).max() < 0.5
    assert res.metric_value < 0.5  # RMS residual, mm
    assert res.details["triangulated"] == 4


def test_fiducial_migration_is_refused(marker_case):
    pa, pb, planned, truth, daily = marker_case
    rng = np.random.default_rng(55)
    moved = truth.apply(planned)
    moved[1] += (6.0, 0.0, 0.0)  # one marker migrated 6 mm
    ia, ib = _images(pa, pb, daily, moved, rng)
    res = register_fiducials(planned, pa, ia, pb, ib, centre_mm=ISO)
    assert not res.success and "residual" in res.failure_reason
