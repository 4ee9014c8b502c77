"""Forward projection: line integrals through a `Volume` (Joseph ray casting, numba, parallel).

`cast_rays_lps` is the generic ray caster (any source point and flat detector
in LPS mm; used by DRRs). `forward_project` applies it to a `CBCTGeometry`
with the patient placed by a `PatientPlacement`.
"""

from __future__ import annotations

import weakref

import numpy as np

from igrt.geometry import Volume
from igrt.imaging._kernels import MODE_INTEGRAL, MODE_MAX, MODE_MEAN, cast_rays, cast_rays_siddon, nonzero_box
from igrt.imaging.errors import ImagingGeometryError, ProjectionDataError
from igrt.imaging.geometry import CBCTGeometry, PatientPlacement, as_placement

#: Linear attenuation coefficient of water (1/mm) at a 70 keV effective kV-CBCT energy.
MU_WATER_PER_MM = 0.0193

_MODES = {"integral": MODE_INTEGRAL, "max": MODE_MAX, "mip": MODE_MAX, "mean": MODE_MEAN, "average": MODE_MEAN}
METHODS = ("joseph", "siddon")


_DUMMY = np.zeros((2, 2, 2), np.float32)
# Slice-major copies of recently used volumes ([x, z, y] and [y, z, x]), keyed by the id of
# the source array and dropped when it is garbage collected: repeated DRRs/projections of
# one CT (2D/3D registration, a CBCT scan) pay for the copy once.
_LAYOUTS: dict[int, dict[int, np.ndarray]] = {}


