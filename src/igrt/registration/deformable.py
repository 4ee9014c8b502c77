"""Deformable registration: multi-resolution diffeomorphic demons, planning CT -> daily image.

Convention (as for rigid results): the deformation maps planning points to
daily points, ``phi(p) = T(p + d(p))`` with ``T`` the rigid start (identity by
default) and ``d`` the demons displacement. The result stores the *total*
displacement ``D(p) = phi(p) - p`` in mm (LPS x, y, z components) on the
planning grid, so a planning landmark ``p`` sits at ``p + D(p)`` in the daily
image.

Algorithm: the daily image is resampled onto the planning grid through ``T``
and its intensities fitted linearly to the planning CT (CBCT HU scale/offset).
On each pyramid level, symmetric (ESM) demons forces are smoothed (fluid
regularisation), exponentiated by scaling and squaring and composed with the
current map (diffeomorphic update), and the map is smoothed (diffusion
regularisation). The Jacobian determinant of ``Id + d`` is reported; any
folding (det <= 0) fails the result.
"""

from __future__ import annotations

import time
import weakref
from dataclasses import dataclass, field, replace

import numpy as np
from scipy import ndimage

from igrt.geometry import RigidTransform, Volume, resample
from igrt.registration import _deform_kernels as DK
from igrt.registration.errors import RegistrationError
from igrt.registration.pyramid import halve
from igrt.registration.result import RegistrationResult
from igrt.registration.sampling import interpolate


@dataclass(frozen=True)
class DemonsSettings:
    """Knobs of `register_deformable` (sigmas in voxels of each level)."""

    levels: int = 3  # registered pyramid levels, the finest one at about min_spacing_mm
    iterations: tuple[int, ...] = (80, 60, 40)  # coarse -> fine
    fluid_sigma: float = 1.5
    diffusion_sigma: float = 1.0
    max_step: float = 0.5  # voxels per iteration
    image_sigma: float = 0.0  # Gaussian smoothing of both images on every level (voxels)
    min_spacing_mm: float = 2.5  # finest registered voxel size (geometric mean); the field is upsampled from it
    normalise_intensity: bool = True
    min_jacobian: float = 0.0  # det <= this is folding -> failed result


@dataclass(frozen=True, eq=False)
class DeformableResult:
    """Displacement field planning -> daily (mm, LPS components) and its verdict."""

    displacement: tuple[Volume, Volume, Volume]
    rigid: RigidTransform
    success: bool
    failure_reason: str | None = None
    jacobian_min: float = float("nan")
    jacobian_max: float = float("nan")
    iterations: int = 0
    elapsed_s: float = 0.0
    details: dict = field(default_factory=dict)

    @property
    def grid(self) -> Volume:
        return self.displacement[0]

    def map_points(self, points) -> np.ndarray:
        """Daily positions (N, 3) of planning points (N, 3), LPS mm; NaN outside the planning grid."""
        p = np.asarray(points, dtype=np.float32).reshape(-1, 3)
        d = np.stack([interpolate(c, p) for c in self.displacement], axis=1)
        return p + d

    def to_dict(self) -> dict:
        """JSON summary (the field itself is written as an image, not in JSON)."""
        mags = np.sqrt(sum(np.asarray(c.array, float) ** 2 for c in self.displacement))
        return {
            "schema": "igrt.registration.deformable/1",
            "success": bool(self.success),
            "failure_reason": self.failure_reason,
            "rigid_matrix_planning_to_daily": self.rigid.matrix.tolist(),
            "jacobian_min": float(self.jacobian_min),
            "jacobian_max": float(self.jacobian_max),
            "displacement_max_mm": float(mags.max()),
            "displacement_mean_mm": float(mags.mean()),
            "iterations": int(self.iterations),
            "elapsed_s": float(self.elapsed_s),
            "details": self.details,
        }


def jacobian_determinant(d: np.ndarray, spacing) -> np.ndarray:
    """det(I + grad d) for a displacement d (3, nz, ny, nx) in mm with components (x, y, z); spacing (x, y, z) mm."""
    sx, sy, sz = (float(v) for v in spacing)
    c = [np.ascontiguousarray(d[i], dtype=np.float32) for i in range(3)]
    return DK.jacobian_det(c[0], c[1], c[2], sx, sy, sz)


def _smooth(u, sigma):
    if sigma <= 0:
        return u
    return tuple(DK.gaussian(c, sigma) for c in u)


