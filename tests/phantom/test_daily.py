"""The patient on the day: setup error, breathing, anatomy change and the true deformation."""

from dataclasses import replace

import numpy as np
import pytest
from scipy.ndimage import map_coordinates

from igrt.geometry import RigidTransform, Volume, resample
from igrt.phantom import (
    BreathingParams,
    PelvisState,
    daily_anatomy,
    daily_displacement,
    daily_labels,
    daily_structure_mask,
    deformation_model,
    map_daily_to_planning,
    map_planning_to_daily,
    simulate_course,
    target_position_mm,
    with_setup_error,
    zero_error_fraction,
)
from igrt.phantom import tissues as T


def _near(actual, expected, grid: Volume) -> None:
    """Nearest-neighbour label transport is exact up to half a voxel per axis."""
    tol = 0.5 * np.asarray(grid.spacing) + 0.05
    assert np.all(np.abs(np.asarray(actual) - np.asarray(expected)) <= tol), f"{actual} vs {expected} (tol {tol})"


def _centroid(mask: Volume) -> np.ndarray:
    k, j, i = np.nonzero(mask.array)
    return mask.to_world(np.stack([i, j, k], axis=1).astype(float)).mean(axis=0)


@pytest.mark.parametrize("site", ["lung", "pelvis"])
def test_zero_error_day_is_the_planning_ct(site, lung_small, pelvis):
    p = lung_small if site == "lung" else pelvis
    f = zero_error_fraction(p)
    np.testing.assert_allclose(daily_anatomy(p, f).array, p.ct.array, atol=1e-3)
    assert np.array_equal(daily_labels(p, f).array, p.labels.array)
    assert not np.any(daily_displacement(p, f).vectors_mm)


def test_rigid_day_matches_the_setup_convention(lung_small):
    p = lung_small
    f = with_setup_error(zero_error_fraction(p), (4.0, -3.0, 6.5), (1.0, -2.0, 1.5))
    expected = resample(p.ct, p.ct, f.setup_error.inverse(), fill=-1000.0)
    np.testing.assert_allclose(daily_anatomy(p, f).array, expected.array, atol=0.05)
    pts = np.array([[0.0, 0.0, 0.0], list(p.isocentre_mm), [30.0, -40.0, 55.0]])
    np.testing.assert_allclose(map_planning_to_daily(p, f, pts), f.setup_error.apply(pts), atol=1e-9)
    # the target centre moves with the anatomy: the GTV centroid on the day is the setup error applied to it
    gtv_day = daily_structure_mask(p, f, "GTV")
    _near(_centroid(gtv_day), f.setup_error.apply(_centroid(p.mask("GTV"))), p.ct)


def test_lung_tumour_moves_with_breathing_and_shrinks(lung):
    p = lung
    f = zero_error_fraction(p)
    f = replace(f, breathing=BreathingParams(amplitude_mm=(1.0, -3.0, -12.0)), target_shift_mm=(2.0, 0.0, 0.0))
    centre = _centroid(p.mask("GTV"))
    for phase in (0.0, 0.25, 0.5):
        m = np.asarray(f.target_shift_mm) + np.array([1.0, -3.0, -12.0]) * np.cos(np.pi * phase) ** 4
        labels = daily_labels(p, f, phase=phase)
        gtv = Volume(labels.array == T.GTV_LUNG, labels.origin, labels.spacing)
        _near(_centroid(gtv), centre + m, p.ct)
        assert gtv.array.sum() == pytest.approx(p.mask("GTV").array.sum(), rel=0.1)  # rigid motion keeps the size
        np.testing.assert_allclose(map_planning_to_daily(p, f, centre, phase=phase)[0], centre + m, atol=1e-6)
    # the spine does not breathe: a vertebral point stays put while the lung base moves
    spine = np.array([0.0, 45.0, -40.0])
    np.testing.assert_allclose(map_planning_to_daily(p, f, spine, phase=0.0)[0], spine, atol=1.0)
    # tumour shrinkage over the course: the daily GTV volume follows the volume factor
    shrunk = replace(f, tumour_volume_factor=0.7, breathing=BreathingParams(), target_shift_mm=(0.0, 0.0, 0.0))
    vol = daily_structure_mask(p, shrunk, "GTV", fractional=True).array.sum()
    assert vol / p.mask("GTV").array.sum() == pytest.approx(0.7, abs=0.05)
    # the target trajectory truth agrees with where the image puts the tumour at a given time
    course = simulate_course(p, 3, seed=9)
    g = replace(course.fractions[0], tumour_volume_factor=1.0)
    tp = target_position_mm(g, [2.3])[0]
    np.testing.assert_allclose(map_planning_to_daily(p, g, centre, t_s=2.3)[0], tp, atol=1e-6)
    gtv_day = daily_structure_mask(p, g, "GTV", t_s=2.3)
    _near(_centroid(gtv_day), tp, p.ct)


def test_pelvis_filling_deforms_and_moves_prostate(pelvis):
    p = pelvis
    base = zero_error_fraction(p)
    v_plan = p.config.bladder_volume_cc
    state = PelvisState(v_plan * 1.6, 1.6 ** (1 / 3), p.config.rectum_radius_mm * 1.3, 1.3, (0.0, -3.0, 2.0))
    f = replace(base, pelvis=state, target_shift_mm=state.prostate_shift_mm)
    lab = daily_labels(p, f)
    bladder_cc = np.isin(lab.array, (T.BLADDER_WALL, T.URINE)).sum() * p.ct.voxel_volume_mm3 / 1000
    assert bladder_cc == pytest.approx(state.bladder_volume_cc, rel=0.08)
    rectum_cc = np.isin(lab.array, (T.RECTUM_WALL, T.RECTUM_CONTENT)).sum() * p.ct.voxel_volume_mm3 / 1000
    assert rectum_cc > 1.2 * p.volume_cc("Rectum")
    prostate = Volume(lab.array == T.PROSTATE, lab.origin, lab.spacing)
    _near(_centroid(prostate), _centroid(p.mask("Prostate")) + [0.0, -3.0, 2.0], p.ct)
    assert prostate.array.sum() == pytest.approx(p.mask("Prostate").array.sum(), rel=0.05)
    # femoral heads (bone) do not move
    head = _centroid(p.mask("FemoralHead_L"))
    np.testing.assert_allclose(map_planning_to_daily(p, f, head)[0], head, atol=0.3)


