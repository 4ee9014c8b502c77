"""Anatomy, HU, targets, margins and plan of the phantom patients."""

import numpy as np
import pytest

from igrt.geometry import Volume
from igrt.phantom import PhantomError, build_patient, default_config, expand_mask
from igrt.phantom import tissues as T


def test_lung_organ_volumes_are_adult(lung):
    v = {n: lung.volume_cc(n) for n in lung.structures}
    assert 2000 <= v["Lung_R"] + v["Lung_L"] <= 6000
    assert 1000 <= v["Lung_R"] <= 3000 and 1000 <= v["Lung_L"] <= 3000
    assert 400 <= v["Heart"] <= 1000
    assert 10 <= v["SpinalCord"] <= 40
    a = np.asarray(lung.config.tumour_semi_axes_mm)
    nominal = 4 / 3 * np.pi * a.prod() / 1000
    assert 0.6 * nominal <= v["GTV"] <= 1.5 * nominal


def test_pelvis_organ_volumes(pelvis):
    v = {n: pelvis.volume_cc(n) for n in pelvis.structures}
    assert v["Bladder"] == pytest.approx(pelvis.config.bladder_volume_cc, rel=0.04)
    assert 20 <= v["Prostate"] <= 60
    assert 40 <= v["FemoralHead_L"] <= 150 and 40 <= v["FemoralHead_R"] <= 150
    assert v["FemoralHead_L"] == pytest.approx(v["FemoralHead_R"], rel=0.05)  # left/right symmetric
    assert 40 <= v["Rectum"] <= 200
    assert 2 <= v["SeminalVesicles"] <= 20


def test_bladder_follows_configured_filling():
    base = default_config("pelvis", noise_hu=0.0)
    for cc in (120.0, 400.0):
        p = build_patient("pelvis", shape=(48, 80, 80), spacing=(4.0, 4.0, 4.0), config=base, bladder_volume_cc=cc)
        assert p.volume_cc("Bladder") == pytest.approx(cc, rel=0.06)
        assert p.config.bladder_volume_cc == cc and p.config.noise_hu == 0.0  # the knobs used are kept


@pytest.mark.parametrize("site", ["lung", "pelvis"])
def test_organs_inside_body_and_disjoint(site, lung, pelvis):
    p = lung if site == "lung" else pelvis
    body = p.mask("BODY").array
    for name, s in p.structures.items():
        assert not np.any(s.mask.array & ~body), f"{name} leaves the body"
    pairs = (
        [("Lung_R", "Heart"), ("Lung_L", "Heart"), ("Lung_R", "Lung_L"), ("Vertebrae", "SpinalCanal"),
         ("Lung_R", "Ribs"), ("Heart", "Oesophagus"), ("GTV", "Heart"), ("Aorta", "Heart")]
        if site == "lung"
        else [("Bladder", "Prostate"), ("Rectum", "Prostate"), ("Bladder", "Rectum"), ("FemoralHead_L", "PelvicBones"),
              ("FemoralHead_R", "PelvicBones"), ("SeminalVesicles", "Bladder")]
    )
    for a, b in pairs:
        overlap = np.count_nonzero(p.mask(a).array & p.mask(b).array)
        assert overlap == 0, f"{a} and {b} overlap in {overlap} voxels"


def test_gtv_sits_in_the_right_lung(lung):
    gtv = lung.mask("GTV")
    shell = expand_mask(gtv, 6.0).array & ~gtv.array
    around = lung.labels.array[shell]
    assert np.mean(around == T.LUNG_R) > 0.9
    assert lung.target_centre_mm[0] < 0  # patient right is -x in LPS


