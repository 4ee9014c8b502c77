"""numba kernels for rigid registration: one pass over fixed-image sample points.

Every kernel takes sample points ``pts`` (N, 3) in LPS mm on the planning
(fixed) image, maps them through the current rigid transform ``m`` (3x4,
planning -> daily), samples the daily (moving) image trilinearly together
with its spatial gradient, and accumulates what a metric needs for its value,
its gradient with respect to the 6 parameters (tx, ty, tz in mm; rx, ry, rz in
radians, rotations about ``centre``) and a Gauss-Newton Hessian.

Work is split into ``nchunk`` contiguous chunks, each with its own row of
accumulators, so the parallel loop needs no atomics; Python sums the rows.
The numpy references in ``tests/registration`` check these kernels.
"""

from __future__ import annotations

import numba as nb
import numpy as np

# Layout of the Gauss-Newton accumulator row (K_GN values per chunk).
GN_SW, GN_SF, GN_SM, GN_SFF, GN_SMM, GN_SFM = 0, 1, 2, 3, 4, 5
GN_SJ, GN_SFJ, GN_SMJ, GN_SJJ = 6, 12, 18, 24  # 6, 6, 6 and 36 (row-major 6x6) values
GN_COUNT, GN_WALL = 60, 61  # valid sample count, total weight of all samples (valid or not)
K_GN = 62


@nb.njit(inline="always", fastmath=True)
def _trilinear_grad(img, x, y, z):
    """Trilinear value and index-space gradient at continuous index (x, y, z); ok=False outside."""
    nz, ny, nx = img.shape
    if not (x >= 0.0 and y >= 0.0 and z >= 0.0 and x <= nx - 1 and y <= ny - 1 and z <= nz - 1):
        return 0.0, 0.0, 0.0, 0.0, False
    x0 = min(int(x), nx - 2)
    y0 = min(int(y), ny - 2)
    z0 = min(int(z), nz - 2)
    fx = x - x0
    fy = y - y0
    fz = z - z0
    v000 = img[z0, y0, x0]
    v001 = img[z0, y0, x0 + 1]
    v010 = img[z0, y0 + 1, x0]
    v011 = img[z0, y0 + 1, x0 + 1]
    v100 = img[z0 + 1, y0, x0]
    v101 = img[z0 + 1, y0, x0 + 1]
    v110 = img[z0 + 1, y0 + 1, x0]
    v111 = img[z0 + 1, y0 + 1, x0 + 1]
    c00 = v000 + (v001 - v000) * fx
    c01 = v010 + (v011 - v010) * fx
    c10 = v100 + (v101 - v100) * fx
    c11 = v110 + (v111 - v110) * fx
    c0 = c00 + (c01 - c00) * fy
    c1 = c10 + (c11 - c10) * fy
    val = c0 + (c1 - c0) * fz
    gz = c1 - c0
    gy = (c01 - c00) * (1.0 - fz) + (c11 - c10) * fz
    d00 = v001 - v000
    d01 = v011 - v010
    d10 = v101 - v100
    d11 = v111 - v110
    gx = (d00 + (d01 - d00) * fy) * (1.0 - fz) + (d10 + (d11 - d10) * fy) * fz
    return val, gx, gy, gz, True


@nb.njit(inline="always", fastmath=True)
def _sample_jacobian(pts, i, img, a, m, dr, centre, jac):
    """Moving value at m(p_i) and its Jacobian w.r.t. the 6 parameters (written to ``jac``)."""
    px = pts[i, 0]
    py = pts[i, 1]
    pz = pts[i, 2]
    yx = m[0, 0] * px + m[0, 1] * py + m[0, 2] * pz + m[0, 3]
    yy = m[1, 0] * px + m[1, 1] * py + m[1, 2] * pz + m[1, 3]
    yz = m[2, 0] * px + m[2, 1] * py + m[2, 2] * pz + m[2, 3]
    ix = a[0, 0] * yx + a[0, 1] * yy + a[0, 2] * yz + a[0, 3]
    iy = a[1, 0] * yx + a[1, 1] * yy + a[1, 2] * yz + a[1, 3]
    iz = a[2, 0] * yx + a[2, 1] * yy + a[2, 2] * yz + a[2, 3]
    val, gi, gj, gk, ok = _trilinear_grad(img, ix, iy, iz)
    if not ok:
        return 0.0, False
    # index = A y + b, so d(value)/dy = A^T g_index
    gx = a[0, 0] * gi + a[1, 0] * gj + a[2, 0] * gk
    gy = a[0, 1] * gi + a[1, 1] * gj + a[2, 1] * gk
    gz = a[0, 2] * gi + a[1, 2] * gj + a[2, 2] * gk
    jac[0] = gx
    jac[1] = gy
    jac[2] = gz
    qx = px - centre[0]
    qy = py - centre[1]
    qz = pz - centre[2]
    for k in range(3):  # d y / d angle_k = dR_k (p - c)
        dx = dr[k, 0, 0] * qx + dr[k, 0, 1] * qy + dr[k, 0, 2] * qz
        dy = dr[k, 1, 0] * qx + dr[k, 1, 1] * qy + dr[k, 1, 2] * qz
        dz = dr[k, 2, 0] * qx + dr[k, 2, 1] * qy + dr[k, 2, 2] * qz
        jac[3 + k] = gx * dx + gy * dy + gz * dz
    return val, True


