"""numba kernels: pull a planning image back through setup error + smooth deformation.

For an output voxel with index q (x, y, z order): ``r = m1 @ (q, 1)`` is the
point in the planning frame after undoing the setup error; the deformation
adds ``v(r) = sum_k w_k(r) (A_k r + t_k)`` where the weights ``w_k`` are
sampled trilinearly from a coarse weight grid (``wm`` maps LPS mm to its
indices, zero outside); the source is sampled at ``p = r + v(r)``.
"""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(cache=True, inline="always")
def _trilinear(vol, x, y, z, fill):
    nz, ny, nx = vol.shape
    if x < 0.0 or y < 0.0 or z < 0.0 or x > nx - 1 or y > ny - 1 or z > nz - 1:
        return fill
    x0 = min(int(x), nx - 2) if nx > 1 else 0
    y0 = min(int(y), ny - 2) if ny > 1 else 0
    z0 = min(int(z), nz - 2) if nz > 1 else 0
    fx, fy, fz = x - x0, y - y0, z - z0
    x1, y1, z1 = min(x0 + 1, nx - 1), min(y0 + 1, ny - 1), min(z0 + 1, nz - 1)
    c00 = vol[z0, y0, x0] * (1 - fx) + vol[z0, y0, x1] * fx
    c01 = vol[z0, y1, x0] * (1 - fx) + vol[z0, y1, x1] * fx
    c10 = vol[z1, y0, x0] * (1 - fx) + vol[z1, y0, x1] * fx
    c11 = vol[z1, y1, x0] * (1 - fx) + vol[z1, y1, x1] * fx
    return (c00 * (1 - fy) + c01 * fy) * (1 - fz) + (c10 * (1 - fy) + c11 * fy) * fz


@nb.njit(cache=True, inline="always")
def _weight(weights, t, x, y, z):
    """Trilinear sample of weight grid ``t`` (scalar indexing: no array views in the hot loop); 0 outside."""
    nz, ny, nx = weights.shape[1], weights.shape[2], weights.shape[3]
    if x < 0.0 or y < 0.0 or z < 0.0 or x > nx - 1 or y > ny - 1 or z > nz - 1:
        return 0.0
    x0 = min(int(x), nx - 2)
    y0 = min(int(y), ny - 2)
    z0 = min(int(z), nz - 2)
    fx, fy, fz = x - x0, y - y0, z - z0
    c00 = weights[t, z0, y0, x0] * (1 - fx) + weights[t, z0, y0, x0 + 1] * fx
    c01 = weights[t, z0, y0 + 1, x0] * (1 - fx) + weights[t, z0, y0 + 1, x0 + 1] * fx
    c10 = weights[t, z0 + 1, y0, x0] * (1 - fx) + weights[t, z0 + 1, y0, x0 + 1] * fx
    c11 = weights[t, z0 + 1, y0 + 1, x0] * (1 - fx) + weights[t, z0 + 1, y0 + 1, x0 + 1] * fx
    return (c00 * (1 - fy) + c01 * fy) * (1 - fz) + (c10 * (1 - fy) + c11 * fy) * fz


@nb.njit(cache=True, inline="always")
def _pullback(i, j, k, m1, wm, weights, wbox, amat, tvec):
    """Planning-frame point (LPS mm) that output voxel (i, j, k) samples.

    ``wbox[t]`` = (x0, x1, y0, y1, z0, z1): weight-grid index box outside which term t's weight is zero.
    """
    rx = m1[0, 0] * i + m1[0, 1] * j + m1[0, 2] * k + m1[0, 3]
    ry = m1[1, 0] * i + m1[1, 1] * j + m1[1, 2] * k + m1[1, 3]
    rz = m1[2, 0] * i + m1[2, 1] * j + m1[2, 2] * k + m1[2, 3]
    px, py, pz = rx, ry, rz
    nt = weights.shape[0]
    if nt > 0:
        wx = wm[0, 0] * rx + wm[0, 1] * ry + wm[0, 2] * rz + wm[0, 3]
        wy = wm[1, 0] * rx + wm[1, 1] * ry + wm[1, 2] * rz + wm[1, 3]
        wz = wm[2, 0] * rx + wm[2, 1] * ry + wm[2, 2] * rz + wm[2, 3]
        for t in range(nt):
            if (wx < wbox[t, 0] or wx > wbox[t, 1] or wy < wbox[t, 2] or wy > wbox[t, 3]
                    or wz < wbox[t, 4] or wz > wbox[t, 5]):
                continue
            w = _weight(weights, t, wx, wy, wz)
            if w != 0.0:
                px += w * (amat[t, 0, 0] * rx + amat[t, 0, 1] * ry + amat[t, 0, 2] * rz + tvec[t, 0])
                py += w * (amat[t, 1, 0] * rx + amat[t, 1, 1] * ry + amat[t, 1, 2] * rz + tvec[t, 1])
                pz += w * (amat[t, 2, 0] * rx + amat[t, 2, 1] * ry + amat[t, 2, 2] * rz + tvec[t, 2])
    return px, py, pz


