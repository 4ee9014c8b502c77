"""Deformable (diffeomorphic demons) registration on known phantom deformations."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from igrt.geometry import RigidTransform
from igrt.registration import synthetic as S
from igrt.registration.deformable import (
    jacobian_determinant,
    propagate_mask,
    register_deformable,
    warp_daily_to_planning,
)
from reg_helpers import breathing, bump, render_deformed

CENTRE = np.array([10.0, -15.0, 0.0])


@pytest.fixture(scope="module")
def plan3():
    return S.render(S.grid((48, 60, 64), (3.0, 3.0, 3.0), tuple(CENTRE)))


def _landmarks(rng, centre, radius, n=40):
    d = rng.normal(size=(n, 3))
    d *= (radius * rng.uniform(0.2, 1.0, (n, 1))) / np.linalg.norm(d, axis=1, keepdims=True)
    return np.asarray(centre) + d


def _dice(a, b):
    return 2 * np.logical_and(a, b).sum() / (a.sum() + b.sum())


@pytest.mark.parametrize("kind", ["bladder", "breathing"])
def test_landmark_error_drops_below_1p5_mm(plan3, kind):
    rng = np.random.default_rng(41)
    if kind == "bladder":
        field = functools.partial(bump, centre=(22.0, -28.0, -10.0), amp_mm=12.0, sigma_mm=30.0)
        lm = _landmarks(rng, (22.0, -28.0, -10.0), 45.0)
    else:
        field = functools.partial(breathing, amp_mm=9.0)
        lm = _landmarks(rng, (55.0, -5.0, 10.0), 40.0)
    daily = S.cbct_like(render_deformed(plan3, field), rng, noise_hu=10.0, blur_mm=0.8, hu_scale=1.05,
                        hu_offset=-30.0, cupping_hu=0.0)
    res = register_deformable(plan3, daily)
    assert res.success, res.failure_reason
    truth = lm + field(lm)
    before = np.linalg.norm(truth - lm, axis=1).mean()
    after = np.linalg.norm(res.map_points(lm) - truth, axis=1).mean()
    assert before > 3.0  # several mm before
    assert after < 1.5, (before, after)
    assert 0 < res.jacobian_min < 1 < res.jacobian_max
    assert res.details["msd_after"] < 0.5 * res.details["msd_before"]


def test_rigid_start_and_contour_propagation(plan3):
    rng = np.random.default_rng(42)
    rigid = RigidTransform.from_params((4.0, -3.0, 5.0), (0.0, 0.0, 2.0), CENTRE)
    field = functools.partial(bump, centre=(22.0, -28.0, -10.0), amp_mm=12.0, sigma_mm=30.0)

    def total(p):  # rigid setup error after the deformation: phi = T o (Id + field)
        return rigid.apply(p + field(p)) - p

    daily = render_deformed(plan3, total)
    res = register_deformable(plan3, daily, initial=rigid)
    assert res.success
    x, y, z = plan3.world_coordinates()
    organ = plan3.with_array(((x - 22) ** 2 + (y + 28) ** 2 + (z + 10) ** 2) <= 30.0**2)  # 'heart' region
    # truth on the daily grid: points y whose preimage lies in the organ
    yy = np.stack(np.broadcast_arrays(x, y, z), axis=-1).reshape(-1, 3)
    p = yy.copy()
    for _ in range(15):  # fixed point converges fast: |grad field| < 0.5
        p = yy - total(p)
    c = p - np.array([22.0, -28.0, -10.0])
    true_daily = ((c**2).sum(axis=1) <= 30.0**2).reshape(plan3.shape)
    moved = propagate_mask(organ, res, plan3)
    assert _dice(moved.array, true_daily) > 0.9
    assert _dice(moved.array, true_daily) > _dice(organ.array, true_daily) + 0.1
    back = warp_daily_to_planning(daily, res)
    inner = (slice(8, -8),) * 3
    assert np.corrcoef(back.array[inner].ravel(), plan3.array[inner].ravel())[0, 1] > 0.97


def test_jacobian_determinant_analytic():
    shape = (6, 7, 8)
    sp = (2.0, 1.0, 3.0)
    xx = np.arange(shape[2])[None, None, :] * sp[0]
    d = np.zeros((3,) + shape)
    d[0] = -1.5 * xx  # compresses x by 2.5x beyond inversion: det = 1 - 1.5 < 0
    np.testing.assert_allclose(jacobian_determinant(d, sp), -0.5)
    zz = np.arange(shape[0])[:, None, None] * sp[2]
    d = np.zeros((3,) + shape)
    d[2] = 0.2 * zz + 0 * xx
    np.testing.assert_allclose(jacobian_determinant(d, sp), 1.2)


def test_folding_or_untrusted_deformation_is_refused(plan3):
    rng = np.random.default_rng(43)
    field = functools.partial(bump, centre=(22.0, -28.0, -10.0), amp_mm=-10.0, sigma_mm=25.0)  # compression
    daily = render_deformed(plan3, field)
    res = register_deformable(plan3, daily, min_jacobian=0.95, levels=2, iterations=(40, 20))  # strict threshold
    assert not res.success and "folds" in res.failure_reason
    assert res.jacobian_min <= 0.95
    flat = daily.with_array(np.zeros(daily.shape, np.float32))
    res = register_deformable(plan3, flat)
    assert not res.success and "constant" in res.failure_reason
    assert np.isfinite(rng.random())
