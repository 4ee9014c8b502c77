"""Circular cone-beam CT geometry in IEC 61217 fixed coordinates.

Conventions (the same as RTK's ``ThreeDCircularProjectionGeometry``, so RTK
XML files map one to one):

* Frame: IEC fixed system about the machine isocentre, mm. +X lateral (to the
  right of an observer at the couch foot facing the gantry), +Y toward the
  gantry (the gantry rotation axis), +Z up.
* Gantry angle ``theta`` (deg) rotates source and detector about +Y; gantry 0
  puts the source above the isocentre (+Z), gantry 90 at +X.
  Rotated frame of one projection: ``e_u = (cos t, 0, -sin t)``,
  ``e_v = (0, 1, 0)``, ``e_s = (sin t, 0, cos t)`` (toward the source).
* Source at ``SAD e_s + su e_u + sv e_v`` (``su, sv``: per-angle source flex,
  RTK SourceOffsetX/Y). Detector plane at ``(SAD - SID) e_s``; a detector
  coordinate ``(u, v)`` in mm sits at ``(u + du) e_u + (v + dv) e_v`` in that
  plane (``du, dv``: per-angle detector offset / flex, RTK ProjectionOffsetX/Y;
  a large ``du`` is the half-fan / offset-detector mode).
* Projection arrays are ``[angle, v row, u column]``; pixel ``(iu, iv)`` has
  detector coordinate ``u = (iu - (nu - 1) / 2) pu`` (centred detector image).

Patients: a `PatientPlacement` puts the plan isocentre (LPS) at the machine
isocentre with a patient orientation (default HFS): ``q_iec = M (p_lps - iso)``
with ``M = igrt.geometry.lps_to_iec_matrix(orientation)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from igrt.geometry import PatientOrientation, lps_to_iec_matrix
from igrt.imaging.errors import DetectorTooSmallError, ImagingGeometryError


def _per_angle(value, n: int, name: str) -> np.ndarray:
    arr = np.asarray(value, dtype=float)
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
    arr = arr.reshape(-1)
    if arr.shape != (n,):
        raise ImagingGeometryError(f"{name} needs one value or one per projection ({n}), got {arr.shape[0]}")
    if not np.all(np.isfinite(arr)):
        raise ImagingGeometryError(f"{name} holds non-finite values; give finite mm/deg values")
    return arr


@dataclass(frozen=True, eq=False)
class CBCTGeometry:
    """A circular cone-beam scan: distances in mm, angles in degrees, one entry per projection."""

    sad_mm: float
    sid_mm: float
    angles_deg: np.ndarray
    detector_shape: tuple[int, int] = (256, 256)  # (nu columns, nv rows)
    pixel_spacing_mm: tuple[float, float] = (1.5, 1.5)  # (pu, pv) at the detector
    offset_u_mm: np.ndarray | float = 0.0
    offset_v_mm: np.ndarray | float = 0.0
    source_offset_u_mm: np.ndarray | float = 0.0
    source_offset_v_mm: np.ndarray | float = 0.0

    def __post_init__(self) -> None:
        sad, sid = float(self.sad_mm), float(self.sid_mm)
        if not (np.isfinite(sad) and np.isfinite(sid)) or sad <= 0:
            raise ImagingGeometryError(f"source-axis distance must be > 0 mm, got {self.sad_mm}")
        if sid <= sad:
            raise ImagingGeometryError(
                f"source-detector distance ({sid} mm) must exceed the source-axis distance ({sad} mm)"
            )
        angles = np.asarray(self.angles_deg, dtype=float).reshape(-1)
        if angles.size < 1 or not np.all(np.isfinite(angles)):
            raise ImagingGeometryError("gantry angles must be a non-empty list of finite degrees")
        nu, nv = (int(x) for x in self.detector_shape)
        if nu < 2 or nv < 2:
            raise ImagingGeometryError(f"detector needs at least 2x2 pixels, got {self.detector_shape}")
        pu, pv = (float(x) for x in self.pixel_spacing_mm)
        if not (pu > 0 and pv > 0):
            raise ImagingGeometryError(f"detector pixel spacing must be > 0 mm, got {self.pixel_spacing_mm}")
        n = angles.size
        object.__setattr__(self, "sad_mm", sad)
        object.__setattr__(self, "sid_mm", sid)
        object.__setattr__(self, "angles_deg", angles)
        object.__setattr__(self, "detector_shape", (nu, nv))
        object.__setattr__(self, "pixel_spacing_mm", (pu, pv))
        for name in ("offset_u_mm", "offset_v_mm", "source_offset_u_mm", "source_offset_v_mm"):
            object.__setattr__(self, name, _per_angle(getattr(self, name), n, name))

    # --- basic facts --------------------------------------------------------
    @property
    def n_projections(self) -> int:
        return int(self.angles_deg.size)

    @property
    def magnification(self) -> float:
        """SID / SAD: detector size of an object at the isocentre."""
        return self.sid_mm / self.sad_mm

    def subset(self, indices) -> "CBCTGeometry":
        """The geometry of a subset of projections (e.g. one 4D phase bin)."""
        idx = np.asarray(indices, dtype=int)
        return replace(
            self,
            angles_deg=self.angles_deg[idx],
            offset_u_mm=self.offset_u_mm[idx],
            offset_v_mm=self.offset_v_mm[idx],
            source_offset_u_mm=self.source_offset_u_mm[idx],
            source_offset_v_mm=self.source_offset_v_mm[idx],
        )

    def angular_range_deg(self) -> float:
        """Covered gantry range (deg), counting one angular step for the last projection."""
        a = np.sort(self.angles_deg)
        if a.size < 2:
            return 0.0
        step = float(np.median(np.diff(a)))
        return float(min(360.0, a[-1] - a[0] + step))

    def is_short_scan(self) -> bool:
        return self.angular_range_deg() < 360.0 - 1e-6

    # --- frames -------------------------------------------------------------
    def rotated_axes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-angle unit vectors (n, 3) e_u, e_v, e_s in IEC fixed coordinates."""
        t = np.deg2rad(self.angles_deg)
        n = t.size
        eu = np.stack([np.cos(t), np.zeros(n), -np.sin(t)], axis=1)
        ev = np.tile([0.0, 1.0, 0.0], (n, 1))
        es = np.stack([np.sin(t), np.zeros(n), np.cos(t)], axis=1)
        return eu, ev, es

    def source_positions_iec(self) -> np.ndarray:
        """(n, 3) source positions in IEC fixed mm."""
        eu, ev, es = self.rotated_axes()
        return (
            self.sad_mm * es
            + self.source_offset_u_mm[:, None] * eu
            + self.source_offset_v_mm[:, None] * ev
        )

    def detector_frames_iec(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per angle: IEC position of pixel (0, 0), and the IEC steps (mm) of one pixel along u and v."""
        eu, ev, es = self.rotated_axes()
        nu, nv = self.detector_shape
        pu, pv = self.pixel_spacing_mm
        u0 = -(nu - 1) / 2.0 * pu + self.offset_u_mm
        v0 = -(nv - 1) / 2.0 * pv + self.offset_v_mm
        origin = (self.sad_mm - self.sid_mm) * es + u0[:, None] * eu + v0[:, None] * ev
        return origin, eu * pu, ev * pv

    def rtk_matrices(self) -> np.ndarray:
        """(n, 3, 4) RTK projection matrices: IEC point (mm) -> detector coordinate (mm), homogeneous."""
        eu, ev, es = self.rotated_axes()
        n = self.n_projections
        sad, sid = self.sad_mm, self.sid_mm
        su, sv = self.source_offset_u_mm, self.source_offset_v_mm
        du, dv = self.offset_u_mm, self.offset_v_mm
        m = np.zeros((n, 3, 4))
        # u * (z' - SAD) = (su - du)(z' - SAD) - SID (x' - su), same for v; see module docstring.
        m[:, 0, :3] = -sid * eu + (su - du)[:, None] * es
        m[:, 0, 3] = -(su - du) * sad + sid * su
        m[:, 1, :3] = -sid * ev + (sv - dv)[:, None] * es
        m[:, 1, 3] = -(sv - dv) * sad + sid * sv
        m[:, 2, :3] = es
        m[:, 2, 3] = -sad
        return m

    def projection_matrices(self) -> np.ndarray:
        """(n, 3, 4) matrices: homogeneous IEC point (mm) -> homogeneous pixel index (iu, iv)."""
        nu, nv = self.detector_shape
        pu, pv = self.pixel_spacing_mm
        to_pix = np.array([[1 / pu, 0, (nu - 1) / 2.0], [0, 1 / pv, (nv - 1) / 2.0], [0, 0, 1]])
        return np.einsum("ij,njk->nik", to_pix, self.rtk_matrices())

    def project_points(self, points_iec) -> np.ndarray:
        """Pixel indices (n_proj, n_points, 2) = (iu, iv) of IEC points (n_points, 3) in every projection."""
        p = np.asarray(points_iec, dtype=float).reshape(-1, 3)
        h = np.concatenate([p, np.ones((p.shape[0], 1))], axis=1)
        q = np.einsum("nij,pj->npi", self.projection_matrices(), h)
        return q[..., :2] / q[..., 2:3]

    # --- field of view -------------------------------------------------------
    def detector_extent_at_iso_mm(self) -> tuple[float, float, float, float]:
        """(u_min, u_max, v_min, v_max) of the detector edges scaled to the isocentre plane (worst angle)."""
        nu, nv = self.detector_shape
        pu, pv = self.pixel_spacing_mm
        s = self.sad_mm / self.sid_mm
        u_lo = np.max(self.offset_u_mm - nu * pu / 2.0) * s
        u_hi = np.min(self.offset_u_mm + nu * pu / 2.0) * s
        v_lo = np.max(self.offset_v_mm - nv * pv / 2.0) * s
        v_hi = np.min(self.offset_v_mm + nv * pv / 2.0) * s
        return float(u_lo), float(u_hi), float(v_lo), float(v_hi)

    def fov_radius_mm(self) -> float:
        """Radius (mm) of the axial cylinder about the rotation axis that every line through it is measured.

        Full 360 deg scans see the larger side of an offset (half-fan) detector;
        short scans only the smaller side.
        """
        u_lo, u_hi, _, _ = self.detector_extent_at_iso_mm()
        if self.is_short_scan() or u_lo > 0 or u_hi < 0:
            half = min(abs(u_lo), abs(u_hi)) if u_lo < 0 < u_hi else 0.0
        else:
            half = max(abs(u_lo), abs(u_hi))
        # The ray tangent to the cylinder hits the iso plane at `half`: r = SAD sin(atan(half / SAD)).
        return float(self.sad_mm * np.sin(np.arctan(half / self.sad_mm)))

    def fov_half_length_mm(self) -> float:
        """Half-length (mm) along the rotation axis covered on the axis (at the isocentre plane)."""
        _, _, v_lo, v_hi = self.detector_extent_at_iso_mm()
        return float(max(0.0, min(-v_lo, v_hi)))

    def check_field(self, radius_mm: float, half_length_mm: float, tol_mm: float = 1.0) -> None:
        """Raise `DetectorTooSmallError` unless a cylinder of that radius/half-length (mm) is covered."""
        r_fov, h_fov = self.fov_radius_mm(), self.fov_half_length_mm()
        if radius_mm > r_fov + tol_mm:
            raise DetectorTooSmallError(
                f"the detector covers a field of radius {r_fov:.1f} mm but {radius_mm:.1f} mm is needed; "
                "use a wider detector, a detector offset (half-fan) with a full rotation, or a smaller grid"
            )
        if half_length_mm > h_fov + tol_mm:
            raise DetectorTooSmallError(
                f"the detector covers {2 * h_fov:.1f} mm along the rotation axis but {2 * half_length_mm:.1f} mm "
                "is needed; use a taller detector or a shorter grid"
            )


def circular_geometry(
    n_projections: int = 360,
    *,
    arc_deg: float = 360.0,
    start_deg: float = 0.0,
    sad_mm: float = 1000.0,
    sid_mm: float = 1536.0,
    detector_shape: tuple[int, int] = (512, 512),
    pixel_spacing_mm: tuple[float, float] = (0.784, 0.784),
    offset_u_mm: float = 0.0,
    offset_v_mm: float = 0.0,
) -> CBCTGeometry:
    """Evenly spaced projections over ``arc_deg`` from ``start_deg`` (the endpoint excluded for 360)."""
    if n_projections < 2:
        raise ImagingGeometryError(f"a scan needs at least 2 projections, got {n_projections}")
    if arc_deg >= 360.0 - 1e-9:
        angles = start_deg + np.arange(n_projections) * (360.0 / n_projections)
    else:
        angles = start_deg + np.linspace(0.0, arc_deg, n_projections)
    return CBCTGeometry(
        sad_mm, sid_mm, angles, detector_shape, pixel_spacing_mm, offset_u_mm=offset_u_mm, offset_v_mm=offset_v_mm
    )


def geometry_for_field(
    radius_mm: float,
    half_length_mm: float,
    *,
    n_projections: int = 360,
    pixel_at_iso_mm: float = 1.0,
    sad_mm: float = 1000.0,
    sid_mm: float = 1500.0,
    arc_deg: float = 360.0,
    half_fan: bool = False,
) -> CBCTGeometry:
    """A centred (or half-fan) circular geometry whose detector just covers the given field (mm)."""
    mag = sid_mm / sad_mm
    pu = pixel_at_iso_mm * mag
    # Tangent ray of the field cylinder hits the iso plane at r / cos(asin(r / SAD)).
    u_half = radius_mm * sad_mm / np.sqrt(max(sad_mm**2 - radius_mm**2, 1e-9)) + pixel_at_iso_mm
    # Top of the grid at the source-facing edge of the field sets the cone coverage.
    v_half = (half_length_mm + pixel_at_iso_mm) * sad_mm / max(sad_mm - radius_mm, 1e-9)
    nv = int(np.ceil(2 * v_half / pixel_at_iso_mm))
    if half_fan:
        overlap = 8.0 * pixel_at_iso_mm
        nu = int(np.ceil((u_half + overlap) / pixel_at_iso_mm))
        offset_u = (u_half - overlap) / 2.0 * mag
    else:
        nu = int(np.ceil(2 * u_half / pixel_at_iso_mm))
        offset_u = 0.0
    return circular_geometry(
        n_projections,
        arc_deg=arc_deg,
        sad_mm=sad_mm,
        sid_mm=sid_mm,
        detector_shape=(nu, nv),
        pixel_spacing_mm=(pu, pu),
        offset_u_mm=offset_u,
    )


@dataclass(frozen=True)
class PatientPlacement:
    """Where the patient lies: plan isocentre (LPS mm) at the machine isocentre, in an orientation."""

    isocentre_lps_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)
    orientation: PatientOrientation | str = PatientOrientation.HFS
    _m: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        iso = np.asarray(self.isocentre_lps_mm, dtype=float).reshape(-1)
        if iso.shape != (3,) or not np.all(np.isfinite(iso)):
            raise ImagingGeometryError(f"isocentre must be three finite LPS mm values, got {self.isocentre_lps_mm!r}")
        object.__setattr__(self, "isocentre_lps_mm", tuple(float(x) for x in iso))
        object.__setattr__(self, "orientation", PatientOrientation.parse(self.orientation))
        object.__setattr__(self, "_m", lps_to_iec_matrix(self.orientation))

    @property
    def lps_to_iec(self) -> np.ndarray:
        """3x3 rotation with ``v_iec = M v_lps``."""
        return self._m

    def to_iec(self, points_lps) -> np.ndarray:
        """IEC fixed mm of LPS points (..., 3)."""
        return (np.asarray(points_lps, dtype=float) - np.asarray(self.isocentre_lps_mm)) @ self._m.T

    def to_lps(self, points_iec) -> np.ndarray:
        """LPS mm of IEC fixed points (..., 3)."""
        return np.asarray(points_iec, dtype=float) @ self._m + np.asarray(self.isocentre_lps_mm)

    def vectors_to_lps(self, vectors_iec) -> np.ndarray:
        """LPS components of IEC direction vectors (..., 3)."""
        return np.asarray(vectors_iec, dtype=float) @ self._m


def as_placement(placement: "PatientPlacement | None", isocentre_mm=None, orientation=None) -> PatientPlacement:
    """A `PatientPlacement` from either an object or an isocentre + orientation."""
    if placement is not None:
        return placement
    return PatientPlacement(
        tuple(isocentre_mm) if isocentre_mm is not None else (0.0, 0.0, 0.0),
        orientation if orientation is not None else PatientOrientation.HFS,
    )