def _upsample(u, coarse: Volume, fine: Volume):
    """Field in coarse voxels -> field in fine voxels on the fine grid (trilinear, clamped)."""
    sc = np.asarray(coarse.spacing)
    sf = np.asarray(fine.spacing)
    axes = [((fine.origin[d] + sf[d] * np.arange(fine.size_xyz[d]) - coarse.origin[d]) / sc[d]).astype(np.float32)
            for d in range(3)]
    return tuple(DK.upsample(u[d], *axes, np.float32(sc[d] / sf[d])) for d in range(3))


def _exp(v):
    """Exponential of a stationary velocity field by scaling and squaring (voxel units).

    As in ITK's exponential filter, the field is scaled until no vector
    exceeds half a voxel, where the first-order step is exact enough; a
    clipped, smoothed demons update usually needs no squaring at all.
    """
    vmax = float(np.sqrt(max(float(np.max(c * c)) for c in v)))
    steps = max(0, int(np.ceil(np.log2(vmax / 0.5)))) if vmax > 0 else 0
    f = np.float32(1.0 / 2**steps)
    w = tuple(c * f for c in v)
    for _ in range(steps):
        w = DK.compose(*w, *w)
    return w


def _fit_intensity(fixed: np.ndarray, moving: np.ndarray, valid: np.ndarray) -> tuple[float, float]:
    """Linear map a * moving + b ~ fixed from tissue classes of low-gradient voxels.

    Low-gradient voxels of the fixed image are binned by fixed intensity
    (quantile bins); each bin gives one pair (median fixed, median moving) and a
    line is fitted through the pairs. Inside homogeneous regions a moderate
    misalignment barely changes the value pairs, the medians ignore noise and
    the outliers at edges, and every tissue class (air, lung, soft tissue,
    bone) counts once whatever its volume. A plain voxel-wise regression over
    the whole image would shrink the contrast of misaligned images instead.
    """
    if fixed.size > 2_000_000:  # a global two-parameter fit: every second voxel per axis is plenty
        fixed, moving, valid = fixed[::2, ::2, ::2], moving[::2, ::2, ::2], valid[::2, ::2, ::2]
    g = sum(np.abs(np.diff(fixed, axis=ax, append=np.take(fixed, [-1], axis=ax))) for ax in range(3))
    g = np.maximum(g, ndimage.maximum_filter(g, size=3))
    sel = valid & (g <= np.percentile(g[valid], 50))
    if sel.sum() < 100:
        return 1.0, 0.0
    fv, mv = fixed[sel].astype(np.float64), moving[sel].astype(np.float64)
    edges = np.unique(np.percentile(fv, np.linspace(0, 100, 25)))
    idx = np.clip(np.searchsorted(edges, fv, side="right") - 1, 0, len(edges) - 2)
    xs, ys = [], []
    for k in range(len(edges) - 1):
        inb = idx == k
        if inb.sum() >= 20:
            xs.append(np.median(mv[inb]))
            ys.append(np.median(fv[inb]))
    if len(xs) < 2 or np.ptp(xs) <= 0:
        return 1.0, 0.0
    a, b = np.polyfit(np.asarray(xs), np.asarray(ys), 1)
    if not np.isfinite(a) or a <= 0:
        return 1.0, 0.0
    return float(a), float(b)


def _mean_spacing(volume: Volume) -> float:
    return float(np.prod(volume.spacing) ** (1 / 3))


def _msd(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((a.astype(np.float64) - b) ** 2))


