"""CBCT simulator: projections of a CT (HU) with noise, scatter and motion, and a one-call daily CBCT.

Physics (deliberately simple and documented): mono-energetic attenuation
``mu = mu_water (1 + HU / 1000)``; primary fluence ``I0 exp(-p)``; scatter as a
broad low-pass (Gaussian, ``scatter_sigma_mm`` on the detector) of the primary
times a scatter-to-primary ratio; Poisson counting noise for ``I0`` photons per
pixel in air; log-normalisation ``-log(N / I0)`` gives the line integrals that
`fdk` reconstructs. Motion: ``volume_at(t_s)`` gives the anatomy at time t
while the gantry turns at ``gantry_speed_deg_s``, so breathing blurs a moving
tumour as in free-breathing CBCT.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from scipy.ndimage import gaussian_filter

from igrt.geometry import Volume
from igrt.imaging.errors import ImagingGeometryError, ProjectionDataError
from igrt.imaging.fdk import ReconGrid, fdk
from igrt.imaging.geometry import CBCTGeometry, PatientPlacement, as_placement, geometry_for_field
from igrt.imaging.projector import MU_WATER_PER_MM, forward_project


SCATTER_SIGMA_MM = 40.0  # width of the scatter kernel on the detector


def projection_times_s(geometry: CBCTGeometry, gantry_speed_deg_s: float) -> np.ndarray:
    """Acquisition time (s) of each projection from the gantry angle travelled since the first one."""
    if not gantry_speed_deg_s > 0:
        raise ImagingGeometryError(f"gantry speed must be > 0 deg/s, got {gantry_speed_deg_s}")
    # projections are in acquisition order; the shortest signed step between neighbours is the travel
    travelled = np.concatenate([[0.0], np.cumsum(np.abs((np.diff(geometry.angles_deg) + 180.0) % 360.0 - 180.0))])
    return travelled / gantry_speed_deg_s


def _detector_blur(image: np.ndarray, geometry: CBCTGeometry, sigma_mm: float) -> np.ndarray:
    """The scatter kernel: a Gaussian low-pass of one projection (sigma in detector mm)."""
    pu, pv = geometry.pixel_spacing_mm
    return gaussian_filter(image, (sigma_mm / pv, sigma_mm / pu), mode="nearest")


def correct_scatter(
    line_integrals: np.ndarray,
    geometry: CBCTGeometry,
    *,
    scatter_to_primary: float,
    scatter_sigma_mm: float = SCATTER_SIGMA_MM,
    iterations: int = 4,
    min_primary_fraction: float = 0.01,
) -> np.ndarray:
    """Kernel-based scatter correction of measured line integrals (modified in place, returned).

    What a scanner's reconstruction does before FDK: estimate the scatter as a
    low-pass of the primary (``scatter_to_primary`` x Gaussian of
    ``scatter_sigma_mm``), found by fixed-point iteration on the measured
    signal, and subtract it. The primary is kept at ``min_primary_fraction`` of
    the signal at least, so noise in the darkest pixels cannot go negative.
    """
    if scatter_to_primary < 0 or iterations < 1:
        raise ProjectionDataError("scatter correction needs a ratio >= 0 and at least one iteration")
    if scatter_to_primary == 0:
        return line_integrals
    for i in range(line_integrals.shape[0]):
        signal = np.exp(-line_integrals[i].astype(np.float64))
        primary = signal
        for _ in range(iterations):
            scatter = scatter_to_primary * _detector_blur(primary, geometry, scatter_sigma_mm)
            primary = np.maximum(signal - scatter, min_primary_fraction * signal)
        line_integrals[i] = -np.log(primary)
    return line_integrals


def add_noise_and_scatter(
    line_integrals: np.ndarray,
    geometry: CBCTGeometry,
    *,
    photons_per_pixel: float | None = 1e5,
    scatter_to_primary: float = 0.0,
    scatter_sigma_mm: float = SCATTER_SIGMA_MM,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Measured line integrals ``-log(N / I0)`` from ideal ones ``[n, nv, nu]`` (modified in place, returned)."""
    if photons_per_pixel is None and scatter_to_primary <= 0:
        return line_integrals
    if photons_per_pixel is not None and not photons_per_pixel > 0:
        raise ProjectionDataError(f"photons per pixel (I0) must be > 0, got {photons_per_pixel}")
    if scatter_to_primary < 0:
        raise ProjectionDataError(f"scatter-to-primary ratio must be >= 0, got {scatter_to_primary}")
    rng = rng if rng is not None else np.random.default_rng()
    for i in range(line_integrals.shape[0]):  # one projection at a time keeps memory to one stack
        primary = np.exp(-line_integrals[i].astype(np.float64))
        signal = primary
        if scatter_to_primary > 0:
            signal = primary + scatter_to_primary * _detector_blur(primary, geometry, scatter_sigma_mm)
        if photons_per_pixel is not None:
            counts = rng.poisson(signal * photons_per_pixel).astype(np.float64)
            # a zero count has no logarithm: clamp to half a photon, as detector software does
            signal = np.maximum(counts, 0.5) / photons_per_pixel
        line_integrals[i] = -np.log(signal)
    return line_integrals


