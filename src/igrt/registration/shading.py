"""Low-frequency shading removal (CBCT cupping, scatter, HU drift) before intensity matching.

Scatter and beam hardening add a smooth, position-dependent offset to CBCT
values (cupping, shading) that the planning CT does not have. A metric
compares absolute values, so that offset pulls the match towards aligning the
shading instead of the anatomy. Subtracting a Gaussian low-pass of
``sigma_mm`` from both images keeps the bone and organ edges the match should
see and drops the shading.

The low-pass is computed cheaply: block means on a grid of about
``sigma_mm / 3`` voxels, a Gaussian there, trilinear interpolation back.
"""

from __future__ import annotations

import numpy as np

from igrt.geometry import Volume
from igrt.registration import _deform_kernels as DK


def remove_shading(volume: Volume, sigma_mm: float) -> Volume:
    """``volume`` minus its Gaussian low-pass of ``sigma_mm`` (mm): edges and texture stay, shading goes."""
    arr = np.ascontiguousarray(volume.array, dtype=np.float32)
    sp_zyx = np.asarray(volume.spacing, dtype=float)[::-1]
    f = tuple(int(max(1, min(n // 4, np.floor(sigma_mm / 3.0 / s)))) for s, n in zip(sp_zyx, arr.shape))
    small = DK.gaussian(DK.block_mean(arr, *f), [sigma_mm / (s * b) for s, b in zip(sp_zyx, f)])
    # fine voxel centre i lies at block index (i + 0.5) / f - 0.5
    axes = [((np.arange(n) + 0.5) / b - 0.5).astype(np.float32) for n, b in zip(arr.shape[::-1], f[::-1])]
    return volume.with_array(DK.minus_upsampled(arr, small, *axes))
