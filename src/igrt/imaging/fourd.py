"""4D-CBCT: sort projections into respiratory phase bins by a breathing signal, reconstruct each bin.

Phase is assigned per breathing cycle: cycles start at end-inhale peaks of the
signal (local maxima), phase runs linearly 0 -> 1 from one peak to the next
(the usual phase-binning of clinical 4D-CBCT). Each bin is reconstructed with
FDK from its own projections; the angular weights of FDK follow the actual
(irregular) gantry angles of the bin.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from igrt.geometry import Volume
from igrt.imaging.errors import ProjectionDataError
from igrt.imaging.fdk import ReconGrid, fdk
from igrt.imaging.geometry import CBCTGeometry, PatientPlacement
from igrt.imaging.projector import check_projections


def breathing_phase(signal_times_s, signal, min_period_s: float = 1.5) -> Callable[[np.ndarray], np.ndarray]:
    """A function t_s -> phase in [0, 1) from a sampled breathing signal (peaks = end-inhale = phase 0).

    ``min_period_s`` suppresses noise peaks closer together than that.
    """
    t = np.asarray(signal_times_s, float)
    s = np.asarray(signal, float)
    if t.ndim != 1 or t.shape != s.shape or t.size < 3:
        raise ProjectionDataError("the breathing signal needs matching 1D times and values (at least 3 samples)")
    if np.any(np.diff(t) <= 0):
        raise ProjectionDataError("breathing signal times must increase strictly")
    is_peak = np.r_[False, (s[1:-1] >= s[:-2]) & (s[1:-1] > s[2:]), False]
    peaks: list[int] = []
    for i in np.flatnonzero(is_peak):
        if peaks and t[i] - t[peaks[-1]] < min_period_s:
            if s[i] > s[peaks[-1]]:
                peaks[-1] = i
            continue
        peaks.append(int(i))
    if len(peaks) < 2:
        raise ProjectionDataError("the breathing signal shows fewer than two breathing cycles; cannot bin by phase")
    tp = t[peaks]

    def phase(times_s: np.ndarray) -> np.ndarray:
        q = np.asarray(times_s, float)
        k = np.clip(np.searchsorted(tp, q, side="right") - 1, 0, len(tp) - 2)
        # before the first / after the last peak: extend the neighbouring cycle's period
        ph = (q - tp[k]) / (tp[k + 1] - tp[k])
        return np.mod(ph, 1.0)

    return phase


def phase_bins(phases: np.ndarray, n_bins: int) -> list[np.ndarray]:
    """Projection indices of each phase bin (bin b holds phases in [b/n, (b+1)/n))."""
    if n_bins < 1:
        raise ProjectionDataError(f"need at least one phase bin, got {n_bins}")
    b = np.minimum((np.asarray(phases) * n_bins).astype(int), n_bins - 1)
    return [np.flatnonzero(b == i) for i in range(n_bins)]


def reconstruct_4d(
    projections: np.ndarray,
    geometry: CBCTGeometry,
    projection_phases: np.ndarray,
    grid: ReconGrid | Volume,
    placement: PatientPlacement | None = None,
    *,
    n_bins: int = 10,
    window: str = "hann",
    **fdk_kwargs,
) -> list[Volume]:
    """One FDK Volume per phase bin (bin 0 = end-inhale), each from the projections in that bin."""
    proj = check_projections(projections, geometry)
    phases = np.asarray(projection_phases, float)
    if phases.shape != (geometry.n_projections,):
        raise ProjectionDataError(f"need one phase per projection ({geometry.n_projections}), got {phases.shape}")
    out = []
    for b, idx in enumerate(phase_bins(phases, n_bins)):
        if idx.size < 8:
            raise ProjectionDataError(
                f"phase bin {b} holds only {idx.size} projections; use fewer bins or a longer scan"
            )
        out.append(fdk(proj[idx], geometry.subset(idx), grid, placement, window=window, **fdk_kwargs))
    return out