@pytest.mark.parametrize("site", ["lung", "pelvis"])
def test_hu_values_are_realistic(site, lung, pelvis):
    p = lung if site == "lung" else pelvis
    hu, lab = p.ct.array, p.labels.array

    def median(*labels):
        return float(np.median(hu[np.isin(lab, labels)]))

    assert median(T.AIR) == pytest.approx(-1000, abs=30)
    assert median(T.FAT) == pytest.approx(-100, abs=25)
    assert median(T.MUSCLE) == pytest.approx(45, abs=20)
    if site == "lung":
        assert -900 <= median(T.LUNG_R, T.LUNG_L) <= -700
        lung_hu = hu[np.isin(lab, (T.LUNG_R, T.LUNG_L))]
        assert np.mean(lung_hu > -400) > 0.005  # vessels
        bone = hu[lab == T.VERTEBRA]
    else:
        assert median(T.URINE) == pytest.approx(8, abs=20)
        bone = hu[np.isin(lab, (T.FEMUR_L, T.FEMUR_R))]
    assert 100 <= np.percentile(bone, 10) <= 600  # trabecular core
    assert np.percentile(bone, 99) >= 800  # cortical shell
    # texture: soft tissue is not flat (registration must not be trivial)
    assert np.std(hu[lab == T.MUSCLE]) >= 8.0


@pytest.mark.parametrize("site", ["lung", "pelvis"])
def test_targets_nest_and_isocentre_is_ptv_centre(site, lung, pelvis):
    p = lung if site == "lung" else pelvis
    gtv, ctv, ptv = (p.mask(n).array for n in ("GTV", "CTV", "PTV"))
    assert gtv.any() and not np.any(gtv & ~ctv) and not np.any(ctv & ~ptv)
    assert ptv.sum() > ctv.sum() > 0
    np.testing.assert_allclose(p.isocentre_mm, p.reference.structure("PTV").centroid_mm(), atol=0.01)
    plan = p.plan
    assert plan.orientation.value == "HFS" and len(plan.beams) == 7
    assert all(tuple(b.isocentre_mm) == tuple(plan.isocentre_mm) for b in plan.beams)
    if site == "lung":
        assert (plan.prescription_gy, plan.fractions, plan.dose_per_fraction_gy) == (54.0, 3, 18.0)
    else:
        assert (plan.prescription_gy, plan.fractions, plan.dose_per_fraction_gy) == (60.0, 20, 3.0)
    # isocentre near the grid centre area (inside the central 60 % of the field of view)
    lo, hi = p.ct.bounds()
    assert np.all(np.abs(p.isocentre_mm - p.ct.centre) < 0.3 * (hi - lo))


def _close(actual, expected, tol) -> None:
    actual, expected, tol = (np.asarray(v, float) for v in (actual, expected, tol))
    assert np.all(np.abs(actual - expected) <= tol + 1e-9), f"{actual} != {expected} within {tol}"


def _extent_mm(mask: Volume) -> np.ndarray:
    idx = np.argwhere(mask.array)
    return (idx.max(axis=0) - idx.min(axis=0))[::-1] * np.asarray(mask.spacing)


def test_anisotropic_margin_is_an_ellipsoidal_dilation():
    grid = Volume.centred(np.zeros((60, 80, 80), bool), (1.0, 1.0, 1.5))
    x, y, z = grid.world_coordinates()
    sphere = grid.with_array(x**2 + y**2 + z**2 <= 10.0**2)
    grown = expand_mask(sphere, (3.0, 6.0, 9.0))
    ext0, ext1 = _extent_mm(sphere), _extent_mm(grown)
    _close((ext1 - ext0) / 2, [3.0, 6.0, 9.0], grid.spacing)
    # exact membership against the analytic dilation of a ball by an ellipsoid on two test points
    inside = grid.to_index([0.0, 0.0, 10.0 + 9.0 - 0.5]).round().astype(int)
    outside = grid.to_index([0.0, 10.0 + 6.0 + 1.0, 0.0]).round().astype(int)
    assert grown.array[inside[2], inside[1], inside[0]] and not grown.array[outside[2], outside[1], outside[0]]
    # zero margin on an axis: no growth along it
    flat = expand_mask(sphere, (5.0, 5.0, 0.0))
    assert _extent_mm(flat)[2] == pytest.approx(ext0[2])
    with pytest.raises(PhantomError):
        expand_mask(sphere, (-1.0, 0.0, 0.0))


