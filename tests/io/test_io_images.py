"""read_image / write_image: SimpleITK formats and DICOM series folders keep LPS geometry."""

import numpy as np
import pytest

from igrt.geometry import Volume
from igrt.io import read_image, write_image
from igrt.io.dicom import write_ct_series
from igrt.io.errors import ImageIOError


def _volume(direction=np.eye(3)):
    rng = np.random.default_rng(1)
    arr = rng.integers(-1000, 2000, (12, 20, 24)).astype(np.float32)
    return Volume(arr, (-10.25, 3.5, 100.125), (0.9, 1.1, 2.5), direction)


OBLIQUE = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])  # rows along y, columns along x


@pytest.mark.parametrize("ext", [".mha", ".nrrd", ".nii.gz"])
@pytest.mark.parametrize("direction", [np.eye(3), OBLIQUE])
def test_file_round_trip_keeps_geometry_and_values(tmp_path, ext, direction):
    v = _volume(direction)
    write_image(v, tmp_path / f"img{ext}")
    r = read_image(tmp_path / f"img{ext}")
    assert r.shape == v.shape
    # NIfTI stores spacing as float32: 1e-5 mm; the others are exact.
    np.testing.assert_allclose(r.origin, v.origin, atol=1e-4)
    np.testing.assert_allclose(r.spacing, v.spacing, atol=1e-4)
    np.testing.assert_allclose(r.direction, v.direction, atol=1e-6)
    np.testing.assert_array_equal(r.array, v.array)


def test_nifti_ras_is_converted_to_lps(tmp_path):
    """A voxel's LPS position survives NIfTI (which stores RAS): SimpleITK flips x and y on both ends."""
    v = _volume()
    write_image(v, tmp_path / "a.nii")
    r = read_image(tmp_path / "a.nii")
    p = v.to_world([5.0, 7.0, 3.0])
    np.testing.assert_allclose(r.to_world([5.0, 7.0, 3.0]), p, atol=1e-4)
    assert r.array[3, 7, 5] == v.array[3, 7, 5]


def test_bool_mask_written_as_uint8(tmp_path):
    m = Volume(np.zeros((4, 5, 6), bool), (0, 0, 0), (1, 1, 1))
    m.array[1, 2, 3] = True
    write_image(m, tmp_path / "m.mha")
    r = read_image(tmp_path / "m.mha")
    assert r.array.dtype == np.uint8 and r.array.sum() == 1 and r.array[1, 2, 3] == 1


@pytest.mark.parametrize("direction", [np.eye(3), OBLIQUE])
def test_dicom_folder_via_read_image(tmp_path, direction):
    v = _volume(direction)
    write_ct_series(v, tmp_path / "ct")
    r = read_image(tmp_path / "ct")
    # Same world position of every voxel (a left-handed grid comes back with z reversed).
    ijk = np.array([[0, 0, 0], [23, 19, 11], [5, 7, 3]], float)
    back = r.to_index(v.to_world(ijk))
    np.testing.assert_allclose(back, np.round(back), atol=1e-4)
    np.testing.assert_allclose(r.spacing, v.spacing, atol=1e-4)
    b = np.round(back).astype(int)
    np.testing.assert_array_equal(r.array[b[:, 2], b[:, 1], b[:, 0]], v.array[ijk[:, 2].astype(int), ijk[:, 1].astype(int), ijk[:, 0].astype(int)])
    # A single slice file reads as a one-slice volume.
    one = read_image(sorted((tmp_path / "ct").iterdir())[0])
    assert one.shape == (1, 20, 24)


def test_errors(tmp_path):
    with pytest.raises(ImageIOError, match="no such file"):
        read_image(tmp_path / "nope.mha")
    (tmp_path / "junk.mha").write_text("not an image")
    with pytest.raises(ImageIOError, match="cannot read"):
        read_image(tmp_path / "junk.mha")
    with pytest.raises(ImageIOError, match="image extension"):
        write_image(_volume(), tmp_path / "noext")


def test_rtdose_file_reads_as_dose(tmp_path):
    from igrt.io.dicom import PatientInfo, write_rtdose

    v = _volume()
    dose = v.with_array(np.abs(v.array) / 100.0)
    write_rtdose(dose, tmp_path / "dose.dcm", PatientInfo())
    r = read_image(tmp_path / "dose.dcm")
    assert r.same_grid(dose)
    assert np.abs(r.array - dose.array).max() < 1e-3 * dose.array.max()