@nb.njit(parallel=True, cache=True, fastmath=True)
def gn_accumulate(pts, fvals, wts, img, a, m, dr, centre, nchunk):
    """Sums for MSD / NCC value, gradient and Gauss-Newton Hessian (rows: chunks, cols: ``K_GN``)."""
    n = pts.shape[0]
    acc = np.zeros((nchunk, K_GN), dtype=np.float64)
    step = (n + nchunk - 1) // nchunk
    for c in nb.prange(nchunk):
        jac = np.empty(6, dtype=np.float64)
        row = acc[c]
        for i in range(c * step, min(n, (c + 1) * step)):
            w = wts[i]
            row[GN_WALL] += w
            mv, ok = _sample_jacobian(pts, i, img, a, m, dr, centre, jac)
            if not ok or w <= 0.0:
                continue
            f = fvals[i]
            row[GN_COUNT] += 1.0
            row[GN_SW] += w
            row[GN_SF] += w * f
            row[GN_SM] += w * mv
            row[GN_SFF] += w * f * f
            row[GN_SMM] += w * mv * mv
            row[GN_SFM] += w * f * mv
            for p in range(6):
                wj = w * jac[p]
                row[GN_SJ + p] += wj
                row[GN_SFJ + p] += wj * f
                row[GN_SMJ + p] += wj * mv
                for q in range(p, 6):
                    row[GN_SJJ + 6 * p + q] += wj * jac[q]
    return acc


@nb.njit(inline="always")
def _bspline3(u):
    """Cubic B-spline value and derivative at u."""
    au = abs(u)
    if au < 1.0:
        return 2.0 / 3.0 - au * au + 0.5 * au * au * au, -2.0 * u + 1.5 * u * au
    if au < 2.0:
        t = 2.0 - au
        d = -0.5 * t * t
        return t * t * t / 6.0, d if u > 0 else -d
    return 0.0, 0.0


@nb.njit(parallel=True, cache=True, fastmath=True)
def mi_accumulate(pts, fbins, wts, img, a, m, dr, centre, mmin, inv_dm, nfb, nmb, nchunk):
    """Mattes joint histogram (box window on fixed bins, cubic B-spline Parzen on moving)
    and its derivative w.r.t. the 6 parameters.

    Returns (hist[nchunk, nfb, nmb], dhist[nchunk, nfb, nmb, 6], wsum[nchunk, 2]) where
    wsum[:, 0] is the valid weight and wsum[:, 1] the weight of all samples.
    Moving intensities map to continuous bin ``u = (v - mmin) * inv_dm + 2`` (clipped to
    [2, nmb - 3]) so the 4-bin Parzen support never leaves the histogram.
    """
    n = pts.shape[0]
    hist = np.zeros((nchunk, nfb, nmb), dtype=np.float64)
    dh = np.zeros((nchunk, nfb, nmb, 6), dtype=np.float64)
    wsum = np.zeros((nchunk, 2), dtype=np.float64)
    step = (n + nchunk - 1) // nchunk
    umax = nmb - 3.0
    for c in nb.prange(nchunk):
        jac = np.empty(6, dtype=np.float64)
        for i in range(c * step, min(n, (c + 1) * step)):
            w = wts[i]
            wsum[c, 1] += w
            mv, ok = _sample_jacobian(pts, i, img, a, m, dr, centre, jac)
            if not ok or w <= 0.0:
                continue
            wsum[c, 0] += w
            u = (mv - mmin) * inv_dm + 2.0
            clipped = False
            if u < 2.0:
                u = 2.0
                clipped = True
            elif u > umax:
                u = umax
                clipped = True
            fb = fbins[i]
            b0 = int(u) - 1
            for b in range(b0, b0 + 4):
                val, der = _bspline3(u - b)
                hist[c, fb, b] += w * val
                if not clipped:
                    s = w * der * inv_dm
                    for p in range(6):
                        dh[c, fb, b, p] += s * jac[p]
    return hist, dh, wsum