def simulate_projections(
    volume_hu: Volume | None,
    geometry: CBCTGeometry,
    placement: PatientPlacement | None = None,
    *,
    isocentre_mm=None,
    orientation=None,
    mu_water_per_mm: float = MU_WATER_PER_MM,
    photons_per_pixel: float | None = 1e5,
    scatter_to_primary: float = 0.0,
    scatter_sigma_mm: float = SCATTER_SIGMA_MM,
    seed: int | None = None,
    volume_at: Callable[[float], Volume] | None = None,
    gantry_speed_deg_s: float = 6.0,
    motion_time_step_s: float | None = 0.2,
    progress: Callable[[float], None] | None = None,
) -> np.ndarray:
    """Simulated CBCT projections (line integrals ``[n, nv, nu]`` float32) of a CT in HU.

    Static anatomy: ``volume_hu``. Moving anatomy: ``volume_at(t_s) -> Volume``
    (HU) is called once per time step of ``motion_time_step_s`` (None: once per
    projection) while the gantry turns at ``gantry_speed_deg_s`` (Elekta/Varian
    CBCT: ~6 deg/s, a 360 deg scan in 60 s). ``photons_per_pixel`` None gives
    noiseless data. ``seed`` makes the noise reproducible.
    """
    place = as_placement(placement, isocentre_mm, orientation)
    if volume_hu is None and volume_at is None:
        raise ImagingGeometryError("give a CT volume (HU) or a volume_at(t_s) callable")
    if volume_at is None:
        proj = forward_project(volume_hu, geometry, place, input_hu=True, mu_water_per_mm=mu_water_per_mm)
        if progress is not None:
            progress(0.8)
    else:
        times = projection_times_s(geometry, gantry_speed_deg_s)
        keys = np.round(times / motion_time_step_s).astype(int) if motion_time_step_s else np.arange(times.size)
        nu, nv = geometry.detector_shape
        proj = np.empty((geometry.n_projections, nv, nu), dtype=np.float32)
        uniq = np.unique(keys)
        for j, key in enumerate(uniq):
            idx = np.flatnonzero(keys == key)
            t_s = float(key * motion_time_step_s) if motion_time_step_s else float(times[idx[0]])
            vol = volume_at(t_s)
            proj[idx] = forward_project(vol, geometry, place, input_hu=True, mu_water_per_mm=mu_water_per_mm, indices=idx)
            if progress is not None:
                progress(0.8 * (j + 1) / uniq.size)
    rng = np.random.default_rng(seed)
    add_noise_and_scatter(
        proj,
        geometry,
        photons_per_pixel=photons_per_pixel,
        scatter_to_primary=scatter_to_primary,
        scatter_sigma_mm=scatter_sigma_mm,
        rng=rng,
    )
    if progress is not None:
        progress(1.0)
    return proj


