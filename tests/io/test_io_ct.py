"""CT series reader/writer: sorting, rescale, geometry checks, real files."""

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from igrt.geometry import Volume
from igrt.io.dicom import PatientInfo, load_ct_series, read_ct_series, write_ct_series
from igrt.io.dicom.errors import (
    GantryTiltError,
    MissingSlicesError,
    MixedSeriesError,
    NoImageSeriesError,
    NonUniformSpacingError,
    NotDicomError,
    TruncatedPixelDataError,
)


def _vol(direction=np.eye(3), shape=(8, 16, 20)):
    rng = np.random.default_rng(3)
    return Volume(rng.integers(-1024, 3000, shape).astype(np.float32), (-12.3456, 7.125, -300.5), (0.7, 0.9, 3.0), direction)


def _rot(deg):
    a = np.deg2rad(deg)
    return np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1.0]])


@pytest.mark.parametrize("direction", [np.eye(3), _rot(30.0)], ids=["axial", "rotated"])
def test_round_trip_geometry_and_values(tmp_path, direction):
    v = _vol(direction)
    written = write_ct_series(v, tmp_path)
    s = load_ct_series(tmp_path)
    assert s.volume.shape == v.shape
    np.testing.assert_allclose(s.volume.origin, v.origin, atol=1e-4)
    np.testing.assert_allclose(s.volume.spacing, v.spacing, atol=1e-4)
    np.testing.assert_allclose(s.volume.direction, v.direction, atol=1e-6)
    np.testing.assert_array_equal(s.volume.array, v.array)
    assert s.volume.array.dtype == np.float32
    assert s.sop_instance_uids == written.sop_instance_uids
    assert s.frame_of_reference_uid == written.frame_of_reference_uid and s.orientation == "HFS"


def test_left_handed_grid_comes_back_reversed_with_same_world_positions(tmp_path):
    v = _vol(np.diag([1.0, 1.0, -1.0]))
    write_ct_series(v, tmp_path)
    r = read_ct_series(tmp_path)
    np.testing.assert_allclose(r.direction, np.eye(3), atol=1e-9)
    np.testing.assert_allclose(r.origin, v.to_world([0, 0, 7]), atol=1e-4)
    np.testing.assert_array_equal(r.array, v.array[::-1])


def test_sorting_ignores_file_names_and_applies_rescale(tmp_path):
    v = _vol()
    written = write_ct_series(v, tmp_path / "a")
    # Rename files so name order is reverse of position order, and give each slice its own rescale.
    (tmp_path / "b").mkdir()
    for k, p in enumerate(written.paths):
        ds = pydicom.dcmread(p)
        stored = ds.pixel_array.astype(np.int32)
        slope, intercept = 0.5 if k % 2 else 1.0, -1024.0 - k
        ds.PixelRepresentation = 0
        ds.PixelData = np.rint((stored - intercept) / slope).astype("<u2").tobytes()
        ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
        ds.save_as(tmp_path / "b" / f"z{len(written.paths) - k:03d}.dcm")
    r = read_ct_series(tmp_path / "b")
    np.testing.assert_allclose(r.origin, v.origin, atol=1e-4)
    np.testing.assert_allclose(r.array, v.array, atol=0.5)  # slope 0.5 stores half-HU steps


def test_native_dtype_keeps_int16(tmp_path):
    write_ct_series(_vol(), tmp_path)
    assert read_ct_series(tmp_path, dtype=None).array.dtype == np.int16


def _edit(written, index, **changes):
    ds = pydicom.dcmread(written.paths[index])
    for k, val in changes.items():
        setattr(ds, k, val)
    ds.save_as(written.paths[index])


def test_gantry_tilt_refused(tmp_path):
    w = write_ct_series(_vol(), tmp_path)
    for k, p in enumerate(w.paths):  # 10 deg tilt: y shifts by tan(10) * z step per slice
        ds = pydicom.dcmread(p)
        x, y, z = (float(c) for c in ds.ImagePositionPatient)
        ds.ImagePositionPatient = [x, y + np.tan(np.deg2rad(10)) * 3.0 * k, z]
        ds.GantryDetectorTilt = 10
        ds.save_as(p)
    with pytest.raises(GantryTiltError, match="tilt 10"):
        read_ct_series(tmp_path)


def test_missing_slice_refused(tmp_path):
    w = write_ct_series(_vol(), tmp_path)
    w.paths[3].unlink()
    with pytest.raises(MissingSlicesError, match="1 slice"):
        read_ct_series(tmp_path)