def _layouts(volume: Volume, axes_needed: set[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(vx, vy, vz) float32 layouts of the volume for the dominant ray axes in ``axes_needed``."""
    src = volume.array
    if min(src.shape) < 2:
        raise ImagingGeometryError(f"ray casting needs at least 2 voxels along every axis, got {src.shape}")
    vz = np.ascontiguousarray(src, dtype=np.float32)
    key = id(src)
    cache = _LAYOUTS.get(key)
    if cache is None:
        cache = {}
        try:
            weakref.finalize(src, _LAYOUTS.pop, key, None)
        except TypeError:  # not weak-referenceable: do not cache
            key = None
        if key is not None:
            _LAYOUTS[key] = cache
    out = []
    for axis, perm in ((0, (2, 0, 1)), (1, (1, 0, 2))):
        if axis not in axes_needed:
            out.append(_DUMMY)
            continue
        arr = cache.get(axis)
        if arr is None or arr.shape != tuple(vz.shape[i] for i in perm):
            arr = np.ascontiguousarray(vz.transpose(perm))
            cache[axis] = arr
        out.append(arr)
    return out[0], out[1], vz


def _dominant_axes(src, det0, du, dv, nu, nv) -> set[int]:
    """Index axes that dominate (or nearly dominate) some ray, from a 17x17 sample of each detector.

    Axes missed here still work (the kernel falls back to strided reads), only slower.
    """
    gu, gv = np.meshgrid(np.linspace(0, nu - 1, 17), np.linspace(0, nv - 1, 17))
    d = det0[:, None, :] + gu.reshape(1, -1, 1) * du[:, None, :] + gv.reshape(1, -1, 1) * dv[:, None, :] - src[:, None, :]
    mag = np.abs(d)
    near = mag >= 0.8 * mag.max(axis=2, keepdims=True)
    return {int(a) for a in np.flatnonzero(near.any(axis=(0, 1)))}


def cast_rays_lps(
    volume: Volume,
    sources_lps,
    detector_origins_lps,
    u_steps_lps,
    v_steps_lps,
    shape: tuple[int, int],
    *,
    mode: str = "integral",
    scale: float = 1.0,
    offset: float = 0.0,
    method: str = "joseph",
) -> np.ndarray:
    """Cast rays from each source to each pixel of its flat detector; returns ``[n, nv, nu]`` float32.

    ``sources_lps``/``detector_origins_lps`` (n, 3) LPS mm: source points and the
    centre of pixel (0, 0); ``u_steps_lps``/``v_steps_lps`` (n, 3) mm: the step
    from one pixel to the next along a row (u) and a column (v); ``shape`` =
    (nu, nv). Samples are ``scale * voxel + offset`` (e.g. HU to 1/mm); ``mode``
    is ``integral`` (line integral, value x mm), ``max``/``mip`` or
    ``mean``/``average`` along the part of the ray inside the volume.
    ``method``: ``joseph`` (slice-by-slice bilinear samples, smooth) or
    ``siddon`` (exact intersection lengths with piecewise-constant voxels,
    integral mode and axis-aligned volumes only; what plastimatch's exact
    tracer computes).
    """
    if method not in METHODS:
        raise ImagingGeometryError(f"unknown ray-casting method {method!r}; use one of {METHODS}")
    if mode not in _MODES:
        raise ImagingGeometryError(f"unknown ray mode {mode!r}; use one of {sorted(_MODES)}")
    nu, nv = (int(x) for x in shape)
    if nu < 1 or nv < 1:
        raise ImagingGeometryError(f"detector shape must be positive, got {shape}")
    w2i = volume.world_to_index
    rot, tr = w2i[:3, :3], w2i[:3, 3]
    src = np.atleast_2d(np.asarray(sources_lps, float)) @ rot.T + tr
    det0 = np.atleast_2d(np.asarray(detector_origins_lps, float)) @ rot.T + tr
    du = np.atleast_2d(np.asarray(u_steps_lps, float)) @ rot.T
    dv = np.atleast_2d(np.asarray(v_steps_lps, float)) @ rot.T
    n = src.shape[0]
    for name, arr in (("detector origins", det0), ("u steps", du), ("v steps", dv)):
        if arr.shape != (n, 3):
            raise ImagingGeometryError(f"{name} must be ({n}, 3) like the sources, got {arr.shape}")
    if not all(np.all(np.isfinite(a)) for a in (src, det0, du, dv)):
        raise ImagingGeometryError("source/detector positions must be finite mm values")
    lin = np.ascontiguousarray(volume.index_to_world[:3, :3])
    out = np.empty((n, nv, nu), dtype=np.float32)
    if method == "siddon":
        if _MODES[mode] != MODE_INTEGRAL:
            raise ImagingGeometryError("the Siddon tracer computes line integrals only; use method='joseph' for MIP/mean")
        if not np.allclose(np.abs(volume.direction), np.eye(3)):
            raise ImagingGeometryError("the Siddon tracer needs an axis-aligned volume; use method='joseph'")
        vol = np.ascontiguousarray(volume.array, dtype=np.float32)
        box = nonzero_box(vol, float(scale), float(offset))  # rays skip the empty (zero) margin
        cast_rays_siddon(vol, np.ascontiguousarray(src), np.ascontiguousarray(det0), np.ascontiguousarray(du),
                         np.ascontiguousarray(dv), nu, nv, np.asarray(volume.spacing, float), float(scale),
                         float(offset), box, out)
        return out
    vx, vy, vz = _layouts(volume, _dominant_axes(src, det0, du, dv, nu, nv))
    cast_rays(
        vx,
        vy,
        vz,
        np.ascontiguousarray(src),
        np.ascontiguousarray(det0),
        np.ascontiguousarray(du),
        np.ascontiguousarray(dv),
        nu,
        nv,
        lin,
        float(scale),
        float(offset),
        _MODES[mode],
        out,
    )
    return out


def hu_to_mu_scale(mu_water_per_mm: float = MU_WATER_PER_MM) -> tuple[float, float]:
    """(scale, offset) with ``mu = scale * HU + offset`` (1/mm): mu = mu_water (1 + HU / 1000)."""
    return mu_water_per_mm / 1000.0, mu_water_per_mm


def forward_project(
    volume: Volume,
    geometry: CBCTGeometry,
    placement: PatientPlacement | None = None,
    *,
    isocentre_mm=None,
    orientation=None,
    input_hu: bool = False,
    mu_water_per_mm: float = MU_WATER_PER_MM,
    indices=None,
) -> np.ndarray:
    """Line integrals ``[n, nv, nu]`` (float32) of ``volume`` for every projection of ``geometry``.

    The volume holds attenuation in 1/mm (or HU with ``input_hu=True``, converted
    with ``mu_water_per_mm``); the result is dimensionless (-log I/I0). The
    patient is placed by ``placement`` (or ``isocentre_mm`` LPS + ``orientation``,
    default the grid origin at the isocentre, HFS). ``indices`` selects projections.
    """
    place = as_placement(placement, isocentre_mm, orientation)
    geo = geometry if indices is None else geometry.subset(indices)
    src = place.to_lps(geo.source_positions_iec())
    det0_iec, du_iec, dv_iec = geo.detector_frames_iec()
    scale, offset = hu_to_mu_scale(mu_water_per_mm) if input_hu else (1.0, 0.0)
    return cast_rays_lps(
        volume,
        src,
        place.to_lps(det0_iec),
        place.vectors_to_lps(du_iec),
        place.vectors_to_lps(dv_iec),
        geo.detector_shape,
        mode="integral",
        scale=scale,
        offset=offset,
    )


def check_projections(projections, geometry: CBCTGeometry) -> np.ndarray:
    """Validate a projection stack ``[n, nv, nu]`` against its geometry; returns it as float32."""
    p = np.asarray(projections)
    nu, nv = geometry.detector_shape
    if p.ndim != 3:
        raise ProjectionDataError(f"projections must be a 3D stack [angle, v, u], got shape {p.shape}")
    if p.shape[0] != geometry.n_projections:
        raise ProjectionDataError(
            f"{p.shape[0]} projections but the geometry describes {geometry.n_projections}; "
            "use the geometry file written with these projections"
        )
    if p.shape[1:] != (nv, nu):
        raise ProjectionDataError(
            f"projection size {p.shape[2]}x{p.shape[1]} (u x v) does not match the detector {nu}x{nv}"
        )
    p = p.astype(np.float32, copy=False)
    if not np.all(np.isfinite(p)):
        bad = int(np.count_nonzero(~np.isfinite(p).reshape(p.shape[0], -1).all(axis=1)))
        raise ProjectionDataError(
            f"projections hold NaN/inf values in {bad} of {p.shape[0]} images; "
            "fix the log-normalisation (no zero/negative intensities) or drop the bad images"
        )
    return p