def register_deformable(
    planning: Volume,
    daily: Volume,
    *,
    initial: RigidTransform | RegistrationResult | None = None,
    settings: DemonsSettings | None = None,
    **overrides,
) -> DeformableResult:
    """Diffeomorphic demons from the planning CT to the daily image (after an optional rigid start)."""
    t0 = time.perf_counter()
    s = replace(settings or DemonsSettings(), **overrides)
    if not np.allclose(np.abs(planning.direction), np.eye(3)) or not np.allclose(planning.direction, np.eye(3)):
        raise RegistrationError("deformable registration needs an axis-aligned planning grid (identity direction); "
                                "resample the planning CT first")
    if isinstance(initial, RegistrationResult):
        initial = initial.transform
    rigid = initial if initial is not None else RigidTransform.identity()
    zero = tuple(planning.with_array(np.zeros(planning.shape, np.float32)) for _ in range(3))

    def fail(reason: str, details: dict | None = None) -> DeformableResult:
        return DeformableResult(zero, rigid, False, reason, elapsed_s=time.perf_counter() - t0, details=details or {})

    fixed = np.asarray(planning.array, dtype=np.float32)
    if not np.all(np.isfinite(fixed)) or not np.all(np.isfinite(daily.array)):
        return fail("an image contains NaN or infinite values")
    moved = resample(daily, planning, rigid, fill=np.nan).array
    valid = np.isfinite(moved)
    if valid.mean() < 0.2:
        return fail(f"the daily image covers only {100 * valid.mean():.0f} % of the planning grid")
    if np.ptp(fixed) <= 1e-6 or np.ptp(moved[valid]) <= 1e-6:
        return fail("an image is constant: nothing to register")
    if s.normalise_intensity:  # CBCT HU scale/offset
        a, b = _fit_intensity(fixed, moved, valid)
        moved = np.where(valid, a * moved + b, fixed)
    else:
        moved = np.where(valid, moved, fixed)
    moved = moved.astype(np.float32)

    # the finest registered level is the first pyramid level at least min_spacing_mm
    # coarse: finer, noise and sharp edges drive the forces more than anatomy does
    f_lv, m_lv = planning.with_array(fixed), planning.with_array(moved)
    while _mean_spacing(f_lv) < 0.9 * s.min_spacing_mm:
        coarser = halve(f_lv)
        if coarser.shape == f_lv.shape:
            break
        f_lv, m_lv = coarser, halve(m_lv)
    fpyr, mpyr = [f_lv], [m_lv]
    for _ in range(s.levels - 1):
        fpyr.append(halve(fpyr[-1]))
        mpyr.append(halve(mpyr[-1]))
    fpyr, mpyr = fpyr[::-1], mpyr[::-1]
    iters = list(s.iterations) + [s.iterations[-1]] * max(0, s.levels - len(s.iterations))
    u = None
    total_it = 0
    level_log = []
    n_run = len(fpyr)
    for lev in range(n_run):
        fv, mv = fpyr[lev], mpyr[lev]
        f, m = fv.array, mv.array
        if s.image_sigma > 0:  # noise would drive the demons forces at fine levels
            f = DK.gaussian(f, s.image_sigma)
            m = DK.gaussian(m, s.image_sigma)
        if u is None:
            u = tuple(np.zeros(fv.shape, np.float32) for _ in range(3))
        else:
            u = _upsample(u, fpyr[lev - 1], fv)
        if s.normalise_intensity and lev > 0:  # refine the intensity fit now that the images are closer
            a, b = _fit_intensity(f, DK.warp(m, *u), np.ones(f.shape, bool))
            m = (a * m + b).astype(np.float32)
        sx, sy, sz = fv.spacing
        norm2 = float(np.mean(np.square(fv.spacing)))
        best = np.inf
        stall = 0
        for it in range(iters[lev]):
            w = DK.warp(m, *u)
            cur = _msd(w, f)
            if cur < best * (1 - 1e-5):
                best, stall = cur, 0
            else:
                stall += 1
                if stall >= 10:
                    break
            du = DK.demons_force(f, w, sx, sy, sz, norm2, s.max_step)
            du = _smooth(du, s.fluid_sigma)
            u = DK.compose(*u, *_exp(du))
            u = _smooth(u, s.diffusion_sigma)
            total_it += 1
        level_log.append({"spacing_mm": list(fv.spacing), "iterations": it + 1, "msd": cur})
    assert u is not None
    last = fpyr[n_run - 1]
    if not last.same_grid(planning):
        u = _upsample(u, last, planning)
    sp = np.asarray(planning.spacing, dtype=np.float32)
    d = np.stack([u[c] * sp[c] for c in range(3)])
    jac = jacobian_determinant(d, planning.spacing)
    # Verdict at the scale the field was estimated on: image texture and noise
    # finer than that are smoothed by any sub-voxel warp, so a full-resolution
    # MSD can rise even when the anatomy is matched better.
    sigma = [max(1.0, last.spacing[a] / planning.spacing[a]) for a in (2, 1, 0)]
    fs = DK.gaussian(fixed, sigma)
    msd_before = _msd(DK.gaussian(moved, sigma)[valid], fs[valid])
    msd_after = _msd(DK.gaussian(DK.warp(moved, *u), sigma)[valid], fs[valid])
    # total displacement with the rigid start: D(p) = T(p + d(p)) - p
    x, y, z = planning.world_coordinates()
    pts = np.stack(np.broadcast_arrays(x, y, z), axis=0).astype(np.float64)
    q = pts + d
    r, off = rigid.rotation, rigid.offset
    total = np.einsum("ij,j...->i...", r, q) + off[:, None, None, None] - pts
    disp = tuple(planning.with_array(total[c].astype(np.float32)) for c in range(3))
    details = {"levels": level_log, "msd_before": msd_before, "msd_after": msd_after,
               "settings": {k: (list(v) if isinstance(v, tuple) else v) for k, v in s.__dict__.items()}}
    jmin, jmax = float(jac.min()), float(jac.max())
    ok = jmin > s.min_jacobian
    reason = None if ok else (f"the deformation folds (Jacobian determinant down to {jmin:.3f} <= "
                              f"{s.min_jacobian:g}); increase the regularisation or check the images")
    if ok and not msd_after < msd_before:
        ok, reason = False, "the deformable registration did not improve the match"
    return DeformableResult(disp, rigid, ok, reason, jmin, jmax, total_it, time.perf_counter() - t0, details)