@pytest.mark.parametrize("site", ["lung", "pelvis"])
def test_true_deformation_is_invertible_and_matches_the_kernel(site, lung_small, pelvis):
    p = lung_small if site == "lung" else pelvis
    course = simulate_course(p, 4, seed=17)
    rng = np.random.default_rng(0)
    for f in course.fractions:
        t_s = 1.7
        field = daily_displacement(p, f, t_s=t_s)
        # no folding: the pull-back (without the rigid part) has a positive Jacobian everywhere
        v = field.vectors_mm
        g = [np.gradient(v[c], *p.ct.spacing[::-1]) for c in range(3)]  # g[c][axis z, y, x]
        jac = np.empty(v.shape[1:] + (3, 3))
        for c in range(3):
            jac[..., c, 0], jac[..., c, 1], jac[..., c, 2] = g[c][2], g[c][1], g[c][0]
        jac += np.eye(3)
        assert np.linalg.det(jac).min() > 0.2
        # kernel field == numpy reference at voxel centres
        idx = rng.integers(0, np.array(p.ct.shape), size=(200, 3))  # (k, j, i)
        q = p.ct.to_world(idx[:, ::-1].astype(float))
        ref = map_daily_to_planning(p, f, q, t_s=t_s) - q
        np.testing.assert_allclose(v[:, idx[:, 0], idx[:, 1], idx[:, 2]].T, ref, atol=1e-3)
        # forward and backward maps are inverse
        pts = p.ct.to_world(rng.uniform(0.2, 0.8, (50, 3)) * (np.asarray(p.ct.size_xyz) - 1))
        back = map_daily_to_planning(p, f, map_planning_to_daily(p, f, pts, t_s=t_s), t_s=t_s)
        np.testing.assert_allclose(back, pts, atol=1e-3)


def test_warp_kernel_matches_scipy_reference(lung_small):
    p = lung_small
    f = simulate_course(p, 1, seed=2).fractions[0]
    day = daily_anatomy(p, f, t_s=0.8).array
    field = daily_displacement(p, f, t_s=0.8)
    q = np.stack(np.meshgrid(*[np.arange(n) for n in p.ct.shape], indexing="ij"), axis=-1).reshape(-1, 3)
    world = p.ct.to_world(q[:, ::-1].astype(float)) + field.vectors_mm.reshape(3, -1).T
    src_idx = p.ct.to_index(world)[:, ::-1].T
    ref = map_coordinates(p.ct.array.astype(np.float64), src_idx, order=1, mode="constant", cval=-1000.0)
    inside = np.all((src_idx >= 0) & (src_idx <= (np.array(p.ct.shape)[:, None] - 1)), axis=0)
    np.testing.assert_allclose(day.reshape(-1)[inside], ref[inside], atol=0.05)


def test_daily_anatomy_on_another_grid_and_with_noise(lung_small):
    p = lung_small
    f = with_setup_error(zero_error_fraction(p), (5.0, 0.0, 0.0))
    grid = Volume.centred(np.zeros((20, 30, 30), np.uint8), (4.0, 4.0, 4.0), p.isocentre_mm)
    day = daily_anatomy(p, f, grid=grid)
    assert day.same_grid(grid)
    expected = resample(p.ct, grid, f.setup_error.inverse(), fill=-1000.0)
    np.testing.assert_allclose(day.array, expected.array, atol=0.05)
    noisy = daily_anatomy(p, f, grid=grid, noise_hu=20.0, seed=1)
    assert np.std(noisy.array - day.array) == pytest.approx(20.0, rel=0.1)
    assert deformation_model(p, f).weights.shape[0] == 0  # no motion, no anatomy change: no deformation terms
    assert RigidTransform.identity().is_close(zero_error_fraction(p).setup_error)


def test_landmarks_measure_the_deformation(pelvis):
    from igrt.phantom import landmarks_mm

    p = pelvis
    pts = landmarks_mm(p, 40, seed=3, structures=("Bladder", "Prostate", "Rectum"), min_gradient_hu_per_mm=2.0)
    assert pts.shape == (40, 3)
    assert np.array_equal(pts, landmarks_mm(p, 40, seed=3, structures=("Bladder", "Prostate", "Rectum"),
                                            min_gradient_hu_per_mm=2.0))
    idx = np.round(p.ct.to_index(pts)).astype(int)
    organs = p.mask("Bladder").array | p.mask("Prostate").array | p.mask("Rectum").array
    assert organs[idx[:, 2], idx[:, 1], idx[:, 0]].all()
    state = PelvisState(p.config.bladder_volume_cc * 1.5, 1.5 ** (1 / 3), p.config.rectum_radius_mm, 1.0, (0.0, -2.0, 0.0))
    f = replace(zero_error_fraction(p), pelvis=state, target_shift_mm=state.prostate_shift_mm)
    moved = map_planning_to_daily(p, f, pts)
    err_before = np.linalg.norm(moved - pts, axis=1)
    assert err_before.mean() > 2.0  # landmark error of "no registration": several mm
    np.testing.assert_allclose(map_daily_to_planning(p, f, moved), pts, atol=1e-3)
