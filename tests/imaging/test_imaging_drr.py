"""DRRs: poses of gantry and room-mounted kV imagers, bead positions, integral/MIP/mean values."""

import numpy as np
import pytest

from igrt.geometry import Volume
from igrt.imaging import ImagingGeometryError, PatientPlacement
from igrt.imaging.drr import DRRPose, drr, gantry_kv_pose, render, stereo_kv_pair
from igrt.imaging.phantoms import bead_volume


def _expected_pixel(pose: DRRPose, point) -> np.ndarray:
    """Where the ray source -> point meets the panel, in (u, v) pixel indices."""
    n = np.cross(pose.u, pose.v)
    s = pose.source_mm
    t = ((pose.detector_centre_mm - s) @ n) / ((np.asarray(point) - s) @ n)
    rel = s + t * (np.asarray(point) - s) - pose.pixel00_mm
    return np.array([rel @ pose.u / pose.spacing_mm[0], rel @ pose.v / pose.spacing_mm[1]])


def test_gantry_kv_pose_positions():
    place = PatientPlacement((5.0, 10.0, -20.0), "HFS")
    pose = gantry_kv_pose(0.0, place, kv_offset_deg=90.0, sad_mm=1000.0, sid_mm=1500.0)
    # kV source at gantry 90 = IEC +X = patient left (LPS +x) for HFS
    np.testing.assert_allclose(pose.source_mm, [1005.0, 10.0, -20.0], atol=1e-9)
    np.testing.assert_allclose(pose.detector_centre_mm, [5.0 - 500.0, 10.0, -20.0], atol=1e-9)
    assert pose.source_to_detector_mm == pytest.approx(1500.0)
    bev = gantry_kv_pose(0.0, place, kv_offset_deg=0.0)
    np.testing.assert_allclose(bev.source_mm, [5.0, 10.0 - 1000.0, -20.0], atol=1e-9)  # above = anterior


def test_stereo_pair_is_oblique_from_the_floor_through_isocentre():
    iso = np.array([3.0, -4.0, 12.0])
    p1, p2 = stereo_kv_pair(PatientPlacement(tuple(iso), "HFS"), tube_angle_deg=45.0)
    for pose in (p1, p2):
        beam = iso - pose.source_mm
        beam /= np.linalg.norm(beam)
        # sources below the couch (posterior in LPS for HFS), beam 45 deg from vertical (LPS -y is up)
        assert pose.source_mm[1] > iso[1]
        assert np.degrees(np.arccos(-beam[1])) == pytest.approx(45.0)
        # central ray hits the panel centre
        np.testing.assert_allclose(_expected_pixel(pose, iso), (np.array(pose.shape) - 1) / 2.0, atol=1e-9)
    b1 = iso - p1.source_mm
    b2 = iso - p2.source_mm
    assert np.degrees(np.arccos(b1 @ b2 / np.linalg.norm(b1) / np.linalg.norm(b2))) == pytest.approx(90.0)


def test_bead_appears_where_the_geometry_says():
    like = Volume.centred(np.full((40, 40, 40), -1000.0, np.float32), (2.0, 2.0, 2.0))
    bead = np.array([14.0, -9.0, 20.0])
    vol = bead_volume(like, bead, 4.0, 1000.0, background=like)
    place = PatientPlacement((0.0, 0.0, 0.0), "HFS")
    for pose in (*stereo_kv_pair(place, shape=(128, 128), spacing_mm=(1.0, 1.0)), gantry_kv_pose(30.0, place, shape=(96, 96), spacing_mm=(1.5, 1.5))):
        img = render(vol, pose)
        w = np.clip(img - np.percentile(img, 50), 0, None)
        w[w < 0.5 * w.max()] = 0
        iv, iu = np.indices(img.shape)
        found = np.array([(w * iu).sum() / w.sum(), (w * iv).sum() / w.sum()])
        np.testing.assert_allclose(found, _expected_pixel(pose, bead), atol=0.3)


