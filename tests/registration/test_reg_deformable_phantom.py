"""Deformable registration scored on igrt.phantom's own deformations (bladder filling, breathing phase)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from igrt.phantom import build_patient, simulate_course
from igrt.phantom.course import zero_error_fraction
from igrt.phantom.deformation import daily_anatomy, daily_structure_mask, landmarks_mm, map_planning_to_daily
from igrt.registration.deformable import propagate_mask, register_deformable

SHAPE, SPACING = (64, 96, 112), (3.0, 3.0, 3.0)


def _days_without_setup_error(patient, n: int):
    still = zero_error_fraction(patient).setup_error
    return [replace(f, setup_error=still) for f in simulate_course(patient, n_fractions=n, seed=2).fractions]


def _dice(a, b):
    return 2 * np.logical_and(a, b).sum() / (a.sum() + b.sum())


@pytest.fixture(scope="module")
def pelvis():
    """Prostate patient on its day of largest bladder/rectum filling, as a CBCT-like image.

    The daily image has the day's anatomy with noise and a CBCT's HU scale and
    offset (a scatter-corrected CBCT or an in-room CT); on a 3 mm grid a
    simulated 120-projection CBCT shows no soft-tissue contrast at all (see
    bench/deformable_vs_plastimatch.py for full-size simulated CBCTs).
    """
    p = build_patient("pelvis", shape=SHAPE, spacing=SPACING, seed=1)
    lm = landmarks_mm(p, n=120, seed=1, structures=("Bladder", "Rectum", "Prostate", "SeminalVesicles"),
                      min_gradient_hu_per_mm=20.0)
    days = _days_without_setup_error(p, 6)
    day = max(days, key=lambda d: np.linalg.norm(map_planning_to_daily(p, d, lm) - lm, axis=1).mean())
    ct = daily_anatomy(p, day, noise_hu=15.0, seed=3)
    cbct = ct.with_array(1.04 * ct.array - 25.0)
    return p, day, lm, register_deformable(p.ct, cbct)


def test_bladder_filling_landmarks_below_1p5_mm(pelvis):
    p, day, lm, res = pelvis
    truth = map_planning_to_daily(p, day, lm)
    before = np.linalg.norm(truth - lm, axis=1).mean()
    assert res.success, res.failure_reason
    after = np.linalg.norm(res.map_points(lm) - truth, axis=1).mean()
    assert before > 2.5  # several mm of organ motion to recover
    assert after < 1.5, (before, after)
    assert after < 0.5 * before
    print(f"bladder filling: landmarks {before:.2f} -> {after:.2f} mm")
    assert 0 < res.jacobian_min < 1 < res.jacobian_max  # bladder grows, rectum empties; nothing folds
    assert res.details["msd_after"] < res.details["msd_before"]


def test_bladder_contour_follows_the_filling(pelvis):
    p, day, _, res = pelvis
    true_daily = daily_structure_mask(p, day, "Bladder").array
    moved = propagate_mask(p.mask("Bladder"), res, p.ct).array
    assert _dice(moved, true_daily) > _dice(p.mask("Bladder").array, true_daily) + 0.1  # 0.83 unpropagated
    assert _dice(moved, true_daily) > 0.95


def test_breathing_phase_landmarks_below_1p5_mm():
    p = build_patient("lung", shape=SHAPE, spacing=SPACING, seed=1)
    day = _days_without_setup_error(p, 1)[0]
    lm = landmarks_mm(p, n=120, seed=1, structures=("Lung_L", "Lung_R", "GTV"), min_gradient_hu_per_mm=20.0)
    truth = map_planning_to_daily(p, day, lm, phase=0.0)  # inhale
    daily = daily_anatomy(p, day, phase=0.0, noise_hu=15.0, seed=3)
    res = register_deformable(p.ct, daily)
    assert res.success, res.failure_reason
    before = np.linalg.norm(truth - lm, axis=1).mean()
    after = np.linalg.norm(res.map_points(lm) - truth, axis=1).mean()
    assert before > 3.0
    assert after < 1.5, (before, after)
    assert after < 0.3 * before
    print(f"breathing: landmarks {before:.2f} -> {after:.2f} mm")
