"""Digitally reconstructed radiographs (DRRs) for any source / flat-detector pose.

`drr` casts rays from a point source to every pixel of a flat detector given
in LPS mm (the same Joseph ray caster as the CBCT projector). Builders give
the poses of common imagers, described in IEC 61217 fixed coordinates and
placed on the patient with a `PatientPlacement` (plan isocentre at the
machine isocentre):

* `gantry_kv_pose`: a gantry-mounted kV imager at any gantry angle (the kV
  source sits ``kv_offset_deg`` from the treatment head, 90 deg on common linacs).
* `stereo_kv_pair`: an ExacTrac-like room-mounted oblique pair, two floor
  tubes at +/- ``tube_angle_deg`` from vertical in the transverse plane,
  flat panels in the ceiling opposite them.

Images are arrays ``[v row, u column]``: line integrals of attenuation
(``mode="integral"``, dimensionless), maximum (``"mip"``) or mean (``"mean"``)
of the voxel values (HU when the volume is in HU) along each ray.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from igrt.geometry import Volume
from igrt.imaging.errors import ImagingGeometryError
from igrt.imaging.geometry import CBCTGeometry, PatientPlacement, as_placement
from igrt.imaging.projector import MU_WATER_PER_MM, cast_rays_lps, hu_to_mu_scale


@dataclass(frozen=True, eq=False)
class DRRPose:
    """A point source and a flat detector in LPS mm.

    ``detector_centre_mm`` is the centre of the detector; ``u``/``v`` unit
    vectors along a row (increasing column) and down the columns (increasing
    row); ``shape`` (nu, nv) pixels of ``spacing_mm`` (pu, pv).
    """

    source_mm: np.ndarray
    detector_centre_mm: np.ndarray
    u: np.ndarray
    v: np.ndarray
    shape: tuple[int, int] = (512, 512)
    spacing_mm: tuple[float, float] = (0.5, 0.5)
    name: str = "kV"

    def __post_init__(self) -> None:
        for name in ("source_mm", "detector_centre_mm", "u", "v"):
            arr = np.asarray(getattr(self, name), float).reshape(-1)
            if arr.shape != (3,) or not np.all(np.isfinite(arr)):
                raise ImagingGeometryError(f"DRR {name} must be three finite numbers, got {getattr(self, name)!r}")
            object.__setattr__(self, name, arr)
        nu, nv = (int(x) for x in self.shape)
        pu, pv = (float(x) for x in self.spacing_mm)
        if nu < 1 or nv < 1 or not (pu > 0 and pv > 0):
            raise ImagingGeometryError(f"DRR detector needs positive size and spacing, got {self.shape}, {self.spacing_mm}")
        object.__setattr__(self, "shape", (nu, nv))
        object.__setattr__(self, "spacing_mm", (pu, pv))
        u = self.u / np.linalg.norm(self.u)
        v = self.v / np.linalg.norm(self.v)
        if abs(float(u @ v)) > 1e-6:
            raise ImagingGeometryError("DRR detector axes u and v must be perpendicular")
        object.__setattr__(self, "u", u)
        object.__setattr__(self, "v", v)
        normal = np.cross(u, v)
        dist = float((self.source_mm - self.detector_centre_mm) @ normal)
        if abs(dist) < 1e-6:
            raise ImagingGeometryError("the DRR source lies in the detector plane; move it off the panel")

    @property
    def source_to_detector_mm(self) -> float:
        return float(abs((self.source_mm - self.detector_centre_mm) @ np.cross(self.u, self.v)))

    @property
    def pixel00_mm(self) -> np.ndarray:
        """LPS centre of pixel (0, 0)."""
        nu, nv = self.shape
        pu, pv = self.spacing_mm
        return self.detector_centre_mm - (nu - 1) / 2.0 * pu * self.u - (nv - 1) / 2.0 * pv * self.v

    @classmethod
    def from_iec(
        cls,
        source_iec,
        detector_centre_iec,
        u_iec,
        v_iec,
        placement: PatientPlacement,
        shape=(512, 512),
        spacing_mm=(0.5, 0.5),
        name: str = "kV",
    ) -> "DRRPose":
        """A pose given in IEC fixed mm about the isocentre, placed on the patient."""
        return cls(
            placement.to_lps(np.asarray(source_iec, float)),
            placement.to_lps(np.asarray(detector_centre_iec, float)),
            placement.vectors_to_lps(np.asarray(u_iec, float)),
            placement.vectors_to_lps(np.asarray(v_iec, float)),
            shape,
            spacing_mm,
            name,
        )


def drr(
    volume: Volume,
    source_mm,
    detector_centre_mm,
    detector_u,
    detector_v,
    shape=(512, 512),
    spacing_mm=(0.5, 0.5),
    *,
    mode: str = "integral",
    input_hu: bool = True,
    mu_water_per_mm: float = MU_WATER_PER_MM,
    method: str = "joseph",
) -> np.ndarray:
    """DRR ``[nv, nu]`` float32 of ``volume`` for a source and flat detector given in LPS mm.

    ``mode="integral"``: line integral of attenuation, HU converted with
    ``mu_water_per_mm`` when ``input_hu`` (else the voxel values are used as
    1/mm). ``"mip"``/``"mean"``: maximum / average voxel value along the ray.
    ``method``: ``joseph`` (bilinear, smooth; default) or ``siddon`` (exact
    lengths through piecewise-constant voxels, integral only).
    """
    pose = DRRPose(source_mm, detector_centre_mm, detector_u, detector_v, shape, spacing_mm)
    return render(volume, pose, mode=mode, input_hu=input_hu, mu_water_per_mm=mu_water_per_mm, method=method)


def render(
    volume: Volume,
    pose: DRRPose,
    *,
    mode: str = "integral",
    input_hu: bool = True,
    mu_water_per_mm: float = MU_WATER_PER_MM,
    method: str = "joseph",
) -> np.ndarray:
    """DRR ``[nv, nu]`` of ``volume`` for one `DRRPose` (see `drr`; ``method`` joseph or siddon)."""
    scale, offset = hu_to_mu_scale(mu_water_per_mm) if (input_hu and mode == "integral") else (1.0, 0.0)
    pu, pv = pose.spacing_mm
    img = cast_rays_lps(
        volume,
        pose.source_mm[None],
        pose.pixel00_mm[None],
        (pose.u * pu)[None],
        (pose.v * pv)[None],
        pose.shape,
        mode=mode,
        scale=scale,
        offset=offset,
        method=method,
    )
    return img[0]


def gantry_kv_pose(
    gantry_deg: float,
    placement: PatientPlacement | None = None,
    *,
    isocentre_mm=None,
    orientation=None,
    kv_offset_deg: float = 90.0,
    sad_mm: float = 1000.0,
    sid_mm: float = 1500.0,
    shape=(512, 512),
    spacing_mm=(0.784, 0.784),
) -> DRRPose:
    """Pose of a gantry-mounted kV imager when the gantry is at ``gantry_deg``.

    The kV source sits at gantry angle ``gantry_deg + kv_offset_deg`` (use 0
    for a beam's-eye-view / MV portal geometry); the panel is opposite it.
    Detector u/v follow `CBCTGeometry` (u along e_u, v toward the gantry, IEC +Y).
    """
    place = as_placement(placement, isocentre_mm, orientation)
    geo = CBCTGeometry(sad_mm, sid_mm, [gantry_deg + kv_offset_deg], tuple(shape), tuple(spacing_mm))
    eu, ev, es = geo.rotated_axes()
    return DRRPose.from_iec(
        geo.source_positions_iec()[0],
        (sad_mm - sid_mm) * es[0],
        eu[0],
        ev[0],
        place,
        shape,
        spacing_mm,
        name=f"kV gantry {gantry_deg:g}",
    )


def stereo_kv_pair(
    placement: PatientPlacement | None = None,
    *,
    isocentre_mm=None,
    orientation=None,
    tube_angle_deg: float = 45.0,
    source_to_iso_mm: float = 2240.0,
    source_to_detector_mm: float = 3620.0,
    shape=(512, 512),
    spacing_mm=(0.4, 0.4),
) -> tuple[DRRPose, DRRPose]:
    """ExacTrac-like oblique pair: floor tubes at -/+ ``tube_angle_deg`` from vertical, panels in the ceiling.

    Tube 1 sits below the couch toward IEC -X (beam going up and toward +X),
    tube 2 toward +X; both central rays pass through the isocentre. Panel u
    lies in the transverse (XZ) plane, v along IEC +Y (toward the gantry).
    """
    place = as_placement(placement, isocentre_mm, orientation)
    if not 0 < source_to_iso_mm < source_to_detector_mm:
        raise ImagingGeometryError("need 0 < source-to-isocentre < source-to-detector distance (mm)")
    poses = []
    for sign, name in ((-1.0, "tube 1 (-X)"), (1.0, "tube 2 (+X)")):
        a = np.deg2rad(tube_angle_deg)
        to_source = np.array([sign * np.sin(a), 0.0, -np.cos(a)])  # unit vector iso -> tube (below the couch)
        source = source_to_iso_mm * to_source
        det_centre = -(source_to_detector_mm - source_to_iso_mm) * to_source
        v = np.array([0.0, 1.0, 0.0])
        u = np.cross(v, to_source)  # horizontal-ish axis of the panel, perpendicular to the beam
        poses.append(DRRPose.from_iec(source, det_centre, u, v, place, shape, spacing_mm, name=name))
    return poses[0], poses[1]