def test_patient_margins_have_configured_widths(lung):
    ext_g, ext_c, ext_p = (_extent_mm(lung.mask(n)) for n in ("GTV", "CTV", "PTV"))
    sp = np.asarray(lung.ct.spacing)
    _close((ext_c - ext_g) / 2, lung.config.ctv_margin_mm, sp)
    _close((ext_p - ext_c) / 2, lung.config.ptv_margin_mm, sp)


def test_same_seed_same_patient_other_seed_other_texture():
    a = build_patient("lung", shape=(32, 48, 48), spacing=(8.0, 8.0, 8.0), seed=7)
    b = build_patient("lung", shape=(32, 48, 48), spacing=(8.0, 8.0, 8.0), seed=7)
    c = build_patient("lung", shape=(32, 48, 48), spacing=(8.0, 8.0, 8.0), seed=8)
    assert np.array_equal(a.ct.array, b.ct.array) and np.array_equal(a.labels.array, b.labels.array)
    assert a.reference.frame_of_reference_uid == b.reference.frame_of_reference_uid
    assert not np.array_equal(a.ct.array, c.ct.array)


def test_any_grid_samples_the_same_anatomy(lung_small, lung):
    # a coarse and a finer grid of the same patient agree on organ volumes within a few per cent
    for name in ("Lung_R", "Lung_L", "Heart"):  # organs inside both fields of view
        assert lung_small.volume_cc(name) == pytest.approx(lung.volume_cc(name), rel=0.06)
    # anisotropic thin-slice grid: 1 x 1 x 2 mm near the tumour still holds the GTV
    p = build_patient("lung", shape=(24, 64, 64), spacing=(1.0, 1.0, 2.0), grid_centre_mm=(-60.0, 15.0, -15.0),
                      seed=3, texture_scale=0.0, noise_hu=0.0)
    assert p.volume_cc("GTV") == pytest.approx(lung.volume_cc("GTV"), rel=0.15)


def test_bad_input_is_rejected_with_a_phantom_error():
    with pytest.raises(PhantomError, match="site"):
        build_patient("brain")
    with pytest.raises(PhantomError, match="shape"):
        build_patient("lung", shape=(4, 4))
    with pytest.raises(PhantomError, match="spacing"):
        build_patient("lung", shape=(16, 16, 16), spacing=(0.0, 1.0, 1.0))
    with pytest.raises(PhantomError, match="margin"):
        default_config("lung", ptv_margin_mm=(5.0, -1.0, 5.0))
    with pytest.raises(PhantomError, match="unknown phantom option"):
        default_config("pelvis", bladder_cc=100)
    with pytest.raises(PhantomError, match="outside the grid"):
        build_patient("lung", shape=(16, 16, 16), spacing=(1.0, 1.0, 1.0))


def test_texture_kernel_matches_numpy_reference():
    from igrt.phantom._kernels import compose_hu
    from igrt.phantom.appearance import _lut, compose_hu_reference
    from igrt.phantom.noise import coarse_noise

    rng = np.random.default_rng(0)
    grid = Volume.centred(np.zeros((9, 11, 13), np.uint8), (3.0, 2.5, 4.0), (5.0, -3.0, 2.0))
    labels = rng.choice([T.AIR, T.FAT, T.MUSCLE, T.LUNG_R, T.VERTEBRA], size=grid.shape).astype(np.uint8)
    coarse, fine = coarse_noise(grid, 16.0, rng), coarse_noise(grid, 5.0, rng)
    out, out_fine = np.empty(grid.shape, np.float32), np.empty(grid.shape, np.float32)
    compose_hu(labels, _lut("hu"), _lut("coarse_sd") * 0.5, _lut("fine_sd") * 0.5,
               coarse.array, np.ascontiguousarray((coarse.world_to_index @ grid.index_to_world)[:3]),
               fine.array, np.ascontiguousarray((fine.world_to_index @ grid.index_to_world)[:3]), out_fine, out)
    np.testing.assert_allclose(out, compose_hu_reference(labels, grid, coarse, fine, 0.5), atol=1e-3)
