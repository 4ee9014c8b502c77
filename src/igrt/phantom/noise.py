"""Smooth random fields for tissue texture and lung vessels.

White noise on a coarse grid, Gaussian-smoothed there (cheap), then sampled
trilinearly onto the fine grid with the geometry resampler (numba). The
result has roughly unit standard deviation and a correlation length of about
``correlation_mm``.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

from igrt.geometry import Volume, resample


def coarse_noise(target: Volume, correlation_mm: float, rng: np.random.Generator) -> Volume:
    """Smoothed unit-variance white noise on a grid of step correlation/2 covering ``target`` (+1 cell)."""
    lo, hi = target.bounds()
    step = max(correlation_mm / 2.0, 0.5)
    n = np.ceil((hi - lo) / step).astype(int) + 3  # (x, y, z) counts with one-cell border
    coarse = rng.standard_normal((n[2], n[1], n[0])).astype(np.float32)
    coarse = gaussian_filter(coarse, sigma=1.0, mode="wrap")
    coarse /= max(float(coarse.std()), 1e-6)
    return Volume(coarse, tuple(lo - step), (step, step, step))


def smooth_noise(
    grid: Volume,
    correlation_mm: float,
    rng: np.random.Generator,
    sub: tuple[slice, slice, slice] | None = None,
) -> np.ndarray:
    """Unit-variance smooth noise on ``grid`` (or the sub-box ``sub`` of it), float32."""
    target = grid
    if sub is not None:
        k0, j0, i0 = (s.start for s in sub)
        shape = tuple(s.stop - s.start for s in sub)
        origin = grid.to_world([i0, j0, k0])
        target = Volume(np.zeros(shape, np.uint8), tuple(origin), grid.spacing, grid.direction)
    return resample(coarse_noise(target, correlation_mm, rng), target, None, order=1, fill=0.0).array
