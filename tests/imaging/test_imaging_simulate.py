"""CBCT simulator: noise statistics, scatter, motion blur, and the one-call daily CBCT."""

import numpy as np
import pytest

from igrt.geometry import Volume
from igrt.imaging import simulate_and_reconstruct, simulate_projections
from igrt.imaging.geometry import circular_geometry, geometry_for_field
from igrt.imaging.phantoms import bead_volume
from igrt.imaging.simulate import add_noise_and_scatter, projection_times_s


def _water_cylinder(radius_mm=40.0, shape=(24, 48, 48), spacing=2.0):
    like = Volume.centred(np.zeros(shape, np.float32), (spacing,) * 3)
    x, y, _ = like.world_coordinates()
    hu = np.where(np.hypot(x, y) < radius_mm, 0.0, -1000.0) * np.ones(like.shape)
    return like.with_array(hu.astype(np.float32))


def test_poisson_noise_variance_matches_photon_count():
    geo = circular_geometry(4, sad_mm=1000, sid_mm=1500, detector_shape=(64, 64), pixel_spacing_mm=(1.0, 1.0))
    p = np.full((4, 64, 64), 2.0, np.float32)
    i0 = 1e4
    noisy = add_noise_and_scatter(p.copy(), geo, photons_per_pixel=i0, rng=np.random.default_rng(0))
    # var(-log N/I0) ~ 1 / (I0 exp(-p)) for Poisson counts
    assert np.var(noisy) == pytest.approx(1.0 / (i0 * np.exp(-2.0)), rel=0.05)
    assert np.mean(noisy) == pytest.approx(2.0, abs=0.01)


def test_scatter_lowers_line_integrals_by_spr():
    geo = circular_geometry(2, sad_mm=1000, sid_mm=1500, detector_shape=(32, 32), pixel_spacing_mm=(1.0, 1.0))
    p = np.full((2, 32, 32), 3.0, np.float32)
    out = add_noise_and_scatter(p.copy(), geo, photons_per_pixel=None, scatter_to_primary=0.25)
    np.testing.assert_allclose(out, 3.0 - np.log(1.25), atol=1e-5)  # uniform primary: S = 0.25 P


def test_noise_is_reproducible_with_seed():
    vol = _water_cylinder()
    geo = geometry_for_field(70.0, 30.0, n_projections=8, pixel_at_iso_mm=2.0)
    a = simulate_projections(vol, geo, seed=5, photons_per_pixel=1e4)
    b = simulate_projections(vol, geo, seed=5, photons_per_pixel=1e4)
    c = simulate_projections(vol, geo, seed=6, photons_per_pixel=1e4)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 0


def test_daily_cbct_of_water_cylinder_in_hu():
    vol = _water_cylinder()
    cbct = simulate_and_reconstruct(vol, (0.0, 0.0, 0.0), seed=1, photons_per_pixel=2e5, n_projections=120)
    assert cbct.same_grid(vol)
    x, y, _ = vol.world_coordinates()
    inner = (np.hypot(x, y) < 25.0) * np.ones(vol.shape, bool)
    inner[:6], inner[-6:] = False, False
    assert abs(float(np.mean(cbct.array[inner]))) < 15.0
    assert 5.0 < float(np.std(cbct.array[inner])) < 150.0  # noisy, as a CBCT is
    scattered = simulate_and_reconstruct(vol, (0.0, 0.0, 0.0), seed=1, photons_per_pixel=None, scatter_to_primary=0.3,
                                         n_projections=120, scatter_correction=None)
    assert float(np.mean(scattered.array[inner])) < -50.0  # uncorrected scatter lowers HU (cupping)
    corrected = simulate_and_reconstruct(vol, (0.0, 0.0, 0.0), seed=1, photons_per_pixel=None, scatter_to_primary=0.3,
                                         n_projections=120)
    # the scanner's kernel correction (10 % low in ratio) removes most of it
    assert abs(float(np.mean(corrected.array[inner]))) < 0.3 * abs(float(np.mean(scattered.array[inner])))


def test_scatter_correction_inverts_an_exact_kernel():
    from igrt.imaging.simulate import add_noise_and_scatter, correct_scatter

    geo = circular_geometry(2, detector_shape=(48, 32), pixel_spacing_mm=(2.0, 2.0))
    truth = np.zeros((2, 32, 48), np.float32)
    truth[:, 8:24, 12:36] = 3.0  # a thick object: primary exp(-3)
    measured = add_noise_and_scatter(truth.copy(), geo, photons_per_pixel=None, scatter_to_primary=0.5)
    assert measured[0, 16, 24] < 2.7  # scatter raised the signal behind the object
    back = correct_scatter(measured, geo, scatter_to_primary=0.5, iterations=30)
    np.testing.assert_allclose(back, truth, atol=2e-3)


def test_breathing_motion_blurs_a_moving_bead():
    like = Volume.centred(np.zeros((32, 32, 32), np.float32), (2.0, 2.0, 2.0))
    amp_mm, period_s = 10.0, 4.0

    def volume_at(t_s: float) -> Volume:
        z = amp_mm * np.sin(2 * np.pi * t_s / period_s) ** 2  # superior-inferior excursion 0..10 mm
        return bead_volume(like, (0.0, 0.0, z), 5.0, 1000.0, background=like.with_array(np.full(like.shape, -1000, np.float32)))

    geo = geometry_for_field(45.0, 32.0, n_projections=90, pixel_at_iso_mm=2.0)
    times = projection_times_s(geo, 6.0)
    assert times[-1] == pytest.approx(356.0 / 6.0)
    static = simulate_and_reconstruct(volume_at(0.0), geometry=geo, photons_per_pixel=None)
    moving = simulate_and_reconstruct(like, geometry=geo, photons_per_pixel=None, volume_at=volume_at, gantry_speed_deg_s=6.0)
    prof_s = static.array[:, 16, 16]
    prof_m = moving.array[:, 16, 16]
    z = static.world_coordinates()[2].ravel()
    def spread(p):
        w = np.clip(p + 1000.0, 0, None)
        c = (w * z).sum() / w.sum()
        return np.sqrt((w * (z - c) ** 2).sum() / w.sum()), c
    s_static, c_static = spread(prof_s)
    s_moving, c_moving = spread(prof_m)
    assert s_moving > s_static + 1.0  # blurred along the motion
    assert c_moving == pytest.approx(c_static + amp_mm / 2, abs=1.5)  # time-averaged position
    assert float(prof_m.max()) < float(prof_s.max())
