"""Population setup errors, breathing model and course reproducibility."""

import numpy as np
import pytest

from igrt.phantom import (
    BreathingParams,
    CourseConfig,
    PhantomError,
    SetupErrorModel,
    breathing_displacement_mm,
    displacement_at_phase_mm,
    sample_population,
    simulate_course,
    target_position_mm,
)
from igrt.phantom.breathing import breathing_phase_angle


def _sigma_stats(errors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(Sigma, sigma) per axis from (patients, fractions, 3) errors, van Herk's estimators."""
    n_fx = errors.shape[1]
    means = errors.mean(axis=1)
    sds = errors.std(axis=1, ddof=1)
    sigma = np.sqrt(np.mean(sds**2, axis=0))
    # the SD of patient means also holds sigma^2 / F of random error; remove it
    big_sigma = np.sqrt(np.maximum(means.std(axis=0, ddof=1) ** 2 - sigma**2 / n_fx, 0.0))
    return big_sigma, sigma


def test_population_reproduces_sigma_and_sigma():
    model = SetupErrorModel(systematic_translation_sd_mm=(2.0, 3.0, 1.0), random_translation_sd_mm=(2.5, 1.5, 3.0),
                            systematic_rotation_sd_deg=(0.5, 1.0, 0.8), random_rotation_sd_deg=(1.0, 0.6, 0.4))
    n_pat, n_fx = 400, 20
    pop = sample_population(n_pat, n_fx, CourseConfig(setup=model), seed=12)
    for errors, sys_sd, rnd_sd in ((pop.translation_mm, model.systematic_translation_sd_mm, model.random_translation_sd_mm),
                                   (pop.rotation_deg, model.systematic_rotation_sd_deg, model.random_rotation_sd_deg)):
        big, small = _sigma_stats(errors)
        # standard errors of an SD estimate: s / sqrt(2 (n - 1)); allow 4 of them (plus the sigma^2/F correction)
        se_big = np.asarray(sys_sd) / np.sqrt(2 * (n_pat - 1)) + np.asarray(rnd_sd) / np.sqrt(n_fx * 2 * (n_pat - 1))
        se_small = np.asarray(rnd_sd) / np.sqrt(2 * n_pat * (n_fx - 1))
        assert np.all(np.abs(big - sys_sd) <= 4 * se_big), (big, sys_sd)
        assert np.all(np.abs(small - rnd_sd) <= 4 * se_small), (small, rnd_sd)
        assert np.all(np.abs(errors.mean(axis=(0, 1))) <= 4 * (np.asarray(sys_sd) / np.sqrt(n_pat)))


def test_population_is_seeded():
    a = sample_population(5, 4, seed=3)
    b = sample_population(5, 4, seed=3)
    c = sample_population(5, 4, seed=4)
    assert np.array_equal(a.translation_mm, b.translation_mm) and np.array_equal(a.rotation_deg, b.rotation_deg)
    assert not np.array_equal(a.translation_mm, c.translation_mm)
    with pytest.raises(PhantomError):
        sample_population(0, 3)


@pytest.mark.parametrize("site", ["lung", "pelvis"])
def test_course_truth_is_consistent_and_reproducible(site, lung_small, pelvis):
    p = lung_small if site == "lung" else pelvis
    course = simulate_course(p, seed=21)
    assert len(course.fractions) == p.plan.fractions  # default: the plan's fractions
    again = simulate_course(p, seed=21)
    other = simulate_course(p, seed=22)
    for f, g in zip(course.fractions, again.fractions):
        assert f.setup_error.is_close(g.setup_error, 0.0, 0.0) and f.breathing == g.breathing
        assert f.target_shift_mm == g.target_shift_mm and f.pelvis == g.pelvis
    assert not course.fractions[0].setup_error.is_close(other.fractions[0].setup_error)
    iso = np.asarray(p.isocentre_mm)
    for f in course.fractions:
        t, r = f.setup_error.params(iso)
        np.testing.assert_allclose(t, f.setup_translation_mm, atol=1e-9)
        np.testing.assert_allclose(r, f.setup_rotation_deg, atol=1e-9)
        np.testing.assert_allclose(np.add(course.systematic_translation_mm, f.random_translation_mm), f.setup_translation_mm)
        # the isocentre moves by exactly the setup translation (rotations are about it)
        np.testing.assert_allclose(f.setup_error.apply(iso), iso + np.asarray(f.setup_translation_mm), atol=1e-9)
    if site == "lung":
        factors = [f.tumour_volume_factor for f in course.fractions]
        assert factors[0] == 1.0 and all(np.diff(factors) < 0)  # the tumour shrinks over the course
    else:
        vols = np.array([f.pelvis.bladder_volume_cc for f in course.fractions])
        assert vols.std() > 10.0  # fillings vary from day to day
        for f in course.fractions:
            assert f.pelvis.bladder_scale == pytest.approx((f.pelvis.bladder_volume_cc / p.config.bladder_volume_cc) ** (1 / 3))
            assert f.target_shift_mm == f.pelvis.prostate_shift_mm


def test_regular_breathing_has_the_configured_amplitude():
    params = BreathingParams(amplitude_mm=(1.5, -3.0, -12.0), period_s=4.2, n=3, phase_rad=0.4)
    t = np.linspace(0.0, 60.0, 60001)
    d = breathing_displacement_mm(params, t)
    np.testing.assert_allclose(d.max(axis=0) - d.min(axis=0), [1.5, 3.0, 12.0], atol=1e-3)
    # end-exhale (zero displacement) is the planning position; the inhale peak is the signed amplitude
    np.testing.assert_allclose(displacement_at_phase_mm(params, [0.0, 0.5]), [[1.5, -3.0, -12.0], [0.0, 0.0, 0.0]], atol=1e-12)
    # period: the displacement repeats after tau
    np.testing.assert_allclose(breathing_displacement_mm(params, t[:500] + 4.2), d[:500], atol=1e-9)
    # Lujan: more time near exhale than near inhale for n > 1
    assert np.mean(np.abs(d[:, 2]) < 6.0) > 0.6


def test_drift_and_irregularity():
    params = BreathingParams(amplitude_mm=(0.0, 0.0, -10.0), period_s=4.0, drift_mm_per_s=(0.0, 0.01, -0.02))
    d = breathing_displacement_mm(params, [0.0, 100.0])
    np.testing.assert_allclose(d[1] - d[0], [0.0, 1.0, -2.0], atol=1e-9)  # 100 s at the drift rate (same phase)
    irr = BreathingParams(amplitude_mm=(0.0, 0.0, -10.0), period_s=4.0, irregularity=0.2, irregularity_seed=5)
    t = np.linspace(0.0, 400.0, 200001)
    theta = breathing_phase_angle(irr, t)
    assert np.all(np.diff(theta) > 0)  # cycles never run backwards
    z = breathing_displacement_mm(irr, t)[:, 2]
    cycle = np.floor((theta - np.pi / 2) / np.pi).astype(int)  # one cycle between exhale points
    peaks = np.array([z[cycle == c].min() for c in np.unique(cycle)[1:-1]])
    assert 0.1 <= peaks.std() / abs(peaks.mean()) <= 0.35  # cycle amplitudes vary by about the irregularity
    assert abs(peaks.mean() + 10.0) < 1.5
    same = breathing_displacement_mm(irr, t[:100])
    np.testing.assert_array_equal(same[:, 2], z[:100])  # deterministic, independent of the time range
    with pytest.raises(PhantomError):
        BreathingParams(period_s=0.0)


def test_target_trajectory_amplitude_and_setup(lung_small):
    course = simulate_course(lung_small, 3, seed=4)
    f = course.fractions[1]
    t = np.linspace(0.0, 40.0, 40001)
    traj = target_position_mm(f, t)
    # undo the rigid setup error: what is left is shift + breathing, whose excursion is the amplitude (+ drift)
    local = f.setup_error.inverse().apply(traj) - np.asarray(f.target_centre_planning_mm)
    bd = breathing_displacement_mm(f.breathing, t)
    np.testing.assert_allclose(local, np.asarray(f.target_shift_mm) + bd, atol=1e-9)
    reg = BreathingParams(amplitude_mm=f.breathing.amplitude_mm, period_s=f.breathing.period_s, n=f.breathing.n)
    from dataclasses import replace

    f0 = replace(f, breathing=reg)
    local0 = f0.setup_error.inverse().apply(target_position_mm(f0, t))
    np.testing.assert_allclose(local0.max(axis=0) - local0.min(axis=0), np.abs(reg.amplitude_mm), atol=1e-3)
