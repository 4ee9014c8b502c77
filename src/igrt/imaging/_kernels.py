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
def _ray_samples(arr, k_lo, k_hi, s0, a0, b0, da, db, mode):
    """(sum, max, count) of bilinear samples of ``arr[s, b, a]`` on slices k_lo..k_hi along the ray."""
    acc = 0.0
    vmax = -1e30
    count = 0
    na = arr.shape[2]
    nb = arr.shape[1]
    for k in range(k_lo, k_hi + 1):
        t = k - s0
        a = a0 + t * da
        b = b0 + t * db
        if a < 0.0:
            a = 0.0
        if b < 0.0:
            b = 0.0
        ia = int(a)
        ib = int(b)
        if ia > na - 2:
            ia = na - 2
        if ib > nb - 2:
            ib = nb - 2
        fa = a - ia
        fb = b - ib
        v00 = arr[k, ib, ia]
        v01 = arr[k, ib, ia + 1]
        v10 = arr[k, ib + 1, ia]
        v11 = arr[k, ib + 1, ia + 1]
        lo = v00 + fa * (v01 - v00)
        hi = v10 + fa * (v11 - v10)
        val = lo + fb * (hi - lo)
        if mode == 1:
            if val > vmax:
                vmax = val
        else:
            acc += val
        count += 1
    return acc, vmax, count


@njit(cache=True, fastmath=True)
def _ray_samples_strided(vol, m, k_lo, k_hi, s0, a0, b0, da, db, mode):
    """Like `_ray_samples` but reading ``vol[z, y, x]`` directly for dominant axis m (slow fallback)."""
    acc = 0.0
    vmax = -1e30
    count = 0
    for k in range(k_lo, k_hi + 1):
        t = k - s0
        a = max(a0 + t * da, 0.0)
        b = max(b0 + t * db, 0.0)
        val = _bilinear_strided(vol, m, k, a, b)
        if mode == 1:
            if val > vmax:
                vmax = val
        else:
            acc += val
        count += 1
    return acc, vmax, count