@nb.njit(parallel=True, cache=True, fastmath=True)
def sample_points(img, a, pts, fill, out):
    """out[i] = trilinear img at world points pts (index map ``a``, 3x4); ``fill`` outside."""
    for i in nb.prange(pts.shape[0]):
        px = pts[i, 0]
        py = pts[i, 1]
        pz = pts[i, 2]
        ix = a[0, 0] * px + a[0, 1] * py + a[0, 2] * pz + a[0, 3]
        iy = a[1, 0] * px + a[1, 1] * py + a[1, 2] * pz + a[1, 3]
        iz = a[2, 0] * px + a[2, 1] * py + a[2, 2] * pz + a[2, 3]
        v, gx, gy, gz, ok = _trilinear_grad(img, ix, iy, iz)
        out[i] = v if ok else fill


@nb.njit(parallel=True, cache=True, fastmath=True)
def _pass_x(src, f):
    """Binomial filter + optional decimation along the last axis (see `downsample`)."""
    nz, ny, nx = src.shape
    ox = nx // 2 if f == 2 else nx
    out = np.empty((nz, ny, ox), dtype=np.float32)
    for k in nb.prange(nz):
        for j in range(ny):
            for i in range(ox):
                if f == 2:
                    c = 2 * i
                    a0 = src[k, j, max(c - 1, 0)]
                    a1 = src[k, j, c]
                    a2 = src[k, j, min(c + 1, nx - 1)]
                    a3 = src[k, j, min(c + 2, nx - 1)]
                    out[k, j, i] = (a0 + 3.0 * a1 + 3.0 * a2 + a3) * 0.125
                else:
                    out[k, j, i] = (src[k, j, max(i - 1, 0)] + 2.0 * src[k, j, i] + src[k, j, min(i + 1, nx - 1)]) * 0.25
    return out


@nb.njit(parallel=True, cache=True, fastmath=True)
def _pass_y(src, f):
    nz, ny, nx = src.shape
    oy = ny // 2 if f == 2 else ny
    out = np.empty((nz, oy, nx), dtype=np.float32)
    for k in nb.prange(nz):
        for j in range(oy):
            if f == 2:
                c = 2 * j
                j0, j1, j2, j3 = max(c - 1, 0), c, min(c + 1, ny - 1), min(c + 2, ny - 1)
                for i in range(nx):
                    out[k, j, i] = (src[k, j0, i] + 3.0 * src[k, j1, i] + 3.0 * src[k, j2, i] + src[k, j3, i]) * 0.125
            else:
                j0, j2 = max(j - 1, 0), min(j + 1, ny - 1)
                for i in range(nx):
                    out[k, j, i] = (src[k, j0, i] + 2.0 * src[k, j, i] + src[k, j2, i]) * 0.25
    return out


@nb.njit(parallel=True, cache=True, fastmath=True)
def _pass_z(src, f):
    nz, ny, nx = src.shape
    oz = nz // 2 if f == 2 else nz
    out = np.empty((oz, ny, nx), dtype=np.float32)
    for k in nb.prange(oz):
        if f == 2:
            c = 2 * k
            k0, k1, k2, k3 = max(c - 1, 0), c, min(c + 1, nz - 1), min(c + 2, nz - 1)
            for j in range(ny):
                for i in range(nx):
                    out[k, j, i] = (src[k0, j, i] + 3.0 * src[k1, j, i] + 3.0 * src[k2, j, i] + src[k3, j, i]) * 0.125
        else:
            k0, k2 = max(k - 1, 0), min(k + 1, nz - 1)
            for j in range(ny):
                for i in range(nx):
                    out[k, j, i] = (src[k0, j, i] + 2.0 * src[k, j, i] + src[k2, j, i]) * 0.25
    return out


def downsample(src: np.ndarray, fz: int, fy: int, fx: int) -> np.ndarray:
    """Binomial smoothing + decimation; factor f per axis is 1 (smooth [1,2,1]/4) or 2.

    For factor 2 the output sample i sits at input index 2 i + 0.5 and averages
    inputs 2i-1..2i+2 with weights [1, 3, 3, 1] / 8 (borders replicated).
    Separable: one numba pass per axis, the decimating ones first.
    """
    out = _pass_x(src, fx)
    out = _pass_y(out, fy)
    return _pass_z(out, fz)