@nb.njit(parallel=True, cache=True)
def warp_linear(src, sm, m1, wm, weights, wbox, amat, tvec, fill, out):
    """out = trilinear src at sm @ pullback(q); ``sm`` maps LPS mm to source indices (3x4)."""
    oz, oy, ox = out.shape
    for k in nb.prange(oz):
        for j in range(oy):
            for i in range(ox):
                px, py, pz = _pullback(i, j, k, m1, wm, weights, wbox, amat, tvec)
                x = sm[0, 0] * px + sm[0, 1] * py + sm[0, 2] * pz + sm[0, 3]
                y = sm[1, 0] * px + sm[1, 1] * py + sm[1, 2] * pz + sm[1, 3]
                z = sm[2, 0] * px + sm[2, 1] * py + sm[2, 2] * pz + sm[2, 3]
                out[k, j, i] = _trilinear(src, x, y, z, fill)


@nb.njit(parallel=True, cache=True)
def warp_nearest(src, sm, m1, wm, weights, wbox, amat, tvec, fill, out):
    """out = nearest-voxel src at sm @ pullback(q) (labels, masks)."""
    nz, ny, nx = src.shape
    oz, oy, ox = out.shape
    for k in nb.prange(oz):
        for j in range(oy):
            for i in range(ox):
                px, py, pz = _pullback(i, j, k, m1, wm, weights, wbox, amat, tvec)
                x = int(np.floor(sm[0, 0] * px + sm[0, 1] * py + sm[0, 2] * pz + sm[0, 3] + 0.5))
                y = int(np.floor(sm[1, 0] * px + sm[1, 1] * py + sm[1, 2] * pz + sm[1, 3] + 0.5))
                z = int(np.floor(sm[2, 0] * px + sm[2, 1] * py + sm[2, 2] * pz + sm[2, 3] + 0.5))
                if x < 0 or y < 0 or z < 0 or x >= nx or y >= ny or z >= nz:
                    out[k, j, i] = fill
                else:
                    out[k, j, i] = src[z, y, x]


@nb.njit(parallel=True, cache=True)
def pullback_field(g, m1, wm, weights, wbox, amat, tvec, out):
    """out[c, k, j, i] = pullback(q) - world(q) (mm), ``g`` = output index-to-world (3x4)."""
    oz, oy, ox = out.shape[1], out.shape[2], out.shape[3]
    for k in nb.prange(oz):
        for j in range(oy):
            for i in range(ox):
                px, py, pz = _pullback(i, j, k, m1, wm, weights, wbox, amat, tvec)
                out[0, k, j, i] = px - (g[0, 0] * i + g[0, 1] * j + g[0, 2] * k + g[0, 3])
                out[1, k, j, i] = py - (g[1, 0] * i + g[1, 1] * j + g[1, 2] * k + g[1, 3])
                out[2, k, j, i] = pz - (g[2, 0] * i + g[2, 1] * j + g[2, 2] * k + g[2, 3])


@nb.njit(parallel=True, cache=True)
def compose_hu(labels, lut_hu, lut_coarse, lut_fine, coarse, cm, fine, fm, out_fine, out):
    """out = lut_hu[l] + lut_coarse[l] * coarse(q) + lut_fine[l] * fine(q) for every voxel q (index order x, y, z).

    ``coarse``/``fine`` are noise grids sampled trilinearly at ``cm``/``fm`` @ (i, j, k, 1);
    the fine noise is also written to ``out_fine`` (reused for bone texture).
    """
    oz, oy, ox = labels.shape
    for k in nb.prange(oz):
        for j in range(oy):
            for i in range(ox):
                cx = cm[0, 0] * i + cm[0, 1] * j + cm[0, 2] * k + cm[0, 3]
                cy = cm[1, 0] * i + cm[1, 1] * j + cm[1, 2] * k + cm[1, 3]
                cz = cm[2, 0] * i + cm[2, 1] * j + cm[2, 2] * k + cm[2, 3]
                fx = fm[0, 0] * i + fm[0, 1] * j + fm[0, 2] * k + fm[0, 3]
                fy = fm[1, 0] * i + fm[1, 1] * j + fm[1, 2] * k + fm[1, 3]
                fz = fm[2, 0] * i + fm[2, 1] * j + fm[2, 2] * k + fm[2, 3]
                f = _trilinear(fine, fx, fy, fz, 0.0)
                lab = labels[k, j, i]
                out_fine[k, j, i] = f
                out[k, j, i] = lut_hu[lab] + lut_coarse[lab] * _trilinear(coarse, cx, cy, cz, 0.0) + lut_fine[lab] * f
