"""Shading removal: a cheap Gaussian low-pass, and bone matches that stop following CBCT scatter shading."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from igrt.course import SITE_POLICIES, registration_roi
from igrt.course.daily_image import simulate_daily_cbct
from igrt.geometry import Volume
from igrt.phantom import build_patient, simulate_course, with_setup_error
from igrt.registration.rigid3d import register_rigid
from igrt.registration.shading import remove_shading


def test_removed_shading_is_a_gaussian_low_pass():
    rng = np.random.default_rng(0)
    a = (ndimage.gaussian_filter(rng.normal(size=(41, 61, 70)), 4.0) * 100).astype(np.float32)
    v = Volume(a, (-100.0, -90.0, -60.0), (3.0, 2.5, 3.5))
    sigma_zyx = [20.0 / s for s in v.spacing[::-1]]
    ref = ndimage.gaussian_filter(a, sigma_zyx, mode="nearest", truncate=3.0)
    inner = (slice(8, -8),) * 3
    low = a - remove_shading(v, 20.0).array
    assert np.abs(low - ref)[inner].max() < 0.02 * np.abs(a).max()


def test_shading_goes_and_edges_stay():
    x = np.arange(80, dtype=np.float32) * 2.0
    edge = np.where(x > 80.0, 1000.0, 0.0).astype(np.float32)  # a bone edge along x
    img = np.broadcast_to(edge, (30, 40, 80)).copy()
    v = Volume(img, (0.0, 0.0, 0.0), (2.0, 2.0, 2.0))
    zz, yy, xx = np.meshgrid(np.arange(30), np.arange(40), np.arange(80), indexing="ij")
    shade = (150.0 * np.exp(-((xx - 60.0) ** 2 + (yy - 10.0) ** 2) / (2 * 40.0**2))).astype(np.float32)
    plain = remove_shading(v, 20.0).array
    shaded = remove_shading(v.with_array(img + shade), 20.0).array
    assert np.abs(shaded - plain).max() < 0.15 * 150.0  # the 150 HU glow is mostly gone
    step = plain[15, 20, 41] - plain[15, 20, 39]
    assert step > 0.9 * (img[15, 20, 41] - img[15, 20, 39])  # the edge keeps its height


def test_bone_match_under_heavy_scatter_is_better_with_shading_removed():
    """Pelvis CBCTs at the top of the clinical scatter range (scatter-to-primary 0.5, kernel-corrected).

    Error per case: translation error length (mm) + largest rotation error (deg).
    """
    patient = build_patient("pelvis", shape=(50, 90, 110), spacing=(4.0, 4.0, 4.0), seed=2)
    iso = patient.isocentre_mm
    roi = registration_roi(patient.reference, SITE_POLICIES["pelvis"])
    rng = np.random.default_rng(7)
    err = {0.0: [], 20.0: []}
    for k, day in enumerate(simulate_course(patient, 4, seed=3).fractions):
        truth = with_setup_error(day, rng.uniform(-15, 15, 3), rng.uniform(-3, 3, 3))
        cbct = simulate_daily_cbct(patient, truth, n_projections=90, scatter_to_primary=0.5, seed=k)
        t, r = truth.setup_error.params(iso)
        for sigma in err:
            res = register_rigid(patient.ct, cbct, centre_mm=iso, roi=roi, mode="bone", shading_sigma_mm=sigma)
            assert res.success or sigma == 0.0, res.failure_reason  # without removal a match may fail
            e = np.linalg.norm(res.translation_mm - t) + np.abs(np.asarray(res.rotation_deg) - r).max()
            err[sigma].append(e if res.success else np.inf)
    with_removal, without = np.mean(err[20.0]), np.mean(err[0.0])
    print(f"mm + deg error: {with_removal:.2f} with shading removal, {without:.2f} without")
    assert with_removal < 0.6 * without, (with_removal, without)
    assert with_removal < 1.5
