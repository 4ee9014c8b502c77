"""numba kernels for deformable registration (warping, composing fields, Jacobian) and the separable
Gaussian, block means and upsampling that shading removal shares."""

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


@nb.njit(parallel=True, cache=True, fastmath=True)
def _convolve_x(a, w, out):
    nz, ny, nx = a.shape
    r = (w.size - 1) // 2
    for k in nb.prange(nz):
        row = np.empty(nx + 2 * r, dtype=np.float32)  # replicate-padded copy: no clamping in the inner loop
        for j in range(ny):
            for i in range(nx + 2 * r):
                row[i] = a[k, j, min(max(i - r, 0), nx - 1)]
            for i in range(nx):
                out[k, j, i] = 0.0
            for t in range(2 * r + 1):
                wt = w[t]
                for i in range(nx):
                    out[k, j, i] += wt * row[i + t]


@nb.njit(parallel=True, cache=True, fastmath=True)
def _convolve_mid(a, w, out):
    """Convolution along the middle axis of (P, N, M), borders replicated; whole M-rows vectorise."""
    n_p, n_n, n_m = a.shape
    r = (w.size - 1) // 2
    for q in nb.prange(n_p * n_n):
        p = q // n_n
        n = q % n_n
        for m in range(n_m):
            out[p, n, m] = 0.0
        for t in range(-r, r + 1):
            src = min(max(n + t, 0), n_n - 1)
            wt = w[t + r]
            for m in range(n_m):
                out[p, n, m] += wt * a[p, src, m]


def gaussian_kernel(sigma: float, truncate: float = 3.0) -> np.ndarray:
    """Normalised 1D Gaussian weights (float32) of ``sigma`` voxels, radius ``truncate * sigma``."""
    r = max(1, int(truncate * sigma + 0.5))
    t = np.arange(-r, r + 1, dtype=np.float64)
    w = np.exp(-0.5 * (t / sigma) ** 2)
    return (w / w.sum()).astype(np.float32)


def gaussian(a: np.ndarray, sigma) -> np.ndarray:
    """Separable Gaussian smoothing, borders replicated as scipy's mode="nearest".

    ``sigma`` in voxels: one value for all axes or (z, y, x), as for
    ``scipy.ndimage.gaussian_filter(..., truncate=3.0)``.
    """
    sz, sy, sx = np.broadcast_to(np.asarray(sigma, dtype=float), (3,))
    a = np.ascontiguousarray(a, dtype=np.float32)
    tmp = np.empty_like(a)
    out = np.empty_like(a)
    _convolve_x(a, gaussian_kernel(sx), tmp)
    _convolve_mid(tmp, gaussian_kernel(sy), out)
    nz, ny, nx = a.shape  # along z: the (y, x) planes are the rows
    _convolve_mid(out.reshape(1, nz, ny * nx), gaussian_kernel(sz), tmp.reshape(1, nz, ny * nx))
    return tmp


@nb.njit(parallel=True, cache=True, fastmath=True)
def upsample(u, ax, ay, az, scale):
    """u sampled (trilinear, clamped) at the index grid ax x ay x az of a coarse field, times ``scale``."""
    nz, ny, nx = az.size, ay.size, ax.size
    out = np.empty((nz, ny, nx), dtype=np.float32)
    for k in nb.prange(nz):
        for j in range(ny):
            for i in range(nx):
                out[k, j, i] = _lin(u, ax[i], ay[j], az[k]) * scale
    return out


@nb.njit(parallel=True, cache=True, fastmath=True)
def jacobian_det(dx, dy, dz, sx, sy, sz):
    """det(I + grad d) of a displacement (mm) on a grid of spacing (sx, sy, sz) mm; differences as np.gradient."""
    nz, ny, nx = dx.shape
    out = np.empty((nz, ny, nx), dtype=np.float32)
    for k in nb.prange(nz):
        k0 = max(k - 1, 0)
        k1 = min(k + 1, nz - 1)
        hz = (k1 - k0) * sz
        for j in range(ny):
            j0 = max(j - 1, 0)
            j1 = min(j + 1, ny - 1)
            hy = (j1 - j0) * sy
            for i in range(nx):
                i0 = max(i - 1, 0)
                i1 = min(i + 1, nx - 1)
                hx = (i1 - i0) * sx
                a00 = 1.0 + (dx[k, j, i1] - dx[k, j, i0]) / hx
                a01 = (dx[k, j1, i] - dx[k, j0, i]) / hy
                a02 = (dx[k1, j, i] - dx[k0, j, i]) / hz
                a10 = (dy[k, j, i1] - dy[k, j, i0]) / hx
                a11 = 1.0 + (dy[k, j1, i] - dy[k, j0, i]) / hy
                a12 = (dy[k1, j, i] - dy[k0, j, i]) / hz
                a20 = (dz[k, j, i1] - dz[k, j, i0]) / hx
                a21 = (dz[k, j1, i] - dz[k, j0, i]) / hy
                a22 = 1.0 + (dz[k1, j, i] - dz[k0, j, i]) / hz
                out[k, j, i] = (a00 * (a11 * a22 - a12 * a21) - a01 * (a10 * a22 - a12 * a20)
                                + a02 * (a10 * a21 - a11 * a20))
    return out


@nb.njit(parallel=True, cache=True, fastmath=True)
def block_mean(a, fz, fy, fx):
    """Means over (fz, fy, fx) voxel blocks; a partial last block repeats the edge voxel (as edge padding)."""
    nz, ny, nx = a.shape
    mz, my, mx = -(-nz // fz), -(-ny // fy), -(-nx // fx)
    out = np.empty((mz, my, mx), dtype=np.float32)
    inv = 1.0 / (fz * fy * fx)
    for K in nb.prange(mz):
        for J in range(my):
            for I in range(mx):
                acc = 0.0
                for dk in range(fz):
                    k = min(K * fz + dk, nz - 1)
                    for dj in range(fy):
                        j = min(J * fy + dj, ny - 1)
                        for di in range(fx):
                            acc += a[k, j, min(I * fx + di, nx - 1)]
                out[K, J, I] = acc * inv
    return out


@nb.njit(parallel=True, cache=True, fastmath=True)
def minus_upsampled(a, small, ax, ay, az):
    """a - (small sampled trilinearly at the index grid ax x ay x az)."""
    nz, ny, nx = a.shape
    out = np.empty((nz, ny, nx), dtype=np.float32)
    for k in nb.prange(nz):
        for j in range(ny):
            for i in range(nx):
                out[k, j, i] = a[k, j, i] - _lin(small, ax[i], ay[j], az[k])
    return out
