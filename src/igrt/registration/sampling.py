"""Sample points on the planning image: a jittered regular grid inside the ROI."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from igrt.geometry import Volume
from igrt.registration._kernels import sample_points
from igrt.registration.roi import Roi


@dataclass(frozen=True, eq=False)
class Samples:
    """Sample points (N, 3) LPS mm with fixed-image values and weights; ``spacing_mm`` of the grid."""

    points: np.ndarray
    values: np.ndarray
    weights: np.ndarray
    spacing_mm: float

    @property
    def n(self) -> int:
        return int(self.points.shape[0])


def index_map(volume: Volume) -> np.ndarray:
    """3x4 world (LPS mm) -> continuous (x, y, z) index map of ``volume``."""
    return np.ascontiguousarray(volume.world_to_index[:3, :])


def interpolate(volume: Volume, points: np.ndarray, fill: float = np.nan) -> np.ndarray:
    """Trilinear values of ``volume`` at world points (N, 3); ``fill`` outside."""
    out = np.empty(points.shape[0], dtype=np.float32)
    arr = np.ascontiguousarray(volume.array, dtype=np.float32)
    sample_points(arr, index_map(volume), np.ascontiguousarray(points, dtype=np.float32), float(fill), out)
    return out


def _grid(lo: np.ndarray, hi: np.ndarray, h: float, rng: np.random.Generator) -> np.ndarray:
    n = np.maximum(1, np.floor((hi - lo) / h).astype(int))
    axes = [lo[d] + (np.arange(n[d]) + 0.5) * (hi[d] - lo[d]) / n[d] for d in range(3)]
    zz, yy, xx = np.meshgrid(axes[2], axes[1], axes[0], indexing="ij")
    pts = np.stack([xx.ravel(), yy.ravel(), zz.ravel()], axis=1)
    step = (hi - lo) / n
    pts += (rng.random(pts.shape) - 0.5) * step  # jitter breaks grid-aligned interpolation artefacts
    return pts.astype(np.float32)


def draw_samples(
    fixed: Volume,
    roi: Roi | None,
    weights: Volume | None,
    n_target: int,
    rng: np.random.Generator,
    min_spacing_mm: float | None = None,
) -> Samples:
    """About ``n_target`` jittered-grid points in ``roi`` ∩ fixed image ∩ (weights > 0).

    The grid is never finer than ``min_spacing_mm`` (default: the fixed voxel
    size), so coarse levels are not oversampled.
    """
    blo, bhi = fixed.bounds()
    lo, hi = blo.astype(float), bhi.astype(float)
    if roi is not None:
        lo = np.maximum(lo, roi.lower_mm)
        hi = np.minimum(hi, roi.upper_mm)
    if np.any(hi <= lo):
        return Samples(np.zeros((0, 3), np.float32), np.zeros(0, np.float32), np.zeros(0, np.float32), 0.0)
    if min_spacing_mm is None:
        min_spacing_mm = float(np.prod(fixed.spacing) ** (1 / 3))
    vol = float(np.prod(hi - lo))
    h = max(min_spacing_mm, (vol / max(n_target, 1)) ** (1 / 3))
    pts = _keep(_grid(lo, hi, h, rng), fixed, roi, weights)
    kept = pts[0].shape[0] / max(1, int(np.prod(np.maximum(1, np.floor((hi - lo) / h)))))
    if 0 < kept < 0.7 and pts[0].shape[0] < 0.7 * n_target:
        h2 = max(min_spacing_mm, h * kept ** (1 / 3))
        if h2 < h * 0.95:
            h = h2
            pts = _keep(_grid(lo, hi, h, rng), fixed, roi, weights)
    p, w = pts
    vals = interpolate(fixed, p)
    return Samples(p, vals, w, h)


def _keep(pts: np.ndarray, fixed: Volume, roi: Roi | None, weights: Volume | None):
    inside = np.isfinite(interpolate(fixed, pts))
    if roi is not None and roi.mask is not None:
        inside &= interpolate(roi.mask.with_array(roi.mask.array.astype(np.float32)), pts, 0.0) >= 0.5
    w = np.ones(pts.shape[0], np.float32)
    if weights is not None:
        w = interpolate(weights, pts, 0.0)
        inside &= w > 0.05
    return np.ascontiguousarray(pts[inside]), np.ascontiguousarray(w[inside])
