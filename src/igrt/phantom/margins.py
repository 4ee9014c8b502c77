"""Target margins: grow a mask by (possibly anisotropic) margins with a 3D Euclidean distance transform."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import distance_transform_edt

from igrt.geometry import Volume
from igrt.phantom.errors import PhantomError


def expand_mask(mask: Volume, margin_mm) -> Volume:
    """Mask grown by ``margin_mm`` (scalar or per-axis (x, y, z), mm).

    A voxel joins when a mask voxel lies inside the ellipsoid with semi-axes
    ``margin_mm`` around it, i.e. the scaled distance
    ``sqrt(sum((d_i / m_i)^2)) <= 1``: the EDT runs with sampling
    ``spacing / margin`` so anisotropic margins are exact ellipsoidal
    dilations. Only the bounding box of the mask plus the margin is
    transformed (fast on large grids). Zero margin on an axis means no growth
    along it.
    """
    m = np.broadcast_to(np.asarray(margin_mm, dtype=float), (3,)).copy()
    if np.any(m < 0) or not np.all(np.isfinite(m)):
        raise PhantomError(f"margins must be finite and non-negative (mm), got {margin_mm}")
    src = np.asarray(mask.array, dtype=bool)
    if not src.any() or np.all(m == 0):
        return mask.with_array(src.copy())
    spacing = np.asarray(mask.spacing, float)  # (x, y, z)
    pad = np.ceil(m / spacing).astype(int) + 1  # (x, y, z) voxels
    lo, hi = [], []
    for a in range(3):  # array axes (z, y, x); projections are much cheaper than np.nonzero on big grids
        occupied = np.flatnonzero(src.any(axis=tuple(b for b in range(3) if b != a)))
        lo.append(max(int(occupied[0]) - pad[2 - a], 0))
        hi.append(min(int(occupied[-1]) + pad[2 - a] + 1, src.shape[a]))
    sl = tuple(slice(l, h) for l, h in zip(lo, hi))
    scaled = np.where(m > 0, spacing / np.maximum(m, 1e-12), 1e6)  # zero margin: huge step, never within 1
    dist = distance_transform_edt(~src[sl], sampling=tuple(scaled[::-1]))
    out = np.zeros_like(src)
    out[sl] = dist <= 1.0 + 1e-9
    return mask.with_array(out)
