"""Polygon rasterisation (even-odd, XOR) and mask contouring against references."""

import numpy as np
import pytest
from matplotlib.path import Path as MplPath

from igrt.geometry import Volume
from igrt.io.dicom.raster import contour_volume_cc, fill_polygons_2d, mask_to_contours, rasterise_contours


def _ellipse(cx, cy, a, b, n=60, phase=0.0):
    t = np.linspace(0, 2 * np.pi, n, endpoint=False) + phase
    return np.column_stack([cx + a * np.cos(t), cy + b * np.sin(t)])


def _reference(polys, ny, nx):
    """numpy reference: matplotlib point-in-polygon per pixel centre, XOR over polygons."""
    jj, ii = np.mgrid[0:ny, 0:nx]
    pts = np.column_stack([ii.ravel(), jj.ravel()]).astype(float)
    out = np.zeros(ny * nx, bool)
    for p in polys:
        out ^= MplPath(p).contains_points(pts)
    return out.reshape(ny, nx)


@pytest.mark.parametrize(
    "polys",
    [
        [_ellipse(30.3, 20.2, 17.1, 11.3)],
        [_ellipse(30.3, 20.2, 17.1, 11.3), _ellipse(28.1, 21.4, 5.3, 4.1)],  # hole
        [_ellipse(12.3, 10.2, 6.1, 5.3), _ellipse(45.2, 28.4, 8.3, 6.1)],  # two islands
        [np.array([[5.2, 5.3], [50.1, 8.7], [20.4, 35.2], [40.3, 36.1], [3.3, 30.2]])],  # self-intersecting
    ],
    ids=["ellipse", "hole", "islands", "bowtie"],
)
def test_fill_matches_point_in_polygon_reference(polys):
    got = fill_polygons_2d(polys, 40, 64)
    np.testing.assert_array_equal(got, _reference(polys, 40, 64))


def test_polygon_clipped_at_grid_edge():
    poly = np.array([[-10.5, -10.5], [20.5, -10.5], [20.5, 5.5], [-10.5, 5.5]])
    got = fill_polygons_2d([poly], 12, 16)
    exp = np.zeros((12, 16), bool)
    exp[0:6, :] = True  # rows 0..5 have centres inside [-10.5, 5.5); every column lies inside
    np.testing.assert_array_equal(got, exp)


def _grid():
    return Volume(np.zeros((20, 40, 48), np.float32), (-24.0, -20.0, -19.0), (1.0, 1.0, 2.0))


def test_round_trip_ellipsoid_with_hole_is_exact():
    g = _grid()
    x, y, z = g.world_coordinates()
    m = ((x / 18.3) ** 2 + (y / 13.7) ** 2 + (z / 15.1) ** 2 <= 1) & ~((x / 6.2) ** 2 + (y / 4.3) ** 2 <= 1)
    contours = mask_to_contours(g.with_array(m))
    assert {k for k, _ in contours} == set(np.nonzero(m.any(axis=(1, 2)))[0])
    back, dropped = rasterise_contours([c for _, c in contours], g)
    assert dropped == 0
    np.testing.assert_array_equal(back, m)


def test_partial_volume_half_plane():
    """A straight edge through pixel centres' midpoints gives exactly 0.5 fractions along it."""
    g = _grid()
    # Square from x = -10.5 to 0.0 mm: pixel column with centre x=0 is half inside.
    sq = np.array([[-10.5, -10.5, -1.0], [0.0, -10.5, -1.0], [0.0, 9.5, -1.0], [-10.5, 9.5, -1.0]])
    frac, _ = rasterise_contours([sq], g, supersample=4)
    k = 9  # z = -1
    col = 24  # x = 0
    np.testing.assert_allclose(frac[k, 10:30, col], 0.5)
    np.testing.assert_allclose(frac[k, 10:30, col - 5], 1.0)
    assert frac[k, 10:30, col + 1].max() == 0.0
    # Total area equals the polygon area (10.5 x 20 mm^2 of 1x1 mm pixels).
    assert frac[k].sum() == pytest.approx(10.5 * 20.0, abs=1e-6)


def test_contours_off_grid_dropped():
    g = _grid()
    sq = np.array([[-5, -5, 100.0], [5, -5, 100.0], [5, 5, 100.0]])
    m, dropped = rasterise_contours([sq], g)
    assert dropped == 1 and not m.any()


def test_contour_volume_of_boxes_and_holes():
    sq = lambda z, h: np.array([[-h, -h, z], [h, -h, z], [h, h, z], [-h, h, z]], float)  # noqa: E731
    slabs = [sq(z, 10.0) for z in (0.0, 2.5, 5.0, 7.5)]
    assert contour_volume_cc(slabs) == pytest.approx(4 * 400 * 2.5 / 1000)
    holes = slabs + [sq(z, 5.0) for z in (0.0, 2.5, 5.0, 7.5)]
    assert contour_volume_cc(holes) == pytest.approx(4 * 300 * 2.5 / 1000)
    assert contour_volume_cc(slabs, slice_thickness_mm=3.0) == pytest.approx(4 * 400 * 3.0 / 1000)


def test_round_trip_on_rotated_grid():
    """Contours leave and re-enter through the grid's direction matrix (30 deg in-plane rotation)."""
    a = np.deg2rad(30.0)
    d = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1.0]])
    g = Volume(np.zeros((10, 40, 48), np.float32), (-20.0, -25.0, -9.0), (1.0, 1.0, 2.0), d)
    kk, jj, ii = np.indices(g.shape)
    m = ((ii - 24.3) / 14) ** 2 + ((jj - 19.6) / 9) ** 2 + ((kk - 4.2) / 4) ** 2 <= 1
    contours = mask_to_contours(g.with_array(m))
    # Contour points lie in the slice planes in world space (z index integral).
    for k, c in contours:
        np.testing.assert_allclose(g.to_index(c)[:, 2], k, atol=1e-9)
    back, _ = rasterise_contours([c for _, c in contours], g)
    np.testing.assert_array_equal(back, m)
