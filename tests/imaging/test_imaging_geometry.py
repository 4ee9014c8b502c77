"""CBCTGeometry: frames, projection matrices, field checks and patient placement."""

import numpy as np
import pytest

from igrt.imaging import CBCTGeometry, DetectorTooSmallError, ImagingGeometryError, PatientPlacement, circular_geometry
from igrt.imaging.geometry import geometry_for_field

from rtk_helpers import rtk_or_skip

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # SWIG wrappers of itk


def test_source_positions_follow_iec_gantry_convention():
    geo = CBCTGeometry(1000.0, 1500.0, [0.0, 90.0, 180.0, 270.0], (10, 8), (1.0, 1.0))
    src = geo.source_positions_iec()
    # gantry 0: source above (IEC +Z); gantry 90: at IEC +X; 180 below; 270 at -X
    np.testing.assert_allclose(src, [[0, 0, 1000], [1000, 0, 0], [0, 0, -1000], [-1000, 0, 0]], atol=1e-9)


def test_isocentre_projects_to_detector_centre_plus_offset():
    geo = CBCTGeometry(1000.0, 1500.0, [0.0, 37.0], (11, 9), (2.0, 3.0), offset_u_mm=[0.0, 20.0], offset_v_mm=[0.0, -6.0])
    pix = geo.project_points([[0.0, 0.0, 0.0]])
    np.testing.assert_allclose(pix[0, 0], [5.0, 4.0], atol=1e-9)
    # the detector moved +20 mm along u: the isocentre's image is 10 pixels lower in u; v -6 mm -> +2 rows
    np.testing.assert_allclose(pix[1, 0], [5.0 - 10.0, 4.0 + 2.0], atol=1e-9)


def test_projection_matrix_magnifies_and_matches_ray_geometry():
    geo = CBCTGeometry(1000.0, 1600.0, [30.0], (101, 101), (1.0, 1.0), source_offset_u_mm=3.0, source_offset_v_mm=-2.0)
    p = np.array([[40.0, -25.0, 10.0]])
    pix = geo.project_points(p)[0, 0]
    # intersect the ray source -> p with the detector plane explicitly
    origin, du, dv = geo.detector_frames_iec()
    s = geo.source_positions_iec()[0]
    n = np.cross(du[0], dv[0])
    t = ((origin[0] - s) @ n) / ((p[0] - s) @ n)
    hit = s + t * (p[0] - s)
    rel = hit - origin[0]
    np.testing.assert_allclose(pix, [rel @ du[0] / 1.0, rel @ dv[0] / 1.0], atol=1e-9)


def test_rtk_matrix_matches_rtk_if_available():
    rtk = rtk_or_skip()
    g = rtk.ThreeDCircularProjectionGeometry.New()
    g.AddProjection(1000.0, 1500.0, 30.0, 12.0, -5.0, 0.0, 0.0, 3.0, 4.0)
    m = g.GetMatrix(0)
    ref = np.array([[m(i, j) for j in range(4)] for i in range(3)])
    geo = CBCTGeometry(1000.0, 1500.0, [30.0], (8, 8), (1.0, 1.0), 12.0, -5.0, 3.0, 4.0)
    mine = geo.rtk_matrices()[0]
    np.testing.assert_allclose(mine / mine[2, 3], ref / ref[2, 3], rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(sad_mm=0.0, sid_mm=1500.0), "source-axis"),
        (dict(sad_mm=1000.0, sid_mm=1000.0), "source-detector"),
        (dict(sad_mm=1000.0, sid_mm=1500.0, pixel_spacing_mm=(0.0, 1.0)), "spacing"),
        (dict(sad_mm=1000.0, sid_mm=1500.0, offset_u_mm=[1.0, 2.0]), "one per projection"),
    ],
)
def test_bad_geometry_raises_typed_error(kwargs, match):
    base = dict(angles_deg=[0.0, 1.0, 2.0], detector_shape=(8, 8), pixel_spacing_mm=(1.0, 1.0))
    base.update(kwargs)
    with pytest.raises(ImagingGeometryError, match=match):
        CBCTGeometry(**base)


def test_field_of_view_and_detector_too_small():
    geo = circular_geometry(90, sad_mm=1000, sid_mm=1500, detector_shape=(100, 60), pixel_spacing_mm=(1.5, 1.5))
    # 150 mm wide at the detector = 100 mm at iso -> radius 1000 sin(atan(50/1000))
    assert geo.fov_radius_mm() == pytest.approx(1000 * np.sin(np.arctan(0.05)), rel=1e-9)
    assert geo.fov_half_length_mm() == pytest.approx(30.0)
    geo.check_field(49.0, 29.0)
    with pytest.raises(DetectorTooSmallError, match="radius"):
        geo.check_field(80.0, 10.0)
    with pytest.raises(DetectorTooSmallError, match="rotation axis"):
        geo.check_field(10.0, 45.0)


def test_half_fan_field_is_larger_for_full_scan():
    full = geometry_for_field(200.0, 50.0, n_projections=36, half_fan=True, pixel_at_iso_mm=2.0)
    assert full.fov_radius_mm() >= 200.0
    assert full.detector_shape[0] * 2.0 < 2 * 200.0  # narrower than a centred detector for the same field


def test_placement_hfs_maps_anterior_to_iec_up():
    place = PatientPlacement((10.0, -20.0, 30.0), "HFS")
    # anterior of the isocentre (LPS -y) is up (IEC +Z) for a supine patient; superior is +Y (toward gantry)
    np.testing.assert_allclose(place.to_iec([[10.0, -30.0, 30.0]]), [[0.0, 0.0, 10.0]], atol=1e-12)
    np.testing.assert_allclose(place.to_iec([[10.0, -20.0, 45.0]]), [[0.0, 15.0, 0.0]], atol=1e-12)
    np.testing.assert_allclose(place.to_lps(place.to_iec([[1.0, 2.0, 3.0]])), [[1.0, 2.0, 3.0]], atol=1e-12)
