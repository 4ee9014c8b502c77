"""numba kernels for imaging: Joseph ray casting and FDK voxel-driven backprojection.

Each kernel has a small numpy reference below it (``*_reference``) that the
tests compare against; the references loop in Python and are for tiny inputs.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

MODE_INTEGRAL = 0  # line integral (sum of samples x step length, mm)
MODE_MAX = 1  # maximum intensity along the ray
MODE_MEAN = 2  # average intensity along the ray (mean of samples inside the volume)


@njit(cache=True, inline="always")
def _slice_range(a0, da, n):
    """Range of the slice parameter s (floats) where a0 + s*da stays in [0, n-1]."""
    if da > 1e-12:
        return (0.0 - a0) / da, (n - 1.0 - a0) / da
    if da < -1e-12:
        return (n - 1.0 - a0) / da, (0.0 - a0) / da
    if a0 >= 0.0 and a0 <= n - 1.0:
        return -1e30, 1e30
    return 1.0, -1.0


@njit(cache=True, inline="always")
def _bilinear_strided(vol, m, s, a, b):
    """Fallback sample straight from ``vol[z, y, x]``: slice s of axis m, (a, b) the other axes in order."""
    nz, ny, nx = vol.shape
    if m == 0:  # a = y, b = z
        ia = min(int(a), ny - 2)
        ib = min(int(b), nz - 2)
        v00, v01, v10, v11 = vol[ib, ia, s], vol[ib, ia + 1, s], vol[ib + 1, ia, s], vol[ib + 1, ia + 1, s]
    elif m == 1:  # a = x, b = z
        ia = min(int(a), nx - 2)
        ib = min(int(b), nz - 2)
        v00, v01, v10, v11 = vol[ib, s, ia], vol[ib, s, ia + 1], vol[ib + 1, s, ia], vol[ib + 1, s, ia + 1]
    else:  # a = x, b = y
        ia = min(int(a), nx - 2)
        ib = min(int(b), ny - 2)
        v00, v01, v10, v11 = vol[s, ib, ia], vol[s, ib, ia + 1], vol[s, ib + 1, ia], vol[s, ib + 1, ia + 1]
    fa = a - ia
    fb = b - ib
    lo = v00 + fa * (v01 - v00)
    hi = v10 + fa * (v11 - v10)
    return lo + fb * (hi - lo)


@njit(cache=True, fastmath=True)
def _accumulate_slices(arr, strided, m, vz, ms, klo, khi, s0s, a0s, b0s, das, dbs, mode, acc, vmax, cnt):
    """Add bilinear samples of every ray whose dominant axis is ``m``, slice by slice.

    Slice-major order: at slice k all rays of the tile read neighbouring
    memory (a detector row maps to a row segment of the slice), which is what
    makes ray casting cache- and TLB-friendly. ``arr`` is the [s, b, a] layout
    for axis m; when ``strided`` it is unused and ``vz`` is read directly.
    """
    nu = ms.shape[0]
    k0 = 1 << 30
    k1 = -1
    for i in range(nu):
        if ms[i] == m and klo[i] <= khi[i]:
            k0 = min(k0, klo[i])
            k1 = max(k1, khi[i])
    na = arr.shape[2]
    nb = arr.shape[1]
    flat = arr.ravel()
    # unsigned flat indices: numba then skips its negative-index wraparound checks
    u1 = np.uint64(1)
    row = np.uint64(na)
    for k in range(k0, k1 + 1):
        base = np.uint64(k * na * nb)
        for i in range(nu):
            if ms[i] != m or k < klo[i] or k > khi[i]:
                continue
            t = k - s0s[i]
            a = a0s[i] + t * das[i]
            b = b0s[i] + t * dbs[i]
            if a < 0.0:
                a = 0.0
            if b < 0.0:
                b = 0.0
            if strided:
                val = _bilinear_strided(vz, m, k, a, b)
            else:
                ia = int(a)
                ib = int(b)
                if ia > na - 2:
                    ia = na - 2
                if ib > nb - 2:
                    ib = nb - 2
                fa = a - ia
                fb = b - ib
                idx = base + np.uint64(ib) * row + np.uint64(ia)
                v00 = flat[idx]
                v01 = flat[idx + u1]
                v10 = flat[idx + row]
                v11 = flat[idx + row + u1]
                lo = v00 + fa * (v01 - v00)
                hi = v10 + fa * (v11 - v10)
                val = lo + fb * (hi - lo)
            if mode == 1:
                if val > vmax[i]:
                    vmax[i] = val
            else:
                acc[i] += val
            cnt[i] += 1


@njit(parallel=True, fastmath=True, cache=True)
def cast_rays(vx, vy, vz, src, det0, du, dv, nu, nv, lin, scale, offset, mode, out):
    """Joseph ray casting through a volume for a batch of flat-panel projections.

    The volume comes in three layouts so that every ray reads contiguous
    memory within a slice: ``vz[z, y, x]`` (the Volume's own array),
    ``vy[y, z, x]`` and ``vx[x, z, y]`` (only the layouts whose axis dominates
    some ray need to be real; the others may be 2x2x2 dummies, read through a
    slower strided path if a ray needs them after all).
    All positions are continuous (x, y, z) voxel indices: ``src`` (n, 3) source
    points, ``det0`` (n, 3) pixel (0, 0) centres, ``du``/``dv`` (n, 3) one-pixel
    steps. ``lin`` (3x3) maps index vectors to mm (step lengths). Each sample
    value is ``scale * v + offset`` (e.g. HU -> mu). Writes ``out[n, nv, nu]``:
    the line integral (``mode`` 0), maximum (1) or mean (2) along the ray.
    Samples lie on the volume's slices along the ray's dominant axis and are
    bilinear within the slice; samples outside the voxel-centre box are skipped.
    One detector row is one parallel task, cast slice by slice.
    """
    n = src.shape[0]
    dims = np.array([vz.shape[2], vz.shape[1], vz.shape[0]], dtype=np.float64)
    nx = vz.shape[2]
    ny = vz.shape[1]
    nz = vz.shape[0]
    x_ok = vx.shape[0] == nx and vx.shape[1] == nz and vx.shape[2] == ny
    y_ok = vy.shape[0] == ny and vy.shape[1] == nz and vy.shape[2] == nx
    for r in prange(n * nv):
        p = r // nv
        iv = r % nv
        sx = src[p, 0]
        sy = src[p, 1]
        sz = src[p, 2]
        ms = np.empty(nu, np.int64)
        klo = np.empty(nu, np.int64)
        khi = np.empty(nu, np.int64)
        s0s = np.empty(nu)
        a0s = np.empty(nu)
        b0s = np.empty(nu)
        das = np.empty(nu)
        dbs = np.empty(nu)
        steps = np.empty(nu)
        acc = np.zeros(nu)
        vmax = np.full(nu, -1e30)
        cnt = np.zeros(nu, np.int64)
        for iu in range(nu):
            px = det0[p, 0] + iu * du[p, 0] + iv * dv[p, 0]
            py = det0[p, 1] + iu * du[p, 1] + iv * dv[p, 1]
            pz = det0[p, 2] + iu * du[p, 2] + iv * dv[p, 2]
            dx = px - sx
            dy = py - sy
            dz = pz - sz
            ax = abs(dx)
            ay = abs(dy)
            az = abs(dz)
            if ax >= ay and ax >= az:
                m = 0
                dm = dx
                s0 = sx
                pm = px
                a0 = sy
                b0 = sz
                da = dy / dx
                db = dz / dx
                na = dims[1]
                nb = dims[2]
            elif ay >= az:
                m = 1
                dm = dy
                s0 = sy
                pm = py
                a0 = sx
                b0 = sz
                da = dx / dy
                db = dz / dy
                na = dims[0]
                nb = dims[2]
            else:
                m = 2
                dm = dz
                s0 = sz
                pm = pz
                a0 = sx
                b0 = sy
                da = dx / dz
                db = dy / dz
                na = dims[0]
                nb = dims[1]
            nm = dims[m]
            # slice parameter t = (slice - s0); a = a0 + t*da, b = b0 + t*db
            lo = max(0.0, min(s0, pm))
            hi = min(nm - 1.0, max(s0, pm))
            t_lo, t_hi = _slice_range(a0, da, na)
            lo = max(lo, s0 + t_lo)
            hi = min(hi, s0 + t_hi)
            t_lo, t_hi = _slice_range(b0, db, nb)
            lo = max(lo, s0 + t_lo)
            hi = min(hi, s0 + t_hi)
            k_lo = int(math.ceil(lo - 1e-9))
            k_hi = int(math.floor(hi + 1e-9))
            if k_lo < 0:
                k_lo = 0
            if k_hi > nm - 1:
                k_hi = int(nm - 1)
            lx = lin[0, 0] * dx + lin[0, 1] * dy + lin[0, 2] * dz
            ly = lin[1, 0] * dx + lin[1, 1] * dy + lin[1, 2] * dz
            lz = lin[2, 0] * dx + lin[2, 1] * dy + lin[2, 2] * dz
            ms[iu] = m
            klo[iu] = k_lo
            khi[iu] = k_hi
            s0s[iu] = s0
            a0s[iu] = a0
            b0s[iu] = b0
            das[iu] = da
            dbs[iu] = db
            steps[iu] = math.sqrt(lx * lx + ly * ly + lz * lz) / abs(dm)
        _accumulate_slices(vx, not x_ok, 0, vz, ms, klo, khi, s0s, a0s, b0s, das, dbs, mode, acc, vmax, cnt)
        _accumulate_slices(vy, not y_ok, 1, vz, ms, klo, khi, s0s, a0s, b0s, das, dbs, mode, acc, vmax, cnt)
        _accumulate_slices(vz, False, 2, vz, ms, klo, khi, s0s, a0s, b0s, das, dbs, mode, acc, vmax, cnt)
        for iu in range(nu):
            c = cnt[iu]
            if mode == 0:
                out[p, iv, iu] = steps[iu] * (scale * acc[iu] + offset * c)
            elif mode == 1:
                out[p, iv, iu] = scale * vmax[iu] + offset if c > 0 else 0.0
            else:
                out[p, iv, iu] = (scale * acc[iu] / c + offset) if c > 0 else 0.0


@njit(parallel=True, fastmath=True, cache=True)
def cast_rays_siddon(vol, src, det0, du, dv, nu, nv, spacing, scale, offset, box, out):
    """Exact line integrals through piecewise-constant voxels (Siddon / Jacobs incremental walk).

    Same arguments as `cast_rays` (index coordinates; ``vol[z, y, x]``), but
    ``spacing`` (3,) gives the voxel size (mm) along x, y, z: only axis-aligned
    directions are supported here. Voxel ``[k, j, i]`` covers index
    coordinates ``i +/- 0.5`` etc.; the sum of value x intersection length
    (mm) is ``scale * sum + offset * length``. Rays are clipped to ``box``
    (i0, i1, j0, j1, k0, k1): the voxels outside it must sample to zero
    (empty-space skipping; `nonzero_box` finds it).
    """
    n = src.shape[0]
    nx = vol.shape[2]
    ny = vol.shape[1]
    nz = vol.shape[0]
    flat = vol.ravel()
    for r in prange(n * nv):
        p = r // nv
        iv = r % nv
        sx = src[p, 0]
        sy = src[p, 1]
        sz = src[p, 2]
        for iu in range(nu):
            dx = det0[p, 0] + iu * du[p, 0] + iv * dv[p, 0] - sx
            dy = det0[p, 1] + iu * du[p, 1] + iv * dv[p, 1] - sy
            dz = det0[p, 2] + iu * du[p, 2] + iv * dv[p, 2] - sz
            length = math.sqrt((dx * spacing[0]) ** 2 + (dy * spacing[1]) ** 2 + (dz * spacing[2]) ** 2)
            # parametric entry/exit (alpha in [0, 1] from source to pixel) of the box [-0.5, n - 0.5]
            a0 = 0.0
            a1 = 1.0
            ok = True
            for ax in range(3):
                if ax == 0:
                    s_, d_, lo_, hi_ = sx, dx, box[0], box[1]
                elif ax == 1:
                    s_, d_, lo_, hi_ = sy, dy, box[2], box[3]
                else:
                    s_, d_, lo_, hi_ = sz, dz, box[4], box[5]
                if abs(d_) < 1e-12:
                    if s_ < lo_ - 0.5 or s_ > hi_ + 0.5:
                        ok = False
                    continue
                t1 = (lo_ - 0.5 - s_) / d_
                t2 = (hi_ + 0.5 - s_) / d_
                if t1 > t2:
                    t1, t2 = t2, t1
                a0 = max(a0, t1)
                a1 = min(a1, t2)
            if not ok or a1 <= a0:
                out[p, iv, iu] = 0.0
                continue
            if box[0] > box[1]:  # empty volume
                out[p, iv, iu] = 0.0
                continue
            # voxel at the entry point (nudged inside), per-axis next crossings and steps
            am = a0 + 1e-9 * (a1 - a0)
            i = min(max(int(math.floor(sx + am * dx + 0.5)), 0), nx - 1)
            j = min(max(int(math.floor(sy + am * dy + 0.5)), 0), ny - 1)
            k = min(max(int(math.floor(sz + am * dz + 0.5)), 0), nz - 1)
            if dx > 0:
                stx, ax_next, dax = 1, (i + 0.5 - sx) / dx, 1.0 / dx
            elif dx < 0:
                stx, ax_next, dax = -1, (i - 0.5 - sx) / dx, -1.0 / dx
            else:
                stx, ax_next, dax = 0, 2.0, 0.0
            if dy > 0:
                sty, ay_next, day = 1, (j + 0.5 - sy) / dy, 1.0 / dy
            elif dy < 0:
                sty, ay_next, day = -1, (j - 0.5 - sy) / dy, -1.0 / dy
            else:
                sty, ay_next, day = 0, 2.0, 0.0
            if dz > 0:
                stz, az_next, daz = 1, (k + 0.5 - sz) / dz, 1.0 / dz
            elif dz < 0:
                stz, az_next, daz = -1, (k - 0.5 - sz) / dz, -1.0 / dz
            else:
                stz, az_next, daz = 0, 2.0, 0.0
            # voxel at the exit point: the walk makes exactly |di| + |dj| + |dk| crossings
            ae = a1 - 1e-9 * (a1 - a0)
            ie = min(max(int(math.floor(sx + ae * dx + 0.5)), 0), nx - 1)
            je = min(max(int(math.floor(sy + ae * dy + 0.5)), 0), ny - 1)
            ke = min(max(int(math.floor(sz + ae * dz + 0.5)), 0), nz - 1)
            n_cross = abs(ie - i) + abs(je - j) + abs(ke - k)
            idx = (k * ny + j) * nx + i
            sdx = stx
            sdy = sty * nx
            sdz = stz * nx * ny
            acc = 0.0
            a_cur = a0
            for _ in range(n_cross):
                v = flat[idx]
                if ax_next <= ay_next and ax_next <= az_next:
                    acc += v * (ax_next - a_cur)
                    a_cur = ax_next
                    ax_next += dax
                    idx += sdx
                elif ay_next <= az_next:
                    acc += v * (ay_next - a_cur)
                    a_cur = ay_next
                    ay_next += day
                    idx += sdy
                else:
                    acc += v * (az_next - a_cur)
                    a_cur = az_next
                    az_next += daz
                    idx += sdz
            acc += flat[idx] * (a1 - a_cur)
            out[p, iv, iu] = length * (scale * acc + offset * (a1 - a0))


@njit(parallel=True, cache=True)
def nonzero_box(vol, scale, offset):
    """(i0, i1, j0, j1, k0, k1) index box of voxels whose ``scale * v + offset`` is not 0 (i0 > i1 if none)."""
    nz, ny, nx = vol.shape
    kmin = np.full(nz, nx + ny + nz, np.int64)
    res = np.empty((nz, 6), np.int64)
    for k in prange(nz):
        i0, i1, j0, j1 = nx, -1, ny, -1
        for j in range(ny):
            for i in range(nx):
                if scale * vol[k, j, i] + offset != 0.0:
                    if i < i0:
                        i0 = i
                    if i > i1:
                        i1 = i
                    if j < j0:
                        j0 = j
                    if j > j1:
                        j1 = j
        res[k, 0] = i0
        res[k, 1] = i1
        res[k, 2] = j0
        res[k, 3] = j1
        kmin[k] = 1 if i1 >= 0 else 0
    box = np.array([nx, -1, ny, -1, nz, -1], np.int64)
    for k in range(nz):
        if kmin[k] == 1:
            box[0] = min(box[0], res[k, 0])
            box[1] = max(box[1], res[k, 1])
            box[2] = min(box[2], res[k, 2])
            box[3] = max(box[3], res[k, 3])
            box[4] = min(box[4], k)
            box[5] = max(box[5], k)
    return box


def cast_rays_reference(vol, src, det0, du, dv, nu, nv, lin, step_mm: float = 0.1) -> np.ndarray:
    """Numpy reference: line integrals by fine uniform sampling (``step_mm``) with trilinear interpolation.

    Independent of the Joseph scheme, so it checks geometry and scaling, not
    the discretisation. Python loop over projections; keep detectors tiny.
    """
    from scipy.ndimage import map_coordinates

    n = src.shape[0]
    out = np.zeros((n, nv, nu))
    iu, iv = np.meshgrid(np.arange(nu), np.arange(nv))
    upper = np.array(vol.shape[::-1], float) - 1.0
    for p in range(n):
        pix = det0[p] + iu[..., None] * du[p] + iv[..., None] * dv[p]  # (nv, nu, 3)
        d = pix - src[p]
        length_mm = np.linalg.norm(d @ lin.T, axis=-1)
        n_samples = int(np.ceil(length_mm.max() / step_mm))
        ts = (np.arange(n_samples) + 0.5) / n_samples
        pts = src[p] + ts[:, None, None, None] * d[None]  # (s, nv, nu, 3) as (x, y, z) index
        inside = np.all((pts >= 0) & (pts <= upper), axis=-1)
        coords = np.stack([pts[..., 2], pts[..., 1], pts[..., 0]])
        vals = map_coordinates(vol.astype(float), coords.reshape(3, -1), order=1, mode="nearest")
        vals = vals.reshape(pts.shape[:-1]) * inside
        out[p] = vals.sum(axis=0) * length_mm / n_samples
    return out


@njit(parallel=True, fastmath=True, cache=True)
def backproject_columns(
    qf, geo, origin, va, vb, vw_y, n_a, n_b, n_w, out
):
    """FDK voxel-driven backprojection, columns parallel to the rotation axis (IEC Y).

    ``qf[p, iu, iv]``: filtered, weighted projections, u-major so that the walk
    along a column reads contiguous memory. ``geo[p]`` = (cos t, sin t, SAD, SID, su, sv, du,
    dv, 1/pu, 1/pv, cu, cv) per projection. Output voxel ``out[a, b, w]`` sits at
    IEC ``origin + a*va + b*vb + w*(0, vw_y, 0)`` with ``va``, ``vb`` in the XZ
    plane. Per (column, projection) u, the magnification and the distance weight
    are computed once; the walk along w is a 1D linear run on the detector.
    Adds ``(SAD / (SAD - z'))^2 * Q(u, v)`` (bilinear) into ``out``.
    """
    n_p = qf.shape[0]
    nu = qf.shape[1]
    nv = qf.shape[2]
    for a in prange(n_a):
        for p in range(n_p):
            c = geo[p, 0]
            s = geo[p, 1]
            sad = geo[p, 2]
            sid = geo[p, 3]
            su = geo[p, 4]
            sv = geo[p, 5]
            du = geo[p, 6]
            dv = geo[p, 7]
            ipu = geo[p, 8]
            ipv = geo[p, 9]
            cu = geo[p, 10]
            cv = geo[p, 11]
            qx0 = origin[0] + a * va[0]
            qz0 = origin[2] + a * va[2]
            for b in range(n_b):
                qx = qx0 + b * vb[0]
                qz = qz0 + b * vb[2]
                xr = qx * c - qz * s
                zr = qx * s + qz * c
                mag = sid / (sad - zr)
                fu_idx = ((su + (xr - su) * mag) - du) * ipu + cu
                if fu_idx < 0.0 or fu_idx > nu - 1.0:
                    continue
                iu = int(fu_idx)
                if iu > nu - 2:
                    iu = nu - 2
                fu = fu_idx - iu
                w_dist = (mag * sad / sid) ** 2
                g0 = np.float32(w_dist * (1.0 - fu))
                g1 = np.float32(w_dist * fu)
                # v index along the column: v(w) = v0 + w * dv_w
                v0 = ((sv + (origin[1] - sv) * mag) - dv) * ipv + cv
                dvw = vw_y * mag * ipv
                if dvw > 0:
                    w_lo = math.ceil((0.0 - v0) / dvw)
                    w_hi = math.floor((nv - 1.0 - v0) / dvw)
                else:
                    w_lo = math.ceil((nv - 1.0 - v0) / dvw)
                    w_hi = math.floor((0.0 - v0) / dvw)
                if w_lo < 0:
                    w_lo = 0
                if w_hi > n_w - 1:
                    w_hi = n_w - 1
                for w in range(w_lo, w_hi + 1):
                    fv_idx = v0 + w * dvw
                    iv = int(fv_idx)
                    if iv > nv - 2:
                        iv = nv - 2
                    if iv < 0:
                        iv = 0
                    fv = np.float32(fv_idx - iv)
                    lo = g0 * qf[p, iu, iv] + g1 * qf[p, iu + 1, iv]
                    hi = g0 * qf[p, iu, iv + 1] + g1 * qf[p, iu + 1, iv + 1]
                    out[a, b, w] += lo + fv * (hi - lo)


@njit(parallel=True, fastmath=True, cache=True)
def build_column_table(projs, m_nodes, y0, vw_y, svs, dvs, ipv, cv, n_w, table):
    """Resample filtered projections ``projs[b, iv, iu]`` along v for a set of magnifications.

    ``table[b, k, iu, w]`` = ``projs[b, v_w(m_k), iu]`` (linear in v, 0 off the
    detector) with ``v_w(m) = ((sv + (y0 + w vw_y - sv) m) - dv) ipv + cv``
    (``sv``/``dv`` per projection b): the detector row that voxel w of a column
    at magnification m projects to. Because v_w is linear in m, a column's
    samples are then a bilinear blend of four table rows (two u columns x two
    magnification nodes), contiguous in w. Rows are blended across u
    (contiguous, vectorised) in blocks of 16 w and transposed into the table
    through a small L1-resident buffer.
    """
    n_b = projs.shape[0]
    n_k = m_nodes.size
    nv = projs.shape[1]
    nu = projs.shape[2]
    blk = 16
    for task in prange(n_b * n_k):
        bi = task // n_k
        k = task % n_k
        m = m_nodes[k]
        sv = svs[bi]
        v0 = ((sv + (y0 - sv) * m) - dvs[bi]) * ipv + cv
        dvw = vw_y * m * ipv
        buf = np.empty((blk, nu), np.float32)
        for w0 in range(0, n_w, blk):
            w1 = min(n_w, w0 + blk)
            for w in range(w0, w1):
                v = v0 + w * dvw
                if v >= 0.0 and v <= nv - 1.0:
                    j = int(v)
                    if j > nv - 2:
                        j = nv - 2
                    f = np.float32(v - j)
                    for iu in range(nu):
                        r0 = projs[bi, j, iu]
                        buf[w - w0, iu] = r0 + f * (projs[bi, j + 1, iu] - r0)
                else:
                    for iu in range(nu):
                        buf[w - w0, iu] = np.float32(0.0)
            for iu in range(nu):
                for w in range(w0, w1):
                    table[bi, k, iu, w] = buf[w - w0, iu]


@njit(parallel=True, fastmath=True, cache=True)
def backproject_table(table, m0, inv_dm, pgs, origin, va, vb, n_a, n_b, w0, rmax2, out):
    """Add a batch of projections to ``out[a, b, w0:w0 + n]`` (IEC ``origin + a va + b vb + w (0, vw_y, 0)``).

    ``table[bi]`` holds projection bi resampled for the n slices from w0 on
    (see `build_column_table`); ``pgs[bi]`` = (cos t, sin t, SAD, SID, su, du,
    1/pu, cu). Per column and projection: u, the magnification and the FDK
    distance weight (SAD / (SAD - z'))^2 once, then a vectorised walk along w
    over four rows of the table. A slab stays in cache for the whole batch.
    Columns farther than sqrt(rmax2) mm from the rotation axis are skipped.
    """
    n_batch = table.shape[0]
    n_k = table.shape[1] - 1
    nu = table.shape[2]
    n_w = table.shape[3]
    for a in prange(n_a):
        qx0 = origin[0] + a * va[0]
        qz0 = origin[2] + a * va[2]
        for bi in range(n_batch):
            c = pgs[bi, 0]
            s = pgs[bi, 1]
            sad = pgs[bi, 2]
            sid = pgs[bi, 3]
            su = pgs[bi, 4]
            du = pgs[bi, 5]
            ipu = pgs[bi, 6]
            cu = pgs[bi, 7]
            for b in range(n_b):
                qx = qx0 + b * vb[0]
                qz = qz0 + b * vb[2]
                if qx * qx + qz * qz > rmax2:
                    continue
                xr = qx * c - qz * s
                zr = qx * s + qz * c
                mag = sid / (sad - zr)
                fu_idx = ((su + (xr - su) * mag) - du) * ipu + cu
                if fu_idx < 0.0 or fu_idx > nu - 1.0:
                    continue
                iu = int(fu_idx)
                if iu > nu - 2:
                    iu = nu - 2
                fu = fu_idx - iu
                t = (mag - m0) * inv_dm
                k = int(t)
                if k < 0:
                    k = 0
                if k > n_k - 1:
                    k = n_k - 1
                ft = t - k
                wd = (mag * sad / sid) ** 2
                c00 = np.float32(wd * (1.0 - fu) * (1.0 - ft))
                c01 = np.float32(wd * fu * (1.0 - ft))
                c10 = np.float32(wd * (1.0 - fu) * ft)
                c11 = np.float32(wd * fu * ft)
                # direct indexing: row views would cost atomic refcount updates per column
                for w in range(n_w):
                    out[a, b, w0 + w] += (
                        c00 * table[bi, k, iu, w] + c01 * table[bi, k, iu + 1, w]
                        + c10 * table[bi, k + 1, iu, w] + c11 * table[bi, k + 1, iu + 1, w]
                    )


def backproject_reference(qf, geometry, points_iec) -> np.ndarray:
    """Numpy reference of the FDK backprojection at arbitrary IEC points (m, 3)."""
    pts = np.asarray(points_iec, float)
    out = np.zeros(len(pts))
    pix = geometry.project_points(pts)  # (n, m, 2)
    eu, ev, es = geometry.rotated_axes()
    nu, nv = geometry.detector_shape
    for p in range(geometry.n_projections):
        zr = pts @ es[p]
        w = (geometry.sad_mm / (geometry.sad_mm - zr)) ** 2
        u, v = pix[p, :, 0], pix[p, :, 1]
        ok = (u >= 0) & (u <= nu - 1) & (v >= 0) & (v <= nv - 1)
        iu = np.clip(np.floor(u).astype(int), 0, nu - 2)
        iv = np.clip(np.floor(v).astype(int), 0, nv - 2)
        fu, fv = u - iu, v - iv
        q = qf[p]  # [iv, iu]
        val = (
            q[iv, iu] * (1 - fu) * (1 - fv)
            + q[iv, iu + 1] * fu * (1 - fv)
            + q[iv + 1, iu] * (1 - fu) * fv
            + q[iv + 1, iu + 1] * fu * fv
        )
        out += np.where(ok, w * val, 0.0)
    return out



@njit(parallel=True, fastmath=True, cache=True, boundscheck=False)
def backproject_tiles(qf, geo, origin, va, vb, vw_y, rmax2, tile_a, tile_b, t_lo, t_hi, out):
    """Cache-blocked FDK voxel-driven backprojection (bilinear on the detector, float32).

    Same result as `backproject_columns` (``qf[p, iu, iv]`` u-major, ``geo[p]``
    = (cos t, sin t, SAD, SID, su, sv, du, dv, 1/pu, 1/pv, cu, cv), ``out[a, b,
    w]`` at IEC ``origin + a va + b vb + w (0, vw_y, 0)``), with two changes
    that make it fast on a CPU:

    * Loop order: the output is cut into tiles of ``tile_a x tile_b`` whole
      columns (small enough for the L2 cache) and each tile takes all
      projections before the next, so the volume crosses main memory once
      instead of once per projection.
    * Gather-free walk: per (column, projection) the two detector columns
      around u are blended once into a buffer (vectorised). Along the column
      the detector row v(w) = v0 + w dv is affine in w (circular orbit), so
      over a run of n voxels with (n - 1) |dv - 1| < 2, floor(v) - w takes
      at most three consecutive values (after a rounding margin); the run
      then reads four shifted contiguous slices of the buffer and selects per
      voxel: no gathers, AVX2 vectorised. Runs are multiples of 8 voxels, as
      long as the drift allows; columns with |dv - 1| > 2/7 (voxels far from
      the detector pixel size at the isocentre) and the last < 8 voxels of a
      column take a scalar path with the same result.

    Only tiles ``t_lo <= t < t_hi`` are done (tile t covers a from
    ``(t // ceil(n_b / tile_b)) * tile_a`` and b from ``(t % ceil(n_b / tile_b)) *
    tile_b``; `tile_count` gives the total), so a caller can report progress.
    Columns farther than sqrt(rmax2) mm from the axis are skipped.
    """
    n_p = qf.shape[0]
    nu = qf.shape[1]
    nv = qf.shape[2]
    n_a = out.shape[0]
    n_b = out.shape[1]
    n_w = out.shape[2]
    nta = (n_a + tile_a - 1) // tile_a
    ntb = (n_b + tile_b - 1) // tile_b
    wf = np.arange(n_w + 8).astype(np.float32)
    qflat = qf.reshape(qf.size)
    oflat = out.reshape(out.size)
    u1 = np.uint64(1)
    u2 = np.uint64(2)
    u3 = np.uint64(3)
    blk = 8
    n_rb = 2 * n_w + 16
    t_hi = min(t_hi, nta * ntb)
    for t in prange(t_lo, t_hi):
        a_lo = (t // ntb) * tile_a
        b_lo = (t % ntb) * tile_b
        a_hi = min(n_a, a_lo + tile_a)
        b_hi = min(n_b, b_lo + tile_b)
        rb = np.zeros(n_rb, np.float32)
        for p in range(n_p):
            c = geo[p, 0]
            s = geo[p, 1]
            sad = geo[p, 2]
            sid = geo[p, 3]
            su = geo[p, 4]
            sv = geo[p, 5]
            du = geo[p, 6]
            dv = geo[p, 7]
            ipu = geo[p, 8]
            ipv = geo[p, 9]
            cu = geo[p, 10]
            cv = geo[p, 11]
            for a in range(a_lo, a_hi):
                qx0 = origin[0] + a * va[0]
                qz0 = origin[2] + a * va[2]
                for b in range(b_lo, b_hi):
                    qx = qx0 + b * vb[0]
                    qz = qz0 + b * vb[2]
                    if qx * qx + qz * qz > rmax2:
                        continue
                    xr = qx * c - qz * s
                    zr = qx * s + qz * c
                    mag = sid / (sad - zr)
                    fu_idx = ((su + (xr - su) * mag) - du) * ipu + cu
                    if fu_idx < 0.0 or fu_idx > nu - 1.0:
                        continue
                    iu = int(fu_idx)
                    if iu > nu - 2:
                        iu = nu - 2
                    fu = fu_idx - iu
                    wd = (mag * sad / sid) ** 2
                    g0 = np.float32(wd * (1.0 - fu))
                    g1 = np.float32(wd * fu)
                    v0 = ((sv + (origin[1] - sv) * mag) - dv) * ipv + cv
                    dvw = vw_y * mag * ipv
                    if dvw > 0:
                        w_lo = math.ceil((0.0 - v0) / dvw)
                        w_hi = math.floor((nv - 1.0 - v0) / dvw)
                    else:
                        w_lo = math.ceil((nv - 1.0 - v0) / dvw)
                        w_hi = math.floor((0.0 - v0) / dvw)
                    if w_lo < 0:
                        w_lo = 0
                    if w_hi > n_w - 1:
                        w_hi = n_w - 1
                    if w_lo > w_hi:
                        continue
                    v0f = np.float32(v0)
                    dvf = np.float32(dvw)
                    col = np.uint64((a * n_b + b) * n_w)
                    q0 = np.uint64((p * nu + iu) * nv)
                    q1 = q0 + np.uint64(nv)
                    # blocks of `run` voxels (a multiple of 8) over which floor(v) - w drifts by <= 2
                    run = int((1.99 / max(abs(dvw - 1.0), 1e-6) + 1.0) / blk) * blk
                    run = min(run, 4096)
                    n_blk = (w_hi - w_lo + 1) // blk if run >= blk else 0
                    w_tail = w_lo + n_blk * blk
                    if n_blk > 0:
                        # buffer index k holds detector row k + jb (blended over u, 0 off the detector)
                        e_a = int(v0 + w_lo * dvw + 65536.0) - 65536 - w_lo  # floor(v) - w at both ends
                        e_b = int(v0 + (w_tail - 1) * dvw + 65536.0) - 65536 - (w_tail - 1)
                        jb = min(e_a, e_b) - 2
                        k_end = w_tail + max(e_a, e_b) - jb + 6
                        k0 = w_lo
                        k1 = min(k_end, nv - jb)  # rows k + jb <= nv - 1
                        k_in = max(k0, -jb)  # rows k + jb >= 0
                        for k in range(k0, min(k_in, k_end)):
                            rb[k] = 0.0
                        if k1 > k_in:
                            base = np.uint64(k_in + jb)
                            for k in range(np.uint64(0), np.uint64(k1 - k_in)):
                                rb[np.uint64(k_in) + k] = g0 * qflat[q0 + base + k] + g1 * qflat[q1 + base + k]
                        for k in range(max(k1, k_in), k_end):
                            rb[k] = 0.0
                        wb = w_lo
                        while wb + blk <= w_tail:
                            n_run = min(run, w_tail - wb)
                            # lowest floor(v) - w over the block (at its first voxel when v rises faster
                            # than w, else at its last), less a margin for float32 rounding differences
                            wq = wb if dvw >= 1.0 else wb + n_run - 1
                            vq = np.float64(v0f + wf[wq] * dvf)
                            d_b = int(vq - 1e-3 + 65536.0) - 65536 - wq
                            dbf = np.float32(d_b)
                            kk = np.uint64(wb + d_b - jb)
                            ob = col + np.uint64(wb)
                            wbu = np.uint64(wb)
                            for m in range(np.uint64(0), np.uint64(n_run)):
                                v = v0f + wf[wbu + m] * dvf
                                fl = np.floor(v)
                                r = fl - wf[wbu + m] - dbf  # 0, 1 or 2: which shifted run of the buffer holds floor(v)
                                x0 = rb[kk + m]
                                x1 = rb[kk + m + u1]
                                x2 = rb[kk + m + u2]
                                x3 = rb[kk + m + u3]
                                lo = x0 if r < 0.5 else (x1 if r < 1.5 else x2)
                                hi = x1 if r < 0.5 else (x2 if r < 1.5 else x3)
                                oflat[ob + m] += lo + (v - fl) * (hi - lo)
                            wb += n_run
                    for w in range(w_tail, w_hi + 1):
                        v = v0 + w * dvw
                        j = int(v)
                        if j > nv - 2:
                            j = nv - 2
                        if j < 0:
                            j = 0
                        fv = np.float32(v - j)
                        ju = np.uint64(j)
                        lo = g0 * qflat[q0 + ju] + g1 * qflat[q1 + ju]
                        hi = g0 * qflat[q0 + ju + u1] + g1 * qflat[q1 + ju + u1]
                        oflat[col + np.uint64(w)] += lo + fv * (hi - lo)


def tile_count(n_a: int, n_b: int, tile_a: int, tile_b: int) -> int:
    """Number of column tiles `backproject_tiles` cuts an (n_a, n_b) grid of columns into."""
    return -(-n_a // tile_a) * -(-n_b // tile_b)
