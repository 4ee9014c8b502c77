"""Folder loader: complete and incomplete exports, skipped files, refused mixtures."""

import shutil

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from io_helpers import dice, make_reference
from igrt.io.dicom import PatientInfo, load_folder, load_planning_folder
from igrt.io.dicom.errors import FrameOfReferenceMismatchError, MissingSlicesError, NotDicomError, PatientMismatchError


def _copy(written_set, dst, parts=("CT", "RTSTRUCT.dcm", "RTPLAN.dcm", "RTDOSE.dcm")):
    dst.mkdir(parents=True, exist_ok=True)
    for name in parts:
        src = written_set.folder / name
        if src.is_dir():
            shutil.copytree(src, dst / name)
        else:
            shutil.copy(src, dst / name)
    return dst


def test_complete_folder(written_set, reference):
    lf = load_folder(written_set.folder)
    r = lf.reference
    assert r.missing == () and r.notes == ()
    assert r.patient_id == "P1" and r.patient_name == "Test^Patient"
    assert r.frame_of_reference_uid == written_set.patient.frame_of_reference_uid
    assert r.ct.same_grid(reference.ct)
    np.testing.assert_array_equal(r.ct.array, reference.ct.array)
    assert dice(r.structure("ptv").mask.array, reference.structures["PTV"].mask.array) > 0.98
    assert r.plan.isocentre_mm == (5.5, -2.0, 13.0) and r.plan.fractions == 3
    assert np.abs(r.dose.array - reference.dose.array).max() < 1e-3 * reference.dose.array.max()
    assert lf.rtplan.referenced_structure_set_uid == lf.structure_set.sop_instance_uid
    assert lf.rtdose.referenced_plan_uid == lf.rtplan.sop_instance_uid
    s = lf.summary
    assert s.files == s.dicom_files == 24 + 3 and s.skipped == ()
    (p,) = s.patients
    (st,) = p.studies
    assert sorted(se.modality for se in st.series) == ["CT", "RTDOSE", "RTPLAN", "RTSTRUCT"]


def test_plan_without_ct(tmp_path, written_set):
    folder = _copy(written_set, tmp_path / "f", ("RTPLAN.dcm", "RTSTRUCT.dcm"))
    r = load_planning_folder(folder)
    assert r.ct is None and r.dose is None
    assert any(m.startswith("CT") for m in r.missing) and any(m.startswith("RTDOSE") for m in r.missing)
    assert r.plan.prescription_gy == pytest.approx(54.0)
    assert r.structures["PTV"].mask is None and len(r.structures["PTV"].contours) > 0
    assert any("contours only" in n for n in r.notes)


def test_dose_without_structures(tmp_path, written_set):
    folder = _copy(written_set, tmp_path / "f", ("CT", "RTDOSE.dcm"))
    r = load_planning_folder(folder)
    assert r.structures == {} and r.plan is None and r.dose is not None and r.ct is not None
    assert [m.split(":")[0] for m in r.missing] == ["RTSTRUCT", "RTPLAN"]


def test_partial_ct_noted(tmp_path, written_set):
    folder = _copy(written_set, tmp_path / "f")
    cts = sorted((folder / "CT").iterdir())
    for p in cts[:8]:  # the export kept only the upper slices
        p.unlink()
    r = load_planning_folder(folder)
    assert r.ct.shape[0] == 16
    assert any("outside the CT slices" in n for n in r.notes)


def test_skips_non_dicom_and_corrupt_files(tmp_path, written_set):
    folder = _copy(written_set, tmp_path / "f")
    (folder / "notes.txt").write_text("exported by hand")
    (folder / "broken.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00UI\xff\xff")
    # A file cut right after its meta header (a copy interrupted mid-way).
    (folder / "cut.dcm").write_bytes((folder / "RTPLAN.dcm").read_bytes()[:300])
    lf = load_folder(folder)
    reasons = dict(lf.summary.skipped)
    assert set(reasons) == {"notes.txt", "broken.dcm", "cut.dcm"}
    assert "not a DICOM file" in reasons["notes.txt"]
    assert "corrupt" in reasons["broken.dcm"] and "corrupt" in reasons["cut.dcm"]
    assert lf.reference.ct is not None and sum("skipped" in n for n in lf.reference.notes) == 3


