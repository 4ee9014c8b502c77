"""Rigid registration on phantom patients (igrt.phantom) imaged by the CBCT simulator + FDK (igrt.imaging)."""

from __future__ import annotations

import numpy as np
import pytest

from igrt.imaging.simulate import simulate_and_reconstruct
from igrt.phantom import build_patient, daily_anatomy, with_setup_error, zero_error_fraction
from igrt.registration.rigid3d import register_rigid
from igrt.registration.roi import roi_from_structure

N_CASES = 5


@pytest.fixture(scope="module")
def lung():
    return build_patient("lung", shape=(48, 72, 80), spacing=(5.0, 5.0, 5.0), seed=1)


def test_lung_phantom_cbct_cases(lung):
    """Random setup errors within +/-20 mm, +/-4 deg; CBCT with Poisson noise and some scatter, 72 projections.

    Clip box: PTV + 50 mm (as clinical systems do), so FDK cone-beam artefacts at the
    ends of the scan do not take part.
    """
    iso = lung.isocentre_mm
    roi = roi_from_structure(lung.structures["PTV"], 50.0)
    f0 = zero_error_fraction(lung)
    rng = np.random.default_rng(71)
    et, er = [], []
    for case in range(N_CASES):
        fr = with_setup_error(f0, rng.uniform(-20, 20, 3), rng.uniform(-4, 4, 3))
        cbct = simulate_and_reconstruct(daily_anatomy(lung, fr), iso, photons_per_pixel=2e4, scatter_to_primary=0.03,
                                        seed=case, n_projections=72)
        res = register_rigid(lung.ct, cbct, centre_mm=iso, roi=roi)
        assert res.success, res.failure_reason
        tt, rr = fr.setup_error.params(iso)
        et.append(res.translation_mm - tt)
        er.append(np.asarray(res.rotation_deg) - rr)
    et, er = np.abs(et), np.abs(er)
    assert et.mean() <= 0.3 and er.mean() <= 0.2, (et.mean(), er.mean())
    assert et.max() < 1.0 and er.max() < 0.8  # the simulated scatter tilts the CBCT slightly (see docs)
