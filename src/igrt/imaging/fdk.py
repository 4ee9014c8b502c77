"""FDK cone-beam reconstruction (Feldkamp-Davis-Kress) for circular scans.

Steps: cosine weighting, redundancy weighting (1/2 for full scans, Parker for
short scans, Wang for an offset / half-fan detector), ramp filtering along
detector rows by FFT with zero padding (Ram-Lak, Shepp-Logan or Hann window),
then voxel-driven backprojection in numba (bilinear on the detector, float32)
onto an LPS grid. Output in HU (``mu_water_per_mm``) or attenuation 1/mm.

Only one extra copy of the projection stack is held: the filtered stack
(plus, per projection, a small table of it resampled for the column walk).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

import numba
import numpy as np
import scipy.fft

from igrt.geometry import Volume
from igrt.imaging._kernels import (
    backproject_columns,
    backproject_table,
    backproject_tiles,
    build_column_table,
    tile_count,
)
from igrt.imaging.errors import ImagingGeometryError
from igrt.imaging.geometry import CBCTGeometry, PatientPlacement, as_placement
from igrt.imaging.projector import MU_WATER_PER_MM, check_projections

WINDOWS = ("ram-lak", "shepp-logan", "hann")


@dataclass(frozen=True)
class ReconGrid:
    """An output grid: size (x, y, z) voxels, spacing (x, y, z) mm, origin (LPS mm of voxel 0), direction."""

    size_xyz: tuple[int, int, int]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: tuple = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))

    def __post_init__(self) -> None:
        size = tuple(int(s) for s in self.size_xyz)
        if len(size) != 3 or min(size) < 1:
            raise ImagingGeometryError(f"grid size must be three positive voxel counts, got {self.size_xyz}")
        spacing = tuple(float(s) for s in self.spacing)
        if len(spacing) != 3 or not all(np.isfinite(spacing)) or min(spacing) <= 0:
            raise ImagingGeometryError(f"grid spacing must be three positive mm values, got {self.spacing}")
        object.__setattr__(self, "size_xyz", size)
        object.__setattr__(self, "spacing", spacing)
        object.__setattr__(self, "origin", tuple(float(x) for x in self.origin))
        object.__setattr__(self, "direction", tuple(map(tuple, np.asarray(self.direction, float).reshape(3, 3))))

    @classmethod
    def centred(cls, size_xyz, spacing, centre_lps=(0.0, 0.0, 0.0)) -> "ReconGrid":
        """An axis-aligned grid whose centre is ``centre_lps`` (mm), e.g. the isocentre."""
        size = np.asarray(size_xyz, int)
        sp = np.asarray(spacing, float) * np.ones(3)
        origin = np.asarray(centre_lps, float) - (size - 1) / 2.0 * sp
        return cls(tuple(size), tuple(sp), tuple(origin))

    @classmethod
    def like(cls, volume: Volume) -> "ReconGrid":
        return cls(volume.size_xyz, volume.spacing, volume.origin, volume.direction)

    def volume(self, array: np.ndarray) -> Volume:
        return Volume(array, self.origin, self.spacing, np.asarray(self.direction))


# --- scan parameters ---------------------------------------------------------
def scan_angles(angles_deg) -> tuple[np.ndarray, int, bool, np.ndarray]:
    """(beta_deg, direction, full_scan, dbeta_rad) for gantry angles in acquisition order.

    ``beta_deg`` is the angle travelled from the first projection in the
    rotation ``direction`` (+1 increasing gantry angle, -1 decreasing), in
    [0, 360); ``dbeta_rad`` the angular weight of each projection (half the
    gap to its neighbours in angle, wrapping for a full scan).
    """
    a = np.asarray(angles_deg, float)
    n = a.size
    if n < 2:
        return np.zeros(n), 1, False, np.full(n, np.pi)
    steps = (np.diff(a) + 180.0) % 360.0 - 180.0
    direction = 1 if np.median(steps) >= 0 else -1
    beta = ((a - a[0]) * direction) % 360.0
    order = np.argsort(beta, kind="stable")
    b = beta[order]
    gaps = np.diff(b)
    typical = float(np.median(gaps[gaps > 1e-9])) if np.any(gaps > 1e-9) else 360.0 / n
    full = b[-1] + typical >= 360.0 - 1e-6 * 360.0 - 0.5 * typical
    if full:
        gaps_c = np.append(gaps, b[0] + 360.0 - b[-1])
        before = np.roll(gaps_c, 1)
        w = (before + gaps_c) / 2.0
    else:
        ext = np.concatenate([[typical], gaps, [typical]])
        w = (ext[:-1] + ext[1:]) / 2.0
    dbeta = np.empty(n)
    dbeta[order] = np.deg2rad(w)
    return beta, direction, bool(full), dbeta


def parker_weights(beta_rad: np.ndarray, gamma_rad: np.ndarray, delta_rad: float) -> np.ndarray:
    """Parker short-scan weights w(beta, gamma) (n_beta, n_gamma); conjugate rays sum to 1.

    ``beta`` in [0, pi + 2 delta] from the scan start; ``gamma`` the fan angle
    in the convention where the conjugate of (beta, gamma) is (beta + pi + 2 gamma, -gamma).
    """
    b = np.asarray(beta_rad, float)[:, None]
    g = np.asarray(gamma_rad, float)[None, :]
    d = float(delta_rad)
    w = np.zeros(np.broadcast_shapes(b.shape, g.shape))
    with np.errstate(divide="ignore", invalid="ignore"):
        r1 = (b >= 0) & (b < 2 * (d - g))
        r2 = (b >= 2 * (d - g)) & (b <= np.pi - 2 * g)
        r3 = (b > np.pi - 2 * g) & (b <= np.pi + 2 * d)
        w = np.where(r1, np.sin(np.pi / 4 * b / (d - g)) ** 2, w)
        w = np.where(r2, 1.0, w)
        w = np.where(r3, np.sin(np.pi / 4 * (np.pi + 2 * d - b) / (d + g)) ** 2, w)
    return np.nan_to_num(w)


def offset_detector_weights(u_iso: np.ndarray, overlap_half_mm: float, wide_side: int) -> np.ndarray:
    """Wang weights for an offset (half-fan) detector; ``u_iso`` in mm at the isocentre plane.

    Inside the overlap ``|u| < A`` the weight rises smoothly as sin^2 so that
    w(u) + w(-u) = 1; on the wide side (sign ``wide_side``) beyond A it is 1.
    """
    a = float(overlap_half_mm)
    x = np.clip(wide_side * np.asarray(u_iso, float) / a, -1.0, 1.0)
    return np.sin(np.pi / 4 * (x + 1.0)) ** 2


def ramp_filter_frequency(n_pad: int, tau_mm: float, window: str = "ram-lak", cutoff: float = 1.0) -> np.ndarray:
    """Frequency response (rfft length) of the band-limited ramp filter, scaled by ``tau`` (mm).

    Built from the spatial Ram-Lak kernel (h0 = 1/(4 tau^2), odd n: -1/(n pi tau)^2)
    so that the DC term is right; ``cutoff`` (0-1] of Nyquist, window applied on top.
    """
    if window not in WINDOWS:
        raise ImagingGeometryError(f"unknown filter window {window!r}; use one of {', '.join(WINDOWS)}")
    if not 0 < cutoff <= 1:
        raise ImagingGeometryError(f"filter cutoff must be in (0, 1] of Nyquist, got {cutoff}")
    k = np.arange(n_pad)
    k = np.where(k > n_pad // 2, k - n_pad, k)
    h = np.zeros(n_pad)
    h[0] = 1.0 / (4.0 * tau_mm**2)
    odd = (k % 2) == 1
    h[odd] = -1.0 / (np.pi * k[odd] * tau_mm) ** 2
    resp = np.real(np.fft.rfft(h)) * tau_mm
    f = np.fft.rfftfreq(n_pad)  # cycles per sample, Nyquist = 0.5
    fc = 0.5 * cutoff
    if window == "shepp-logan":
        resp *= np.sinc(f / (2 * fc))
    elif window == "hann":
        resp *= 0.5 * (1.0 + np.cos(np.pi * f / fc))
    resp[f > fc] = 0.0
    return resp


def _grid_frames(grid: ReconGrid, place: PatientPlacement):
    """Kernel layout of the grid: IEC origin, steps va, vb (XZ plane), vw_y, and the index axes (a, b, w)."""
    d = np.asarray(grid.direction, float)
    steps = place.lps_to_iec @ d @ np.diag(grid.spacing)  # columns: IEC step of x, y, z index
    origin = place.to_iec(np.asarray(grid.origin))
    along = np.abs(steps[1]) / np.linalg.norm(steps, axis=0)
    c_w = int(np.argmax(along))
    others = [c for c in range(3) if c != c_w]
    if along[c_w] < 1 - 1e-6 or np.any(np.abs(steps[1, others]) > 1e-6 * np.linalg.norm(steps[:, others], axis=0)):
        raise ImagingGeometryError(
            "the reconstruction grid must have one axis along the gantry rotation axis (IEC Y); "
            "reconstruct on an aligned grid and resample it"
        )
    return origin, steps[:, others[0]], steps[:, others[1]], float(steps[1, c_w]), (others[0], others[1], c_w)


def _redundancy_and_cosine(geometry: CBCTGeometry, beta_deg, direction, full) -> Callable[[int, int], np.ndarray]:
    """A function (p0, p1) -> weights [p, nv, nu] combining cosine and redundancy weights."""
    nu, nv = geometry.detector_shape
    pu, pv = geometry.pixel_spacing_mm
    s = geometry.sad_mm / geometry.sid_mm
    sad = geometry.sad_mm
    cols = (np.arange(nu) - (nu - 1) / 2.0) * pu
    rows = (np.arange(nv) - (nv - 1) / 2.0) * pv
    u_lo, u_hi, _, _ = geometry.detector_extent_at_iso_mm()
    asym = abs(abs(u_hi) - abs(u_lo)) > 4 * pu * s
    if asym and (u_lo >= 0 or u_hi <= 0):
        raise ImagingGeometryError(
            "the detector does not reach the rotation axis (offset larger than half the detector); "
            "reduce the detector offset"
        )
    if asym and not full:
        raise ImagingGeometryError("offset-detector (half-fan) reconstruction needs a full 360 deg scan")
    if not full:
        half_fan = np.arctan(max(abs(u_lo), abs(u_hi)) / sad)
        span = np.deg2rad(np.max(beta_deg))
        if span < np.pi - 1e-6:
            raise ImagingGeometryError(
                f"a short scan must cover at least 180 deg plus the fan angle; this one covers {np.rad2deg(span):.1f} deg"
            )
        delta = max((span - np.pi) / 2.0, 1e-6)
        if delta < half_fan - np.deg2rad(0.5):
            delta = max(delta, 1e-6)  # incomplete data: Parker with the available overscan
    beta_rad = np.deg2rad(beta_deg)

    def weights(p0: int, p1: int) -> np.ndarray:
        u_iso = (cols[None, :] + geometry.offset_u_mm[p0:p1, None]) * s  # (p, nu)
        v_iso = (rows[None, :] + geometry.offset_v_mm[p0:p1, None]) * s  # (p, nv)
        cosw = sad / np.sqrt(sad**2 + u_iso[:, None, :] ** 2 + v_iso[:, :, None] ** 2)
        if asym:
            overlap = min(abs(u_lo), abs(u_hi))
            red = offset_detector_weights(u_iso, overlap, 1 if abs(u_hi) > abs(u_lo) else -1)
        elif full:
            red = np.full(u_iso.shape, 0.5)
        else:
            gamma = np.arctan(u_iso / sad)
            # conjugate of (beta, gamma) in igrt's frame is (beta + pi - 2 gamma, -gamma): flip gamma
            red = np.stack(
                [parker_weights(beta_rad[p : p + 1], -direction * gamma[i], delta)[0] for i, p in enumerate(range(p0, p1))]
            )
        return cosw * red[:, None, :]

    return weights


def fdk(
    projections: np.ndarray,
    geometry: CBCTGeometry,
    grid: "ReconGrid | Volume | None" = None,
    placement: PatientPlacement | None = None,
    *,
    isocentre_mm=None,
    orientation=None,
    window: str = "ram-lak",
    cutoff: float = 1.0,
    mu_water_per_mm: float | None = MU_WATER_PER_MM,
    mask_outside_fov: bool = True,
    check_field: bool = True,
    exact: bool = False,
    table_step_px: float | None = None,
    chunk: int = 32,
    progress: Callable[[float], None] | None = None,
) -> Volume:
    """Reconstruct a line-integral stack ``[angle, v, u]`` into an LPS `Volume`.

    ``grid``: a `ReconGrid` or a Volume whose grid to use (default: a cube
    covering the field of view at the detector's iso pixel size, centred on the
    isocentre). The patient is placed by ``placement`` (or ``isocentre_mm`` +
    ``orientation``, default HFS). Output in HU when ``mu_water_per_mm`` is given
    (HU = 1000 (mu / mu_water - 1)), else in 1/mm. Voxels outside the scanned
    cylinder are set to air when ``mask_outside_fov``. ``progress(fraction)`` is
    called as the backprojection advances.

    Backprojection (default): every voxel is interpolated bilinearly on the
    detector (the same arithmetic as RTK), in a cache-blocked order (tiles of
    whole voxel columns take all projections while they sit in the L2 cache)
    with a gather-free vectorised walk along each column; see
    `igrt.imaging._kernels.backproject_tiles`. ``exact=True`` gives the same
    values with the simple one-projection-at-a-time loop (slower; a
    reference). ``table_step_px`` (detector rows) selects the older table
    backprojector instead (the filtered projection resampled along v at
    magnification nodes that far apart, then bilinear in u and magnification:
    slightly less accurate, kept for comparison).
    """
    proj = check_projections(projections, geometry)
    place = as_placement(placement, isocentre_mm, orientation)
    if grid is None:
        pix = geometry.pixel_spacing_mm[0] / geometry.magnification
        n_xy = int(2 * np.floor(geometry.fov_radius_mm() / pix))
        n_z = int(2 * np.floor(geometry.fov_half_length_mm() / pix))
        # the LPS axis that the orientation puts along the rotation axis (IEC Y) gets the axial size
        axial = np.abs(place.lps_to_iec[1]) > 0.5
        grid = ReconGrid.centred(tuple(n_z if axial[c] else n_xy for c in range(3)), pix, place.isocentre_lps_mm)
    elif isinstance(grid, Volume):
        grid = ReconGrid.like(grid)
    origin, va, vb, vw_y, axes = _grid_frames(grid, place)
    size = grid.size_xyz
    n_a, n_b, n_w = size[axes[0]], size[axes[1]], size[axes[2]]

    # transverse positions of every column (IEC X, Z) for the field check and mask
    ga = np.arange(n_a)[:, None]
    gb = np.arange(n_b)[None, :]
    col_x = origin[0] + ga * va[0] + gb * vb[0]
    col_z = origin[2] + ga * va[2] + gb * vb[2]
    if check_field:
        half_len = max(abs(origin[1]), abs(origin[1] + (n_w - 1) * vw_y))
        radius = min(
            max(abs(col_x.min()), abs(col_x.max())) if n_a * n_b else 0.0,
            max(abs(col_z.min()), abs(col_z.max())) if n_a * n_b else 0.0,
        )
        geometry.check_field(radius, half_len, tol_mm=max(1.0, max(grid.spacing)))

    beta, direction, full, dbeta = scan_angles(geometry.angles_deg)
    weights = _redundancy_and_cosine(geometry, beta, direction, full)
    nu, nv = geometry.detector_shape
    n = geometry.n_projections
    tau = geometry.pixel_spacing_mm[0] / geometry.magnification
    n_pad = int(2 ** np.ceil(np.log2(2 * nu)))
    resp = ramp_filter_frequency(n_pad, tau, window, cutoff).astype(np.float32)

    # One copy of the stack: filtered, u-major [angle, u, v] so that a voxel column reads contiguous rows.
    qf = np.empty((n, nu, nv), dtype=np.float32)
    for p0 in range(0, n, chunk):
        p1 = min(n, p0 + chunk)
        wtd = proj[p0:p1] * (weights(p0, p1) * dbeta[p0:p1, None, None]).astype(np.float32)
        spec = scipy.fft.rfft(wtd, n=n_pad, axis=-1, workers=-1)
        spec *= resp
        filt = scipy.fft.irfft(spec, n=n_pad, axis=-1, workers=-1)[..., :nu]
        qf[p0:p1] = filt.transpose(0, 2, 1)

    out = np.zeros((n_a, n_b, n_w), dtype=np.float32)
    r_cols = float(np.sqrt((col_x**2 + col_z**2).max()))
    r_bp = min(r_cols, geometry.fov_radius_mm()) if mask_outside_fov else r_cols
    # the tiled walk wants w to run along +IEC Y: walk a flipped grid and flip back at the end
    flip_w = vw_y < 0 and not exact and table_step_px is None
    if flip_w:
        origin = origin + np.array([0.0, (n_w - 1) * vw_y, 0.0])
        vw_y = -vw_y
    if exact:
        _backproject_columns_u(qf, geometry, origin, va, vb, vw_y, out, progress)
    elif table_step_px is not None:
        _backproject_table(qf.transpose(0, 2, 1), geometry, origin, va, vb, vw_y, out, r_bp, table_step_px, progress)
    else:
        _backproject_tiled(qf, geometry, origin, va, vb, vw_y, out, r_bp, progress)
    del qf
    if flip_w:
        out = out[:, :, ::-1]

    if mask_outside_fov:
        outside = np.hypot(col_x, col_z) > geometry.fov_radius_mm()
        out[outside] = 0.0
    if mu_water_per_mm is not None:
        out *= np.float32(1000.0 / mu_water_per_mm)
        out -= np.float32(1000.0)
    # kernel layout (a, b, w) -> numpy [z, y, x] = index axes (2, 1, 0)
    perm = [axes.index(c) for c in (2, 1, 0)]
    arr = _contiguous_copy(out.transpose(perm))
    return grid.volume(arr)


def _contiguous_copy(view: np.ndarray) -> np.ndarray:
    """C-contiguous copy of a (transposed) 3D view, split over threads along its first axis.

    A transposing copy is bound by strided reads; numpy releases the GIL while
    copying, so two halves copy in parallel (~2x on the 256^3 benchmark).
    """
    dst = np.empty(view.shape, dtype=view.dtype)
    n_threads = max(1, min(numba.get_num_threads(), view.shape[0]))
    bounds = np.linspace(0, view.shape[0], n_threads + 1).astype(int)

    def part(i: int) -> None:
        dst[bounds[i] : bounds[i + 1]] = view[bounds[i] : bounds[i + 1]]

    if n_threads == 1:
        part(0)
    else:
        with ThreadPoolExecutor(n_threads) as pool:
            list(pool.map(part, range(n_threads)))
    return dst


def _backproject_exact(qf, geometry: CBCTGeometry, origin, va, vb, vw_y, out, progress) -> None:
    """Simple per-projection backprojection of a ``[angle, v, u]`` stack (a reference; copies it u-major)."""
    _backproject_columns_u(np.ascontiguousarray(qf.transpose(0, 2, 1)), geometry, origin, va, vb, vw_y, out, progress)


def _kernel_geometry(geometry: CBCTGeometry) -> np.ndarray:
    """Per-projection constants (n, 12) of the voxel-driven kernels (see `backproject_columns`)."""
    n = geometry.n_projections
    nu, nv = geometry.detector_shape
    pu, pv = geometry.pixel_spacing_mm
    t = np.deg2rad(geometry.angles_deg)
    geo = np.stack(
        [
            np.cos(t),
            np.sin(t),
            np.full(n, geometry.sad_mm),
            np.full(n, geometry.sid_mm),
            geometry.source_offset_u_mm,
            geometry.source_offset_v_mm,
            geometry.offset_u_mm,
            geometry.offset_v_mm,
            np.full(n, 1.0 / pu),
            np.full(n, 1.0 / pv),
            np.full(n, (nu - 1) / 2.0),
            np.full(n, (nv - 1) / 2.0),
        ],
        axis=1,
    )
    return geo


def _backproject_columns_u(qf, geometry: CBCTGeometry, origin, va, vb, vw_y, out, progress) -> None:
    """One projection at a time over the whole volume (u-major ``qf[angle, u, v]``)."""
    geo = _kernel_geometry(geometry)
    n = geometry.n_projections
    n_a, n_b, n_w = out.shape
    n_chunks = 1 if progress is None else min(n, 20)
    bounds = np.linspace(0, n, n_chunks + 1).astype(int)
    for i in range(n_chunks):
        p0, p1 = bounds[i], bounds[i + 1]
        backproject_columns(qf[p0:p1], geo[p0:p1], origin, va, vb, vw_y, n_a, n_b, n_w, out)
        if progress is not None:
            progress(p1 / n)


def _backproject_tiled(qf, geometry: CBCTGeometry, origin, va, vb, vw_y, out, r_mm, progress,
                       tile: tuple[int, int] = (16, 16)) -> None:
    """Cache-blocked backprojection of a u-major ``qf[angle, u, v]`` into ``out[a, b, w]`` (w along +IEC Y).

    A 16 x 16-column tile of 256 voxels is 256 kB of output: it stays in a
    512 kB L2 cache while all projections are added. Columns farther than
    ``r_mm`` from the rotation axis are skipped.
    """
    geo = _kernel_geometry(geometry)
    n_a, n_b, n_w = out.shape
    ta, tb = tile
    n_t = tile_count(n_a, n_b, ta, tb)
    n_chunks = 1 if progress is None else min(n_t, 20)
    bounds = np.linspace(0, n_t, n_chunks + 1).astype(int)
    for i in range(n_chunks):
        # tiles handed out one at a time: the ones at the edge of the field hold fewer columns
        with numba.parallel_chunksize(1):
            backproject_tiles(qf, geo, origin, va, vb, float(vw_y), r_mm * r_mm, ta, tb, bounds[i], bounds[i + 1], out)
        if progress is not None:
            progress(bounds[i + 1] / n_t)


def _backproject_table(qf, geometry: CBCTGeometry, origin, va, vb, vw_y, out, r_mm, step_px, progress,
                       batch: int = 1) -> None:
    """Table backprojection, ``batch`` projections per pass over the volume.

    Batching keeps each slab of the output in cache while several projections
    are added, at the cost of ``batch`` tables in memory; on the 2-core
    benchmark machine it did not pay (tables leave the L3 cache), so 1.
    """
    n = geometry.n_projections
    nu, nv = geometry.detector_shape
    pu, pv = geometry.pixel_spacing_mm
    sad, sid = geometry.sad_mm, geometry.sid_mm
    n_a, n_b, n_w = out.shape
    r_mm = min(r_mm, 0.999 * sad)
    m_lo, m_hi = sid / (sad + r_mm), sid / (sad - r_mm)
    # detector-row distance between neighbouring nodes at the farthest slice sets the node count
    y_far = max(abs(origin[1]), abs(origin[1] + (n_w - 1) * vw_y)) + float(np.max(np.abs(geometry.source_offset_v_mm)))
    n_k = max(1, int(np.ceil((m_hi - m_lo) * y_far / pv / max(step_px, 1e-3))))
    nodes = np.linspace(m_lo, m_hi, n_k + 1)
    inv_dm = n_k / (m_hi - m_lo) if m_hi > m_lo else 0.0
    batch = max(1, min(int(batch), n))
    table = np.empty((batch, n_k + 1, nu, n_w), dtype=np.float32)
    t = np.deg2rad(geometry.angles_deg)
    pgs = np.stack(
        [np.cos(t), np.sin(t), np.full(n, sad), np.full(n, sid), geometry.source_offset_u_mm,
         geometry.offset_u_mm, np.full(n, 1.0 / pu), np.full(n, (nu - 1) / 2.0)],
        axis=1,
    )
    for p0 in range(0, n, batch):
        p1 = min(n, p0 + batch)
        tab = table[: p1 - p0]
        build_column_table(
            qf[p0:p1], nodes, origin[1], vw_y, geometry.source_offset_v_mm[p0:p1], geometry.offset_v_mm[p0:p1],
            1.0 / pv, (nv - 1) / 2.0, n_w, tab,
        )
        backproject_table(tab, m_lo, inv_dm, pgs[p0:p1], origin, va, vb, n_a, n_b, 0, r_mm * r_mm, out)
        if progress is not None:
            progress(p1 / n)


def mu_to_hu(mu: np.ndarray, mu_water_per_mm: float, mu_air_per_mm: float = 0.0) -> np.ndarray:
    """Calibrate attenuation (1/mm) to HU from measured water and air values."""
    return 1000.0 * (np.asarray(mu, float) - mu_water_per_mm) / (mu_water_per_mm - mu_air_per_mm)