def test_integral_mip_and_mean_values():
    like = Volume.centred(np.full((20, 20, 20), -1000.0, np.float32), (2.0, 2.0, 2.0))
    a = like.array.copy()
    a[:, 5:15, :] = 0.0  # a 20 mm water slab along LPS y
    a[10, 10, 10] = 2000.0
    vol = like.with_array(a)
    img = drr(vol, (1.0, -800.0, 1.0), (1.0, 400.0, 1.0), (1, 0, 0), (0, 0, 1), (5, 5), (4.0, 4.0))
    # the corner ray passes ~5 mm from the bone voxel: 20 mm of water (mu 0.0193/mm), air ~0; the central one adds the bone voxel
    assert img[0, 0] == pytest.approx(0.0193 * 20.0, rel=0.02)
    assert img[2, 2] == pytest.approx(0.0193 * (20.0 + 2.0 * 2.0), rel=0.02)
    mip = drr(vol, (1.0, -800.0, 1.0), (1.0, 400.0, 1.0), (1, 0, 0), (0, 0, 1), (1, 1), (1.0, 1.0), mode="mip")
    assert mip[0, 0] == pytest.approx(2000.0, rel=1e-4)  # the ray passes the bone voxel centre
    mean = drr(vol, (1.0, -800.0, 1.0), (1.0, 400.0, 1.0), (1, 0, 0), (0, 0, 1), (1, 1), (1.0, 1.0), mode="mean")
    assert mean[0, 0] == pytest.approx((10 * -1000.0 + 9 * 0.0 + 2000.0) / 20, rel=1e-3)  # 20 samples


def test_bad_pose_raises():
    with pytest.raises(ImagingGeometryError, match="perpendicular"):
        DRRPose((0, 0, 1000), (0, 0, -500), (1, 0, 0), (1, 1, 0))
    with pytest.raises(ImagingGeometryError, match="plane"):
        DRRPose((0, 0, 0), (10, 0, 0), (1, 0, 0), (0, 1, 0))


def test_siddon_exact_chords_and_agreement_with_joseph():
    from igrt.imaging._kernels import nonzero_box

    like = Volume(np.zeros((30, 32, 34), np.float32), origin=(-20.0, -25.0, -30.0), spacing=(1.5, 2.0, 2.5))
    a = like.array.copy()
    a[8:20, 10:22, 5:25] = 1.0  # box: x in [-20+5*1.5-0.75, ...] etc.
    vol = like.with_array(a)
    np.testing.assert_array_equal(nonzero_box(a, 1.0, 0.0), [5, 24, 10, 21, 8, 19])
    # a ray along y through the box interior crosses 12 voxels of 2 mm
    x = -20.0 + 10 * 1.5
    z = -30.0 + 12 * 2.5
    img = drr(vol, (x, -500.0, z), (x, 500.0, z), (1, 0, 0), (0, 0, 1), (1, 1), (1.0, 1.0), input_hu=False, method="siddon")
    assert img[0, 0] == pytest.approx(24.0, rel=1e-5)
    # an oblique ray: exact length = chord of the box slab along the ray
    src, det = np.array([x - 300.0, -500.0, z]), np.array([x + 300.0, 500.0, z])
    d = (det - src) / np.linalg.norm(det - src)
    y0, y1 = -25.0 + 9.5 * 2.0, -25.0 + 21.5 * 2.0
    expect = (y1 - y0) / d[1]
    img = drr(vol, src, det, (1, 0, 0) - d[0] * d, (0, 0, 1), (1, 1), (1.0, 1.0), input_hu=False, method="siddon")
    assert img[0, 0] == pytest.approx(expect, rel=1e-5)
    # smooth object: Siddon (piecewise constant) and Joseph (bilinear) agree in total and inside the object
    from scipy.ndimage import gaussian_filter

    smooth = like.with_array(gaussian_filter(a, 2.0).astype(np.float32))
    pose = gantry_kv_pose(20.0, PatientPlacement((-5.0, -3.0, -2.0)), shape=(40, 40), spacing_mm=(2.0, 2.0))
    j = render(smooth, pose, input_hu=False)
    s = render(smooth, pose, input_hu=False, method="siddon")
    assert s.sum() == pytest.approx(j.sum(), rel=0.01)
    # per pixel they differ where the object changes within a voxel (piecewise constant vs linear model)
    mask = j > 0.5 * j.max()
    assert np.median(np.abs(s[mask] - j[mask]) / j[mask]) < 0.05
    with pytest.raises(ImagingGeometryError, match="line integrals"):
        render(smooth, pose, mode="mip", method="siddon")


def test_siddon_skips_only_empty_space_for_hu_input():
    like = Volume.centred(np.full((20, 24, 28), -1000.0, np.float32), (2.0, 2.0, 2.0))
    a = like.array.copy()
    a[5:15, 6:18, 4:20] = 40.0
    vol = like.with_array(a)
    pose = gantry_kv_pose(35.0, PatientPlacement(), shape=(30, 30), spacing_mm=(2.5, 2.5))
    s = render(vol, pose, method="siddon")
    j = render(vol, pose, method="joseph")
    assert s.max() > 0.1
    mask = s > 0.2 * s.max()
    assert np.median(np.abs(s[mask] - j[mask]) / s[mask]) < 0.03
