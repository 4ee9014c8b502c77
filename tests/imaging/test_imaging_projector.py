"""Forward projector: Joseph kernel vs a numpy reference, analytic chords, RTK's Joseph projector."""

import numpy as np
import pytest

from igrt.geometry import Volume
from igrt.imaging import CBCTGeometry, PatientPlacement, forward_project
from igrt.imaging._kernels import cast_rays_reference
from igrt.imaging.phantoms import bead_volume
from igrt.imaging.projector import cast_rays_lps

from rtk_helpers import rtk_or_skip

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _blob(shape=(20, 22, 24), spacing=(2.0, 1.5, 2.5), seed=3):
    """Smooth random object with a zero border (edge handling is not under test)."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    a = gaussian_filter(rng.random(shape), 2.0)
    a = (a - a.min()) / np.ptp(a)
    a[:2], a[-2:], a[:, :2], a[:, -2:], a[:, :, :2], a[:, :, -2:] = 0, 0, 0, 0, 0, 0
    return Volume(a.astype(np.float32) * 0.02, origin=(-20.0, -14.0, -25.0), spacing=spacing)


def test_joseph_matches_numpy_reference_oblique_rays():
    vol = _blob()
    geo = CBCTGeometry(300.0, 450.0, [0.0, 33.0, 101.0, 250.0], (9, 7), (6.0, 6.0), offset_u_mm=4.0, offset_v_mm=-3.0)
    place = PatientPlacement((1.0, 2.0, -3.0), "HFS")
    got = forward_project(vol, geo, place)
    src = place.to_lps(geo.source_positions_iec())
    o, du, dv = geo.detector_frames_iec()
    w2i = vol.world_to_index
    tr = lambda p: p @ w2i[:3, :3].T + w2i[:3, 3]  # noqa: E731
    ref = cast_rays_reference(
        vol.array, tr(src), tr(place.to_lps(o)), place.vectors_to_lps(du) @ w2i[:3, :3].T,
        place.vectors_to_lps(dv) @ w2i[:3, :3].T, 9, 7, vol.index_to_world[:3, :3], step_mm=0.05,
    )
    assert ref.max() > 0.1
    # Joseph and fine sampling agree to about 1 % of the signal
    np.testing.assert_allclose(got, ref, atol=0.01 * ref.max())
    assert np.abs(got - ref).mean() < 0.003 * ref.max()


def test_sphere_chord_lengths():
    like = Volume.centred(np.zeros((48, 48, 48), np.float32), (1.0, 1.0, 1.0))
    vol = bead_volume(like, (0.0, 0.0, 0.0), 15.0, 0.02)
    geo = CBCTGeometry(1000.0, 1500.0, [0.0, 45.0, 90.0], (5, 5), (7.5, 7.5))
    p = forward_project(vol, geo)
    # pixel (2, 2) is the central ray (chord 30 mm); pixel (3, 2) passes 5 mm off-axis at the iso plane
    np.testing.assert_allclose(p[:, 2, 2], 0.02 * 30.0, rtol=0.01)
    d = 5.0 * 1000 / np.hypot(1000.0, 5.0)  # distance of that ray from the centre
    np.testing.assert_allclose(p[:, 2, 3], 0.02 * 2 * np.sqrt(15.0**2 - d**2), rtol=0.015)


def test_hu_input_and_modes():
    vol = Volume.centred(np.full((10, 10, 10), 0.0, np.float32), (2.0, 2.0, 2.0))  # water in HU
    src, det = np.array([[0.0, -500.0, 0.0]]), np.array([[0.0, 500.0, 0.0]])
    u, v = np.array([[1.0, 0, 0]]), np.array([[0, 0, 1.0]])
    integ = cast_rays_lps(vol, src, det, u, v, (1, 1), scale=0.0193 / 1000, offset=0.0193)
    assert integ[0, 0, 0] == pytest.approx(0.0193 * 20.0, rel=1e-5)  # 10 voxels of 2 mm
    bone = vol.with_array(np.where(np.arange(10)[None, :, None] == 4, 1000.0, 0.0).astype(np.float32) * np.ones((10, 10, 10), np.float32))
    assert cast_rays_lps(bone, src, det, u, v, (1, 1), mode="mip")[0, 0, 0] == pytest.approx(1000.0)
    assert cast_rays_lps(bone, src, det, u, v, (1, 1), mode="mean")[0, 0, 0] == pytest.approx(100.0)


def test_matches_rtk_joseph_projector():
    rtk = rtk_or_skip()
    import itk

    vol = _blob(shape=(32, 32, 32), spacing=(2.0, 2.0, 2.0))
    vol = Volume.centred(vol.array, vol.spacing)  # RTK volume with identity direction, centred at iso
    angles = [0.0, 40.0, 95.0, 200.0]
    nu, nv, pu = 40, 30, 3.0
    geo = CBCTGeometry(800.0, 1200.0, angles, (nu, nv), (pu, pu))
    # RTK world = IEC fixed; HFS maps LPS (x, y, z) -> IEC (x, z, -y): pass the volume in IEC axes
    place = PatientPlacement((0.0, 0.0, 0.0), "HFS")
    mine = forward_project(vol, geo, place)

    iec = np.ascontiguousarray(np.transpose(vol.array, (1, 0, 2))[::-1])  # [Z_iec, Y_iec, X_iec]
    img = itk.image_from_array(iec.astype(np.float32))
    img.SetSpacing([2.0, 2.0, 2.0])
    img.SetOrigin([-31.0, -31.0, -31.0])
    g = rtk.ThreeDCircularProjectionGeometry.New()
    for a in angles:
        g.AddProjection(800.0, 1200.0, a)
    proj = itk.image_from_array(np.zeros((len(angles), nv, nu), np.float32))
    proj.SetSpacing([pu, pu, 1.0])
    proj.SetOrigin([-(nu - 1) / 2 * pu, -(nv - 1) / 2 * pu, 0.0])
    fp = rtk.JosephForwardProjectionImageFilter[type(proj), type(img)].New()
    fp.SetInput(0, proj)
    fp.SetInput(1, img)
    fp.SetGeometry(g)
    fp.Update()
    ref = itk.array_from_image(fp.GetOutput())
    assert ref.max() > 0.1
    np.testing.assert_allclose(mine, ref, atol=0.01 * ref.max())


def test_strided_fallback_matches_slice_major_layouts(monkeypatch):
    import igrt.imaging.projector as proj_mod

    vol = _blob()
    geo = CBCTGeometry(300.0, 450.0, [10.0, 80.0], (9, 7), (6.0, 6.0))
    fast = forward_project(vol, geo)
    monkeypatch.setattr(proj_mod, "_dominant_axes", lambda *a: set())
    proj_mod._LAYOUTS.clear()
    slow = forward_project(vol, geo)
    np.testing.assert_allclose(slow, fast, rtol=1e-5, atol=1e-6)
