"""4D-CBCT: phase from a breathing signal, binning, per-bin reconstruction of a moving bead."""

import numpy as np
import pytest

from igrt.geometry import Volume
from igrt.imaging import ProjectionDataError, ReconGrid, simulate_projections
from igrt.imaging.fourd import breathing_phase, phase_bins, reconstruct_4d
from igrt.imaging.geometry import geometry_for_field
from igrt.imaging.phantoms import bead_volume
from igrt.imaging.simulate import projection_times_s


def test_phase_from_signal_peaks():
    t = np.linspace(0, 20, 2001)
    sig = np.cos(2 * np.pi * t / 4.0)  # peaks at 0, 4, 8, ... s
    phase = breathing_phase(t, sig)
    np.testing.assert_allclose(phase(np.array([4.0, 5.0, 6.0, 7.9])), [0.0, 0.25, 0.5, 0.975], atol=0.01)
    bins = phase_bins(phase(np.array([4.0, 5.0, 6.0, 7.0])), 4)
    assert [b.tolist() for b in bins] == [[0], [1], [2], [3]]
    with pytest.raises(ProjectionDataError, match="cycles"):
        breathing_phase(t[:100], sig[:100])


def test_4d_bins_separate_inhale_and_exhale_positions():
    like = Volume.centred(np.zeros((28, 28, 28), np.float32), (2.0, 2.0, 2.0))
    background = like.with_array(np.full(like.shape, -1000.0, np.float32))
    amp, period = 12.0, 4.0

    def z_of(t_s):
        return amp * np.cos(np.pi * t_s / period) ** 2 - amp / 2  # +6 mm at end-inhale (t = 0, 4, ...), -6 at exhale

    def volume_at(t_s):
        return bead_volume(like, (0.0, 0.0, z_of(t_s)), 4.0, 1000.0, background=background)

    geo = geometry_for_field(40.0, 28.0, n_projections=240, pixel_at_iso_mm=2.0)
    proj = simulate_projections(None, geo, photons_per_pixel=None, volume_at=volume_at, gantry_speed_deg_s=6.0,
                                motion_time_step_s=0.25)
    times = projection_times_s(geo, 6.0)
    t_sig = np.linspace(0, times[-1] + 1, 4000)
    phase = breathing_phase(t_sig, z_of(t_sig))(times)
    vols = reconstruct_4d(proj, geo, phase, ReconGrid.like(like), n_bins=4, window="ram-lak")
    z = like.world_coordinates()[2].ravel()

    def bead_z(v):
        prof = np.clip(v.array[:, 13:15, 13:15].mean(axis=(1, 2)) + 1000.0, 0, None)
        prof[prof < 0.3 * prof.max()] = 0
        return float((prof * z).sum() / prof.sum())

    zs = [bead_z(v) for v in vols]
    # bin 0 (phase 0-0.25: near end-inhale) is superior of bin 2 (around end-exhale) by most of the amplitude
    assert zs[0] - zs[2] > 0.6 * amp
    with pytest.raises(ProjectionDataError, match="bin"):
        reconstruct_4d(proj, geo, phase, ReconGrid.like(like), n_bins=40)
