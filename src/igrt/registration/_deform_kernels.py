"""numba kernels for deformable registration: warping images and composing displacement fields."""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(inline="always", fastmath=True)
def _lin(img, x, y, z):
    """Trilinear value at continuous index (x, y, z), borders clamped (replicate)."""
    nz, ny, nx = img.shape
    x = min(max(x, 0.0), nx - 1.0)
    y = min(max(y, 0.0), ny - 1.0)
    z = min(max(z, 0.0), nz - 1.0)
    x0 = min(int(x), nx - 2) if nx > 1 else 0
    y0 = min(int(y), ny - 2) if ny > 1 else 0
    z0 = min(int(z), nz - 2) if nz > 1 else 0
    x1 = min(x0 + 1, nx - 1)
    y1 = min(y0 + 1, ny - 1)
    z1 = min(z0 + 1, nz - 1)
    fx = x - x0
    fy = y - y0
    fz = z - z0
    c00 = img[z0, y0, x0] + (img[z0, y0, x1] - img[z0, y0, x0]) * fx
    c01 = img[z0, y1, x0] + (img[z0, y1, x1] - img[z0, y1, x0]) * fx
    c10 = img[z1, y0, x0] + (img[z1, y0, x1] - img[z1, y0, x0]) * fx
    c11 = img[z1, y1, x0] + (img[z1, y1, x1] - img[z1, y1, x0]) * fx
    c0 = c00 + (c01 - c00) * fy
    c1 = c10 + (c11 - c10) * fy
    return c0 + (c1 - c0) * fz


@nb.njit(parallel=True, cache=True, fastmath=True)
def warp(img, vx, vy, vz):
    """out[k, j, i] = img at index (i + vx, j + vy, k + vz); displacements in voxels."""
    nz, ny, nx = vx.shape
    out = np.empty((nz, ny, nx), dtype=np.float32)
    for k in nb.prange(nz):
        for j in range(ny):
            for i in range(nx):
                out[k, j, i] = _lin(img, i + vx[k, j, i], j + vy[k, j, i], k + vz[k, j, i])
    return out


@nb.njit(parallel=True, cache=True, fastmath=True)
def compose(ux, uy, uz, vx, vy, vz):
    """w = v + u o (Id + v): displacement (voxels) of applying v first, then u."""
    nz, ny, nx = vx.shape
    wx = np.empty_like(vx)
    wy = np.empty_like(vy)
    wz = np.empty_like(vz)
    for k in nb.prange(nz):
        for j in range(ny):
            for i in range(nx):
                x = i + vx[k, j, i]
                y = j + vy[k, j, i]
                z = k + vz[k, j, i]
                wx[k, j, i] = vx[k, j, i] + _lin(ux, x, y, z)
                wy[k, j, i] = vy[k, j, i] + _lin(uy, x, y, z)
                wz[k, j, i] = vz[k, j, i] + _lin(uz, x, y, z)
    return wx, wy, wz


@nb.njit(parallel=True, cache=True, fastmath=True)
def demons_force(fixed, warped, sx, sy, sz, norm2, max_step):
    """Symmetric (ESM) demons update in voxels, clipped to ``max_step`` voxels.

    Gradients are central differences of (fixed + warped)/2 in intensity per mm;
    the update in mm is -diff * g / (|g|^2 + diff^2 / norm2), then converted to voxels.
    """
    nz, ny, nx = fixed.shape
    ux = np.zeros((nz, ny, nx), dtype=np.float32)
    uy = np.zeros((nz, ny, nx), dtype=np.float32)
    uz = np.zeros((nz, ny, nx), dtype=np.float32)
    for k in nb.prange(nz):
        k0 = max(k - 1, 0)
        k1 = min(k + 1, nz - 1)
        for j in range(ny):
            j0 = max(j - 1, 0)
            j1 = min(j + 1, ny - 1)
            for i in range(nx):
                i0 = max(i - 1, 0)
                i1 = min(i + 1, nx - 1)
                gx = 0.5 * ((fixed[k, j, i1] - fixed[k, j, i0]) + (warped[k, j, i1] - warped[k, j, i0])) / ((i1 - i0) * sx + 1e-12)
                gy = 0.5 * ((fixed[k, j1, i] - fixed[k, j0, i]) + (warped[k, j1, i] - warped[k, j0, i])) / ((j1 - j0) * sy + 1e-12)
                gz = 0.5 * ((fixed[k1, j, i] - fixed[k0, j, i]) + (warped[k1, j, i] - warped[k0, j, i])) / ((k1 - k0) * sz + 1e-12)
                d = warped[k, j, i] - fixed[k, j, i]
                den = gx * gx + gy * gy + gz * gz + d * d / norm2
                if den < 1e-9:
                    continue
                s = -d / den
                vx = s * gx / sx
                vy = s * gy / sy
                vz = s * gz / sz
                mag = np.sqrt(vx * vx + vy * vy + vz * vz)
                if mag > max_step:
                    f = max_step / mag
                    vx *= f
                    vy *= f
                    vz *= f
                ux[k, j, i] = vx
                uy[k, j, i] = vy
                uz[k, j, i] = vz
    return ux, uy, uz