def warp_daily_to_planning(volume: Volume, result: DeformableResult, *, order: int = 1, fill: float = 0.0) -> Volume:
    """Pull a daily-grid image (e.g. a dose or CBCT) back onto the planning grid: v(phi(p))."""
    grid = result.grid
    x, y, z = grid.world_coordinates()
    p = np.stack(np.broadcast_arrays(x, y, z), axis=-1).reshape(-1, 3)
    q = p + np.stack([c.array.reshape(-1) for c in result.displacement], axis=1)
    if order == 1:
        vals = interpolate(volume, q.astype(np.float32), fill)
    else:
        ijk = np.rint(volume.to_index(q)).astype(int)
        nx, ny, nz = volume.size_xyz
        ok = (ijk >= 0).all(1) & (ijk[:, 0] < nx) & (ijk[:, 1] < ny) & (ijk[:, 2] < nz)
        vals = np.full(len(q), fill, dtype=volume.array.dtype)
        vals[ok] = volume.array[ijk[ok, 2], ijk[ok, 1], ijk[ok, 0]]
    return grid.with_array(vals.reshape(grid.shape))


def inverse_map(result: DeformableResult, points: np.ndarray, iterations: int = 12) -> np.ndarray:
    """Planning positions p with phi(p) = y for daily points y (N, 3), by fixed-point iteration."""
    y = result.rigid.inverse().apply(np.asarray(points, dtype=float))
    p = y.copy()
    for _ in range(iterations):
        pf = p.astype(np.float32)
        d = np.stack([interpolate(c, pf, 0.0) for c in _deformation_only(result)], axis=1)
        p = y - d
    return p


_D_ONLY: "weakref.WeakKeyDictionary[DeformableResult, tuple]" = weakref.WeakKeyDictionary()


def _deformation_only(result: DeformableResult) -> tuple[Volume, Volume, Volume]:
    """The demons part d(p) = T^-1(p + D(p)) - p of the stored total displacement (cached)."""
    if result in _D_ONLY:
        return _D_ONLY[result]
    grid = result.grid
    x, y, z = grid.world_coordinates()
    p = np.stack(np.broadcast_arrays(x, y, z), axis=-1).reshape(-1, 3)
    q = p + np.stack([c.array.reshape(-1) for c in result.displacement], axis=1)
    d = result.rigid.inverse().apply(q) - p
    out = tuple(grid.with_array(d[:, c].reshape(grid.shape).astype(np.float32)) for c in range(3))
    _D_ONLY[result] = out
    return out


def warp_planning_to_daily(volume: Volume, result: DeformableResult, reference: Volume, *, order: int = 1,
                           fill: float = 0.0) -> Volume:
    """Push a planning-grid image (dose, mask) onto a daily grid: v(phi^-1(y))."""
    x, y, z = reference.world_coordinates()
    pts = np.stack(np.broadcast_arrays(x, y, z), axis=-1).reshape(-1, 3)
    p = inverse_map(result, pts)
    if order == 1:
        vals = interpolate(volume.with_array(volume.array.astype(np.float32)), p.astype(np.float32), fill)
    else:
        ijk = np.rint(volume.to_index(p)).astype(int)
        nx, ny, nz = volume.size_xyz
        ok = (ijk >= 0).all(1) & (ijk[:, 0] < nx) & (ijk[:, 1] < ny) & (ijk[:, 2] < nz)
        vals = np.full(len(p), fill, dtype=volume.array.dtype)
        vals[ok] = volume.array[ijk[ok, 2], ijk[ok, 1], ijk[ok, 0]]
    return reference.with_array(vals.reshape(reference.shape))


def propagate_mask(mask: Volume, result: DeformableResult, reference: Volume) -> Volume:
    """A planning structure mask carried onto the daily grid (boolean, partial volume >= 0.5)."""
    frac = warp_planning_to_daily(mask.with_array(np.asarray(mask.array, np.float32)), result, reference, order=1)
    return reference.with_array(frac.array >= 0.5)