def test_truncated_ct_slice_is_reported_or_raised(tmp_path, written_set):
    folder = _copy(written_set, tmp_path / "f", ("CT", "RTPLAN.dcm"))
    p = sorted((folder / "CT").iterdir())[5]
    p.write_bytes(p.read_bytes()[:-500])
    r = load_planning_folder(folder)
    assert r.ct is None and any("truncated" in n and p.name in n for n in r.notes)
    from igrt.io.dicom.errors import TruncatedPixelDataError

    with pytest.raises(TruncatedPixelDataError, match=p.name):
        load_planning_folder(folder, strict=True)


def test_missing_slices_strict(tmp_path, written_set):
    folder = _copy(written_set, tmp_path / "f", ("CT",))
    sorted((folder / "CT").iterdir())[10].unlink()
    with pytest.raises(MissingSlicesError):
        load_planning_folder(folder, strict=True)
    assert "CT" in load_planning_folder(folder).missing[0]


def test_two_patients_refused(tmp_path, written_set):
    folder = _copy(written_set, tmp_path / "f", ("RTPLAN.dcm",))
    shutil.copy(get_testdata_file("rtplan.dcm"), folder / "other.dcm")
    with pytest.raises(PatientMismatchError, match="2 patients.*'P1'.*'id00001'"):
        load_planning_folder(folder)
    r = load_planning_folder(folder, patient_id="id00001")
    assert r.plan.fractions == 30 and any("other patients" in n for n in r.notes)


def test_rtstruct_frame_matches_no_ct(tmp_path, written_set):
    folder = _copy(written_set, tmp_path / "f", ("CT", "RTSTRUCT.dcm"))
    ds = pydicom.dcmread(folder / "RTSTRUCT.dcm")
    ds.ReferencedFrameOfReferenceSequence[0].FrameOfReferenceUID = "1.2.826.0.1.3680043.8.498.1"
    for roi in ds.StructureSetROISequence:
        roi.ReferencedFrameOfReferenceUID = "1.2.826.0.1.3680043.8.498.1"
    ds.save_as(folder / "RTSTRUCT.dcm")
    with pytest.raises(FrameOfReferenceMismatchError, match="RTSTRUCT.dcm.*matches no CT"):
        load_planning_folder(folder)


def test_dose_in_other_frame_refused(tmp_path, written_set):
    folder = _copy(written_set, tmp_path / "f", ("CT", "RTSTRUCT.dcm", "RTDOSE.dcm"))
    ds = pydicom.dcmread(folder / "RTDOSE.dcm")
    ds.FrameOfReferenceUID = "1.2.826.0.1.3680043.8.498.2"
    ds.save_as(folder / "RTDOSE.dcm")
    with pytest.raises(FrameOfReferenceMismatchError, match="RTDOSE.dcm"):
        load_planning_folder(folder)


def test_missing_required_tag_names_file(tmp_path, written_set):
    folder = _copy(written_set, tmp_path / "f", ("CT", "RTDOSE.dcm"))
    ds = pydicom.dcmread(folder / "RTDOSE.dcm")
    del ds.DoseGridScaling
    ds.save_as(folder / "RTDOSE.dcm")
    from igrt.io.dicom.errors import MissingTagError

    with pytest.raises(MissingTagError, match="RTDOSE.dcm.*DoseGridScaling"):
        load_planning_folder(folder)


def test_daily_images_in_other_frame_are_ignored(tmp_path, written_set):
    folder = _copy(written_set, tmp_path / "f", ("CT", "RTSTRUCT.dcm"))
    from igrt.io.dicom import write_ct_series

    daily = make_reference(shape=(6, 16, 16)).ct
    write_ct_series(daily, folder / "CBCT", PatientInfo(patient_id="P1", patient_name="Test^Patient"))
    r = load_planning_folder(folder)
    assert r.ct.shape == (24, 48, 56)
    assert any("other frame of reference" in n for n in r.notes)


def test_no_dicom_at_all(tmp_path):
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(NotDicomError, match="no DICOM files"):
        load_planning_folder(tmp_path)
    with pytest.raises(NotDicomError, match="no such folder"):
        load_planning_folder(tmp_path / "nope")


def test_real_rt_files_together(tmp_path):
    """pydicom's rtplan/rtdose share patient-less test data of different patients: the loader refuses the mix."""
    for n in ("rtplan.dcm", "rtdose.dcm", "rtstruct.dcm"):
        shutil.copy(get_testdata_file(n), tmp_path / n)
    with pytest.raises(PatientMismatchError, match="3 patients"):
        load_planning_folder(tmp_path)
    r = load_planning_folder(tmp_path, patient_id="tPhantom30sep")
    assert set(r.structures) == {"patient", "Isocenter 1", "Isocenter 2"} and r.ct is None