def test_non_uniform_spacing_refused(tmp_path):
    w = write_ct_series(_vol(), tmp_path)
    ds = pydicom.dcmread(w.paths[-1])
    x, y, z = (float(c) for c in ds.ImagePositionPatient)
    ds.ImagePositionPatient = [x, y, z + 1.3]
    ds.save_as(w.paths[-1])
    with pytest.raises(NonUniformSpacingError, match="resample"):
        read_ct_series(tmp_path)


def test_mixed_series_refused_and_selectable(tmp_path):
    a = write_ct_series(_vol(), tmp_path, prefix="A")
    b = write_ct_series(_vol(shape=(4, 16, 20)), tmp_path, PatientInfo(), prefix="B")
    with pytest.raises(MixedSeriesError, match="2 image series"):
        read_ct_series(tmp_path)
    assert read_ct_series(tmp_path, series_uid=b.series_uid).shape == (4, 16, 20)
    assert load_ct_series(tmp_path, series_uid=a.series_uid).series_uid == a.series_uid


def test_duplicate_positions_refused(tmp_path):
    w = write_ct_series(_vol(), tmp_path)
    ds = pydicom.dcmread(w.paths[2])
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    ds.save_as(tmp_path / "dup.dcm")
    with pytest.raises(MixedSeriesError, match="same position"):
        read_ct_series(tmp_path)


def test_truncated_pixel_data(tmp_path):
    w = write_ct_series(_vol(), tmp_path)
    data = w.paths[4].read_bytes()
    w.paths[4].write_bytes(data[:-100])
    with pytest.raises(TruncatedPixelDataError, match=w.paths[4].name):
        read_ct_series(tmp_path)


def test_empty_and_non_dicom(tmp_path):
    (tmp_path / "e").mkdir()
    with pytest.raises(NoImageSeriesError):
        read_ct_series(tmp_path / "e")
    (tmp_path / "x.dcm").write_bytes(b"hello")
    with pytest.raises(NotDicomError, match="x.dcm"):
        read_ct_series([tmp_path / "x.dcm"])


def test_real_ct_small():
    """pydicom's CT_small.dcm: GE CT slice, 128x128, slope 1 intercept -1024, FFS."""
    s = load_ct_series([get_testdata_file("CT_small.dcm")])
    v = s.volume
    assert v.shape == (1, 128, 128)
    np.testing.assert_allclose(v.origin, (-158.135803, -179.035797, -75.699997))
    np.testing.assert_allclose(v.spacing, (0.661468, 0.661468, 5.0))
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    np.testing.assert_array_equal(v.array[0], ds.pixel_array.astype(np.float32) - 1024.0)
    assert (v.array.min(), v.array.max()) == (-896.0, 1167.0)
    assert s.orientation == "FFS" and s.patient_id == "1CT1"


@pytest.mark.parametrize("name", ["MR_small.dcm", "MR_small_bigendian.dcm", "MR_small_implicit.dcm", "MR_small_expb.dcm"])
def test_real_mr_transfer_syntaxes_agree(name):
    ref = pydicom.dcmread(get_testdata_file("MR_small.dcm")).pixel_array
    v = read_ct_series([get_testdata_file(name)])
    assert v.shape == (1, 64, 64)
    np.testing.assert_array_equal(v.array[0], ref)
    np.testing.assert_allclose(v.origin, (-83.9063, -91.2, 6.6406), atol=1e-4)


def test_real_truncated_mr():
    with pytest.raises(TruncatedPixelDataError, match="8130 bytes"):
        read_ct_series([get_testdata_file("MR_truncated.dcm")])


def test_series_folder_with_dose_and_notes(tmp_path):
    """Other objects beside the slices (an RT Dose grid, a text file) do not disturb the series reader."""
    from igrt.io.dicom import write_rtdose

    v = _vol()
    w = write_ct_series(v, tmp_path)
    write_rtdose(v.with_array(np.abs(v.array) / 100.0), tmp_path / "dose.dcm", PatientInfo())
    (tmp_path / "README").write_text("export notes")
    r = load_ct_series(tmp_path)
    assert r.sop_instance_uids == w.sop_instance_uids
    np.testing.assert_array_equal(r.volume.array, v.array)


def test_missing_position_tag_names_file(tmp_path):
    from igrt.io.dicom.errors import MissingTagError

    w = write_ct_series(_vol(), tmp_path)
    ds = pydicom.dcmread(w.paths[3])
    del ds.ImagePositionPatient
    ds.save_as(w.paths[3])
    with pytest.raises(MissingTagError, match=f"{w.paths[3].name}.*ImagePositionPatient"):
        read_ct_series(tmp_path)
