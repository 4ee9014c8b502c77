"""numba kernels for resampling (trilinear and nearest) through an affine index map."""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(parallel=True, cache=True, fastmath=True)
def affine_resample_linear(src: np.ndarray, a: np.ndarray, out_shape, fill: float, out: np.ndarray) -> None:
    """out[k, j, i] = trilinear src at continuous index a @ (i, j, k, 1) (index order x, y, z)."""
    nz, ny, nx = src.shape
    oz, oy, ox = out_shape
    for k in nb.prange(oz):
        for j in range(oy):
            bx = a[0, 1] * j + a[0, 2] * k + a[0, 3]
            by = a[1, 1] * j + a[1, 2] * k + a[1, 3]
            bz = a[2, 1] * j + a[2, 2] * k + a[2, 3]
            for i in range(ox):
                x = bx + a[0, 0] * i
                y = by + a[1, 0] * i
                z = bz + a[2, 0] * i
                if x < 0.0 or y < 0.0 or z < 0.0 or x > nx - 1 or y > ny - 1 or z > nz - 1:
                    out[k, j, i] = fill
                    continue
                x0 = min(int(x), nx - 2) if nx > 1 else 0
                y0 = min(int(y), ny - 2) if ny > 1 else 0
                z0 = min(int(z), nz - 2) if nz > 1 else 0
                fx = x - x0
                fy = y - y0
                fz = z - z0
                x1 = min(x0 + 1, nx - 1)
                y1 = min(y0 + 1, ny - 1)
                z1 = min(z0 + 1, nz - 1)
                c00 = src[z0, y0, x0] * (1 - fx) + src[z0, y0, x1] * fx
                c01 = src[z0, y1, x0] * (1 - fx) + src[z0, y1, x1] * fx
                c10 = src[z1, y0, x0] * (1 - fx) + src[z1, y0, x1] * fx
                c11 = src[z1, y1, x0] * (1 - fx) + src[z1, y1, x1] * fx
                c0 = c00 * (1 - fy) + c01 * fy
                c1 = c10 * (1 - fy) + c11 * fy
                out[k, j, i] = c0 * (1 - fz) + c1 * fz


@nb.njit(parallel=True, cache=True)
def affine_resample_nearest(src: np.ndarray, a: np.ndarray, out_shape, fill, out: np.ndarray) -> None:
    """out[k, j, i] = src at the nearest voxel to a @ (i, j, k, 1); ``fill`` outside."""
    nz, ny, nx = src.shape
    oz, oy, ox = out_shape
    for k in nb.prange(oz):
        for j in range(oy):
            for i in range(ox):
                x = int(np.floor(a[0, 0] * i + a[0, 1] * j + a[0, 2] * k + a[0, 3] + 0.5))
                y = int(np.floor(a[1, 0] * i + a[1, 1] * j + a[1, 2] * k + a[1, 3] + 0.5))
                z = int(np.floor(a[2, 0] * i + a[2, 1] * j + a[2, 2] * k + a[2, 3] + 0.5))
                if x < 0 or y < 0 or z < 0 or x >= nx or y >= ny or z >= nz:
                    out[k, j, i] = fill
                else:
                    out[k, j, i] = src[z, y, x]