@njit(parallel=True, fastmath=True, cache=True)
def cast_rays(vx, vy, vz, src, det0, du, dv, nu, nv, lin, scale, offset, mode, out):
    """Joseph ray casting through a volume for a batch of flat-panel projections.

    The volume comes in three layouts so that every ray reads contiguous
    memory within a slice: ``vz[z, y, x]`` (the Volume's own array),
    ``vy[y, z, x]`` and ``vx[x, z, y]`` (only the layouts whose axis dominates
    some ray need to be real; the others may be 2x2x2 dummies).
    All positions are continuous (x, y, z) voxel indices: ``src`` (n, 3) source
    points, ``det0`` (n, 3) pixel (0, 0) centres, ``du``/``dv`` (n, 3) one-pixel
    steps. ``lin`` (3x3) maps index vectors to mm (step lengths). Each sample
    value is ``scale * v + offset`` (e.g. HU -> mu). Writes ``out[n, nv, nu]``:
    the line integral (``mode`` 0), maximum (1) or mean (2) along the ray.
    Samples lie on the volume's slices along the ray's dominant axis and are
    bilinear within the slice; samples outside the voxel-centre box are skipped.
    """
    n = src.shape[0]
    dims = np.array([vz.shape[2], vz.shape[1], vz.shape[0]], dtype=np.float64)
    for r in prange(n * nv):
        p = r // nv
        iv = r % nv
        sx = src[p, 0]
        sy = src[p, 1]
        sz = src[p, 2]
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
            step_mm = math.sqrt(lx * lx + ly * ly + lz * lz) / abs(dm)
            # one call per layout: no array variable is re-bound inside the loop (re-binding
            # costs atomic reference-count updates shared by all threads)
            if m == 0:
                if vx.shape[0] == int(nm) and vx.shape[1] == int(nb) and vx.shape[2] == int(na):
                    acc, vmax, count = _ray_samples(vx, k_lo, k_hi, s0, a0, b0, da, db, mode)
                else:
                    acc, vmax, count = _ray_samples_strided(vz, 0, k_lo, k_hi, s0, a0, b0, da, db, mode)
            elif m == 1:
                if vy.shape[0] == int(nm) and vy.shape[1] == int(nb) and vy.shape[2] == int(na):
                    acc, vmax, count = _ray_samples(vy, k_lo, k_hi, s0, a0, b0, da, db, mode)
                else:
                    acc, vmax, count = _ray_samples_strided(vz, 1, k_lo, k_hi, s0, a0, b0, da, db, mode)
            else:
                acc, vmax, count = _ray_samples(vz, k_lo, k_hi, s0, a0, b0, da, db, mode)
            if mode == 0:
                out[p, iv, iu] = step_mm * (scale * acc + offset * count)
            elif mode == 1:
                out[p, iv, iu] = scale * vmax + offset if count > 0 else 0.0
            else:
                out[p, iv, iu] = (scale * acc / count + offset) if count > 0 else 0.0


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

    ``qf[p, iu, iv]``: filtered, weighted projections (u-major so a column walk
    reads contiguous memory). ``geo[p]`` = (cos t, sin t, SAD, SID, su, sv, du,
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
def build_column_table(proj, m_nodes, y0, vw_y, sv, dv, ipv, cv, n_w, table):
    """Resample one filtered projection ``proj[iu, iv]`` along v for a set of magnifications.

    ``table[k, iu, w]`` = ``proj[iu, v_w(m_k)]`` (linear in v, 0 off the
    detector) with ``v_w(m) = ((sv + (y0 + w vw_y - sv) m) - dv) ipv + cv``:
    the detector row that voxel w of a column at magnification m projects to.
    Because v_w is linear in m, a column's samples are then a bilinear blend of
    four table rows (two u columns x two magnification nodes), contiguous in w.
    """
    n_k = m_nodes.size
    nu = proj.shape[0]
    nv = proj.shape[1]
    for k in prange(n_k):
        m = m_nodes[k]
        v0 = ((sv + (y0 - sv) * m) - dv) * ipv + cv
        dvw = vw_y * m * ipv
        js = np.empty(n_w, np.int64)
        fs = np.empty(n_w, np.float32)
        ok = np.empty(n_w, np.bool_)
        for w in range(n_w):
            v = v0 + w * dvw
            if v >= 0.0 and v <= nv - 1.0:
                j = int(v)
                if j > nv - 2:
                    j = nv - 2
                js[w] = j
                fs[w] = v - j
                ok[w] = True
            else:
                js[w] = 0
                fs[w] = 0.0
                ok[w] = False
        for iu in range(nu):
            for w in range(n_w):
                j = js[w]
                r0 = proj[iu, j]
                val = r0 + fs[w] * (proj[iu, j + 1] - r0)
                table[k, iu, w] = val if ok[w] else np.float32(0.0)


@njit(parallel=True, fastmath=True, cache=True)
def backproject_table(table, m0, inv_dm, pg, origin, va, vb, n_a, n_b, n_w, rmax2, out):
    """Add one projection to ``out[a, b, w]`` (IEC ``origin + a va + b vb + w (0, vw_y, 0)``).

    ``pg`` = (cos t, sin t, SAD, SID, su, du, 1/pu, cu). Per column: u, the
    magnification and the FDK distance weight (SAD / (SAD - z'))^2 once, then a
    vectorised walk along w over four rows of ``table`` (see `build_column_table`).
    Columns farther than sqrt(rmax2) mm from the rotation axis are skipped.
    """
    n_k = table.shape[0] - 1
    nu = table.shape[1]
    c = pg[0]
    s = pg[1]
    sad = pg[2]
    sid = pg[3]
    su = pg[4]
    du = pg[5]
    ipu = pg[6]
    cu = pg[7]
    for a in prange(n_a):
        qx0 = origin[0] + a * va[0]
        qz0 = origin[2] + a * va[2]
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
                out[a, b, w] += (
                    c00 * table[k, iu, w] + c01 * table[k, iu + 1, w] + c10 * table[k + 1, iu, w]
                    + c11 * table[k + 1, iu + 1, w]
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
        q = qf[p]
        val = (
            q[iu, iv] * (1 - fu) * (1 - fv)
            + q[iu + 1, iv] * fu * (1 - fv)
            + q[iu, iv + 1] * (1 - fu) * fv
            + q[iu + 1, iv + 1] * fu * fv
        )
        out += np.where(ok, w * val, 0.0)
    return out
