"""Volume grids and resampling against a numpy/scipy reference."""

import numpy as np
import pytest
from scipy import ndimage

from igrt.errors import GeometryError
from igrt.geometry import RigidTransform, Volume, resample, resample_to_grid
from igrt.geometry.resample import index_map


def _vol(seed=0, shape=(12, 14, 16)):
    rng = np.random.default_rng(seed)
    return Volume(rng.normal(size=shape).astype(np.float32), origin=(-5.0, 3.0, 10.0), spacing=(1.5, 2.0, 2.5))


def test_index_world_round_trip():
    v = _vol()
    ijk = np.array([[0, 0, 0], [3.5, 2.0, 7.25]])
    np.testing.assert_allclose(v.to_index(v.to_world(ijk)), ijk, atol=1e-12)
    np.testing.assert_allclose(v.to_world([1, 0, 0]), [-3.5, 3.0, 10.0])


def test_centred_volume_has_its_centre_where_asked():
    v = Volume.centred(np.zeros((5, 6, 7)), (1.0, 2.0, 3.0), centre=(10, 20, 30))
    np.testing.assert_allclose(v.centre, [10, 20, 30])


def test_identity_resample_is_exact():
    v = _vol()
    np.testing.assert_allclose(resample(v, v).array, v.array, atol=1e-6)


def test_linear_resample_matches_scipy_map_coordinates():
    v = _vol(1)
    t = RigidTransform.from_params((2.3, -1.1, 0.7), (3.0, -2.0, 4.0), centre_mm=v.centre)
    out = resample(v, v, t, fill=0.0)
    # Reference: per-voxel source index through the same affine map, scipy order=1.
    a = index_map(v, v, t)
    nz, ny, nx = v.shape
    k, j, i = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij")
    src = a[:, :3] @ np.stack([i.ravel(), j.ravel(), k.ravel()]) + a[:, 3:4]
    ref = ndimage.map_coordinates(v.array, src[::-1], order=1, mode="constant", cval=0.0).reshape(v.shape)
    inside = (src.min(axis=0) >= 0) & (src[0] <= nx - 1) & (src[1] <= ny - 1) & (src[2] <= nz - 1)
    np.testing.assert_allclose(out.array.ravel()[inside], ref.ravel()[inside], atol=1e-4)
    assert np.all(out.array.ravel()[~inside] == 0.0)


def test_translation_moves_a_point_feature():
    arr = np.zeros((20, 20, 20), np.float32)
    arr[10, 10, 10] = 1.0
    v = Volume(arr, (0, 0, 0), (1, 1, 1))
    # Output p samples source at p + (2, 0, 0): the spike appears 2 mm to the right (smaller x).
    out = resample(v, v, RigidTransform.from_params((2, 0, 0)))
    assert out.array[10, 10, 8] == pytest.approx(1.0)


def test_nearest_keeps_labels():
    labels = np.zeros((10, 10, 10), np.uint8)
    labels[3:7, 3:7, 3:7] = 4
    v = Volume(labels)
    out = resample(v, v, RigidTransform.from_params((0.4, 0, 0)), order=0)
    assert out.array.dtype == np.uint8 and set(np.unique(out.array)) == {0, 4}


def test_resample_to_grid_keeps_extent():
    v = _vol(shape=(9, 9, 9))
    out = resample_to_grid(v, (3.0, 4.0, 5.0))
    assert out.shape == (5, 5, 5)
    np.testing.assert_allclose(out.origin, v.origin)


def test_bad_volume_inputs():
    with pytest.raises(GeometryError, match="3D array"):
        Volume(np.zeros((3, 3)))
    with pytest.raises(GeometryError, match="positive"):
        Volume(np.zeros((2, 2, 2)), spacing=(1, 0, 1))
    with pytest.raises(GeometryError, match="order"):
        resample(_vol(), _vol(), order=3)