def default_geometry_for(
    grid: ReconGrid,
    placement: PatientPlacement,
    *,
    n_projections: int = 180,
    pixel_at_iso_mm: float | None = None,
    arc_deg: float = 360.0,
) -> CBCTGeometry:
    """A centred circular geometry (SAD 1000, SID 1500 mm) whose detector covers the whole grid."""
    d = np.asarray(grid.direction, float)
    size = np.asarray(grid.size_xyz, float)
    corners = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)], float) * (size - 1)
    lps = corners @ (d @ np.diag(grid.spacing)).T + np.asarray(grid.origin)
    iec = placement.to_iec(lps)
    radius = float(np.max(np.hypot(iec[:, 0], iec[:, 2])))
    half_length = float(np.max(np.abs(iec[:, 1])))
    pix = pixel_at_iso_mm if pixel_at_iso_mm is not None else float(min(grid.spacing))
    return geometry_for_field(radius, half_length, n_projections=n_projections, pixel_at_iso_mm=pix, arc_deg=arc_deg)


def simulate_and_reconstruct(
    volume_hu: Volume,
    isocentre_mm=(0.0, 0.0, 0.0),
    geometry: CBCTGeometry | None = None,
    grid: "ReconGrid | Volume | None" = None,
    *,
    orientation="HFS",
    photons_per_pixel: float | None = 1e5,
    scatter_to_primary: float = 0.0,
    seed: int | None = None,
    volume_at: Callable[[float], Volume] | None = None,
    gantry_speed_deg_s: float = 6.0,
    n_projections: int = 180,
    window: str = "shepp-logan",
    mu_water_per_mm: float = MU_WATER_PER_MM,
    scatter_correction: tuple[float, float] | None = (0.9, 1.0),
    progress: Callable[[float], None] | None = None,
) -> Volume:
    """A daily CBCT in HU: simulate projections of ``volume_hu`` and reconstruct them with FDK.

    The plan isocentre ``isocentre_mm`` (LPS) sits at the machine isocentre,
    patient in ``orientation``. ``grid`` defaults to the input volume's grid;
    ``geometry`` defaults to a full-rotation scan of ``n_projections`` whose
    detector covers that grid (no truncation). Noise: ``photons_per_pixel`` (None
    for none); scatter: ``scatter_to_primary`` (0.1-0.5 is clinical for kV CBCT,
    it causes cupping and lowers HU); motion: ``volume_at(t_s)`` as in
    `simulate_projections`. ``seed`` makes it reproducible.

    ``scatter_correction`` = (ratio factor, width factor): the scanner's kernel
    correction (`correct_scatter`) is applied with the simulated scatter ratio
    and kernel width scaled by these, since a scanner's kernel never matches the
    patient exactly; None reconstructs uncorrected projections.
    """
    place = PatientPlacement(tuple(np.asarray(isocentre_mm, float)), orientation)
    if grid is None:
        grid = ReconGrid.like(volume_hu if volume_hu is not None else volume_at(0.0))
    elif isinstance(grid, Volume):
        grid = ReconGrid.like(grid)
    if geometry is None:
        geometry = default_geometry_for(grid, place, n_projections=n_projections)

    def sim_progress(f: float) -> None:
        if progress is not None:
            progress(0.5 * f)

    def rec_progress(f: float) -> None:
        if progress is not None:
            progress(0.5 + 0.5 * f)

    proj = simulate_projections(
        volume_hu,
        geometry,
        place,
        mu_water_per_mm=mu_water_per_mm,
        photons_per_pixel=photons_per_pixel,
        scatter_to_primary=scatter_to_primary,
        seed=seed,
        volume_at=volume_at,
        gantry_speed_deg_s=gantry_speed_deg_s,
        progress=sim_progress,
    )
    if scatter_correction is not None and scatter_to_primary > 0:
        ratio_factor, width_factor = scatter_correction
        correct_scatter(proj, geometry, scatter_to_primary=scatter_to_primary * ratio_factor,
                        scatter_sigma_mm=SCATTER_SIGMA_MM * width_factor)
    return fdk(
        proj,
        geometry,
        grid,
        place,
        window=window,
        mu_water_per_mm=mu_water_per_mm,
        progress=rec_progress if progress is not None else None,
    )
