"""Helpers shared by the registration tests (imported by name: the test dir is on sys.path)."""

from __future__ import annotations

import numpy as np

from igrt.registration import synthetic as S


def make_daily(rng: np.random.Generator, setup_error, *, degrade: bool = True, shape=(60, 62, 66),
               spacing=(3.8, 3.9, 4.1)):
    """A CBCT-like daily image of the synthetic patient displaced by ``setup_error``."""
    grid = S.grid(shape, spacing, tuple(rng.uniform(-5, 5, 3)))
    img = S.render(grid, setup_error)
    if not degrade:
        return img
    return S.cbct_like(img, rng, noise_hu=rng.uniform(10, 40), blur_mm=rng.uniform(0.5, 2.0),
                       hu_scale=rng.uniform(0.9, 1.1), hu_offset=rng.uniform(-50, 50), cupping_hu=rng.uniform(0, 100))


def errors(result, truth, centre):
    """Per-axis (translation mm, rotation deg) error of a result against the true transform."""
    tt, rr = truth.params(centre)
    return np.asarray(result.translation_mm) - tt, np.asarray(result.rotation_deg) - np.asarray(rr)


def bump(points: np.ndarray, centre, amp_mm: float, sigma_mm: float) -> np.ndarray:
    """Radial Gaussian expansion (bladder-filling-like) displacement (N, 3) in mm."""
    q = points - np.asarray(centre)
    r2 = (q**2).sum(axis=1, keepdims=True)
    return amp_mm * np.exp(-r2 / (2 * sigma_mm**2)) * q / sigma_mm


def breathing(points: np.ndarray, amp_mm: float) -> np.ndarray:
    """Superior-inferior lung motion, largest in the lower right lung, smooth elsewhere (mm)."""
    x, y, z = points[:, 0], points[:, 1], points[:, 2]
    w = np.exp(-((x - 60.0) ** 2 + (y + 5.0) ** 2) / (2 * 35.0**2)) * np.exp(-((z - 10.0) ** 2) / (2 * 45.0**2))
    d = np.zeros_like(points)
    d[:, 2] = amp_mm * w
    d[:, 1] = -0.3 * amp_mm * w
    return d


def render_deformed(reference, field, iterations: int = 15):
    """The synthetic anatomy deformed by phi(p) = p + field(p), sampled on ``reference``: anatomy(phi^-1(y))."""
    x, y, z = reference.world_coordinates()
    yy = np.stack(np.broadcast_arrays(x, y, z), axis=-1).reshape(-1, 3).astype(float)
    p = yy.copy()
    for _ in range(iterations):
        p = yy - field(p)
    p = p.reshape(*reference.shape, 3)
    return reference.with_array(S.anatomy_hu(p[..., 0], p[..., 1], p[..., 2]))


def marker_projection(pose, centres_mm: np.ndarray, radius_mm: float = 1.0, mu_per_mm: float = 3.0) -> np.ndarray:
    """Exact line integrals [nv, nu] of small spheres (gold markers) for a DRR pose."""
    nu, nv = pose.shape
    pu, pv = pose.spacing_mm
    jj, ii = np.mgrid[0:nv, 0:nu]
    pix = pose.pixel00_mm + ii[..., None] * pu * pose.u + jj[..., None] * pv * pose.v
    d = pix - pose.source_mm
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    out = np.zeros((nv, nu))
    for c in np.asarray(centres_mm, float).reshape(-1, 3):
        w = c - pose.source_mm
        t = (d * w).sum(-1)
        dist2 = (w * w).sum() - t * t
        out += mu_per_mm * 2.0 * np.sqrt(np.clip(radius_mm**2 - dist2, 0, None))
    return out
