"""The day's image of a phantom patient: a free-breathing CBCT of the day's anatomy."""

from __future__ import annotations

import numpy as np

from igrt.geometry import Volume
from igrt.imaging import simulate_and_reconstruct
from igrt.phantom import FractionTruth, daily_anatomy
from igrt.phantom.breathing import breathing_phase_angle

PHASE_BINS = 10  # breathing phases simulated during a free-breathing CBCT


def simulate_daily_cbct(
    patient,
    truth: FractionTruth,
    *,
    n_projections: int = 180,
    photons_per_pixel: float | None = 2e4,
    scatter_to_primary: float = 0.0,
    grid: Volume | None = None,
    seed: int = 0,
) -> Volume:
    """A CBCT (HU, on ``grid``, default the planning grid) of the patient as set up on this day.

    The anatomy carries the day's setup error and organ changes; when the day
    has breathing motion the patient breathes while the gantry turns (each
    moment imaged from the nearest of `PHASE_BINS` precomputed phases), which
    blurs the moving tumour as in free-breathing CBCT.
    """
    volume_at = None
    if np.any(np.asarray(truth.breathing.amplitude_mm) != 0):
        phases: dict[int, Volume] = {}

        def volume_at(t_s: float) -> Volume:
            theta = float(breathing_phase_angle(truth.breathing, t_s)[0])
            b = int(round((theta / np.pi) % 1.0 * PHASE_BINS)) % PHASE_BINS
            if b not in phases:
                phases[b] = daily_anatomy(patient, truth, phase=b / PHASE_BINS)
            return phases[b]

    return simulate_and_reconstruct(
        None if volume_at else daily_anatomy(patient, truth),
        isocentre_mm=patient.isocentre_mm,
        grid=patient.ct if grid is None else grid,
        n_projections=n_projections,
        photons_per_pixel=photons_per_pixel,
        scatter_to_primary=scatter_to_primary,
        volume_at=volume_at,
        seed=seed,
    )
