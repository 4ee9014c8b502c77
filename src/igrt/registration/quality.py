"""Quality verdict and uncertainty of a rigid registration.

Uncertainty: the Gauss-Newton covariance ``s^2 H^-1`` of the linear-fit
residual at the optimum (``s^2`` the residual variance per sample, ``H`` the
sum of J J^T), inflated by ``(corr_mm / sample_spacing)^3`` because samples
closer than the image correlation length are not independent, scaled by
`CALIBRATION_MM`/`CALIBRATION_DEG` (fitted on CBCT-like synthetic cases, where
noise is the only error), and added in quadrature to a floor
`FLOOR_MM`/`FLOOR_DEG`: the systematic error of a real CBCT (scatter,
cone-beam and reconstruction artefacts) that the residual cannot show. The
floors were fitted on full-size phantom CBCTs (256x256x128, scatter 0.3),
where the statistical part alone covered only 27 % / 43 % of the true
errors. docs/registration.md ("Uncertainty") has the coverage per image family.
"""

from __future__ import annotations

import numpy as np

CALIBRATION_MM = 3.0
CALIBRATION_DEG = 2.2
FLOOR_MM = 0.06  # per axis, 1 SD
FLOOR_DEG = 0.05


def gn_uncertainty(
    jtj_sum: np.ndarray,
    residual_var: float,
    slope: float,
    sample_spacing_mm: float,
    corr_mm: float,
) -> tuple[np.ndarray, np.ndarray, bool]:
    """1-SD (mm x3, deg x3) and whether the Hessian constrains all 6 parameters."""
    h = slope * slope * jtj_sum
    try:
        w = np.linalg.eigvalsh(h)
    except np.linalg.LinAlgError:
        return np.full(3, np.inf), np.full(3, np.inf), False
    if not np.all(np.isfinite(w)) or w.min() <= max(w.max(), 1e-300) * 1e-10:
        return np.full(3, np.inf), np.full(3, np.inf), False
    cov = residual_var * np.linalg.inv(h)
    inflate = max(1.0, (corr_mm / max(sample_spacing_mm, 1e-6)) ** 3)
    sd = np.sqrt(np.clip(np.diag(cov), 0, None) * inflate)
    sd_mm = np.sqrt((CALIBRATION_MM * sd[:3]) ** 2 + FLOOR_MM**2)
    sd_deg = np.sqrt((CALIBRATION_DEG * np.rad2deg(sd[3:])) ** 2 + FLOOR_DEG**2)
    return sd_mm, sd_deg, True


def transform_difference(p1: np.ndarray, p2: np.ndarray) -> tuple[float, float]:
    """Largest translation difference (mm) and rotation difference (deg) between parameter sets."""
    return float(np.abs(p1[:3] - p2[:3]).max()), float(np.rad2deg(np.abs(p1[3:] - p2[3:]).max()))
