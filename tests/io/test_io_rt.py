"""RTSTRUCT / RTPLAN / RTDOSE / REG: round trips on synthetic data and pydicom's real RT files."""

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from io_helpers import dice
from igrt.geometry import PatientOrientation, RigidTransform, Volume
from igrt.io.dicom import (
    PatientInfo,
    load_ct_series,
    rasterise,
    read_rtdose,
    read_rtplan,
    read_rtstruct,
    read_spatial_registration,
    structure_volume_cc,
    write_rtdose,
    write_rtplan,
    write_spatial_registration,
)
from igrt.io.dicom.errors import FrameOfReferenceMismatchError, MissingTagError, NotDicomError, UnsupportedDicomError


# ----------------------------------------------------------------- RTSTRUCT
def test_rtstruct_round_trip_dice_and_references(written_set, reference):
    ss = read_rtstruct(written_set.rtstruct_path)
    ct = load_ct_series(written_set.folder / "CT")
    assert ss.frame_of_reference_uid == ct.frame_of_reference_uid
    assert ss.referenced_series_uid == ct.series_uid
    got = rasterise(ss, ct)
    assert set(got) == set(reference.structures)
    for name, s in reference.structures.items():
        d = dice(got[name].mask.array, s.mask.array)
        assert d > 0.98, (name, d)
        assert got[name].roi_type == s.roi_type and got[name].colour == s.colour and got[name].number == s.number
        # Volume from the contours agrees with the voxel count within 2 %.
        assert structure_volume_cc(got[name], ct.volume.spacing[2]) == pytest.approx(s.volume_cc(), rel=0.02)
    # Every contour refers to a CT slice of the series.
    ds = pydicom.dcmread(written_set.rtstruct_path)
    uids = set(ct.sop_instance_uids)
    for rc in ds.ROIContourSequence:
        for c in rc.ContourSequence:
            assert c.ContourImageSequence[0].ReferencedSOPInstanceUID in uids
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.481.3"


def test_rtstruct_partial_volume(written_set, reference):
    ss = read_rtstruct(written_set.rtstruct_path)
    ct = load_ct_series(written_set.folder / "CT")
    pv = rasterise(ss, ct, supersample=4)["PTV"].mask.array
    assert pv.dtype == np.float32 and 0 < pv[(pv > 0) & (pv < 1)].size
    # Partial-volume total within 2 % of the binary mask's voxel count.
    assert pv.sum() == pytest.approx(reference.structures["PTV"].mask.array.sum(), rel=0.02)


def test_rtstruct_frame_mismatch(written_set):
    ss = read_rtstruct(written_set.rtstruct_path)
    ct = load_ct_series(written_set.folder / "CT")
    from dataclasses import replace

    other = replace(ct, frame_of_reference_uid="1.2.3.4")
    with pytest.raises(FrameOfReferenceMismatchError, match="matches no CT"):
        rasterise(ss, other)


def test_real_rtstruct():
    """pydicom's rtstruct.dcm (no preamble): BODY of three 400x300 mm rectangles 10 mm apart, two isocentre points."""
    ss = read_rtstruct(get_testdata_file("rtstruct.dcm"))
    assert ss.label == "sep30"
    assert ss.frame_of_reference_uid == "1.2.826.0.1.3680043.8.498.2010020400001.2"
    assert ss.referenced_series_uid == "1.2.826.0.1.3680043.8.498.2010020400001.2.1.1"
    by = ss.by_name()
    assert list(by) == ["patient", "Isocenter 1", "Isocenter 2"]
    body = by["patient"]
    assert body.roi_type == "EXTERNAL" and body.colour == (220, 160, 120) and len(body.contours) == 3
    assert [c[0, 2] for c in body.contours] == [-200.0, -190.0, -180.0]
    assert structure_volume_cc(body) == pytest.approx(3 * 400 * 300 * 10 / 1000)  # 3600 cc
    assert by["Isocenter 1"].roi_type == "ISOCENTER"
    np.testing.assert_array_equal(by["Isocenter 1"].contours[0], [[0.0, 0.0, 0.0]])
    assert structure_volume_cc(by["Isocenter 2"]) == 0.0
    # On a 5 mm grid covering it, the rectangles fill 80 x 60 pixels on 3 of every 2 slices.
    grid = Volume(np.zeros((5, 70, 90)), (-220.0, -170.0, -200.0), (5.0, 5.0, 5.0))
    masks = rasterise(ss, grid)
    m = masks["patient"].mask.array
    assert m[0].sum() == 80 * 60 and m[2].sum() == 80 * 60 and m[4].sum() == 80 * 60 and m[1].sum() == 0


# ----------------------------------------------------------------- RTPLAN
def test_rtplan_round_trip(written_set, reference):
    p = read_rtplan(written_set.rtplan_path)
    assert p.referenced_structure_set_uid == written_set.rtstruct_uid
    plan, exp = p.plan, reference.plan
    assert plan.orientation == PatientOrientation.HFS and plan.label == "SBRT"
    assert plan.prescription_gy == pytest.approx(54.0) and plan.fractions == 3 and plan.target_name == "PTV"
    assert plan.dose_per_fraction_gy == pytest.approx(18.0)
    assert len(plan.beams) == 5
    for b, e in zip(plan.beams, exp.beams):
        assert (b.number, b.name, b.gantry_deg, b.collimator_deg, b.couch_deg) == (e.number, e.name, e.gantry_deg, e.collimator_deg, e.couch_deg)
        np.testing.assert_allclose(b.isocentre_mm, e.isocentre_mm, atol=1e-6)
        assert b.monitor_units == pytest.approx(e.monitor_units) and b.energy_mv == 6.0
    assert plan.isocentres_mm == ((5.5, -2.0, 13.0),)


@pytest.mark.parametrize("orientation", ["HFP", "FFS", "HFDL"])
def test_rtplan_orientations(tmp_path, reference, orientation):
    from dataclasses import replace

    plan = replace(reference.plan, orientation=PatientOrientation(orientation))
    write_rtplan(plan, tmp_path / "p.dcm", PatientInfo())
    assert read_rtplan(tmp_path / "p.dcm").plan.orientation.value == orientation


def test_real_rtplan():
    p = read_rtplan(get_testdata_file("rtplan.dcm"))
    plan = p.plan
    assert plan.label == "Plan1" and plan.orientation == PatientOrientation.HFS
    assert plan.fractions == 30
    assert plan.prescription_gy == pytest.approx(30.826203) and plan.target_name == "PTV"
    assert plan.dose_per_fraction_gy == pytest.approx(1.02754010)
    (b,) = plan.beams
    assert (b.number, b.name, b.gantry_deg, b.collimator_deg, b.couch_deg, b.energy_mv) == (1, "Field 1", 0.0, 0.0, 0.0, 6.0)
    np.testing.assert_allclose(b.isocentre_mm, (235.711172833292, 244.135437110782, -724.97815409918))
    assert b.monitor_units == pytest.approx(116.0036697)
    assert p.referenced_structure_set_uid == "1.2.333.444.55.6.7777.88888"
    assert p.patient_id == "id00001"


def test_real_truncated_rtplan():
    with pytest.raises(MissingTagError, match="IsocenterPosition needs 3 numbers"):
        read_rtplan(get_testdata_file("rtplan_truncated.dcm"))


def test_rtplan_missing_beams(tmp_path):
    ds = pydicom.dcmread(get_testdata_file("rtplan.dcm"))
    del ds.BeamSequence
    ds.save_as(tmp_path / "nobeams.dcm")
    with pytest.raises(MissingTagError, match="nobeams.dcm.*BeamSequence"):
        read_rtplan(tmp_path / "nobeams.dcm")


def test_wrong_object_kind():
    with pytest.raises(NotDicomError, match="expected an RT Plan, found RTDOSE"):
        read_rtplan(get_testdata_file("rtdose.dcm"))


# ----------------------------------------------------------------- RTDOSE
def test_rtdose_round_trip(written_set, reference):
    d = read_rtdose(written_set.rtdose_path)
    assert d.units == "GY" and d.referenced_plan_uid == written_set.rtplan_uid
    assert d.frame_of_reference_uid == written_set.patient.frame_of_reference_uid
    assert d.dose.same_grid(reference.dose)
    exp = reference.dose.array
    assert np.abs(d.dose.array - exp).max() / exp.max() < 1e-3
    assert float(d.dose.array.max()) == pytest.approx(float(exp.max()), rel=1e-6)


def test_rtdose_left_handed_and_reversed_frames(tmp_path, reference):
    v = reference.dose
    flipped = Volume(v.array[::-1].copy(), v.to_world([0, 0, v.shape[0] - 1]), v.spacing, np.diag([1.0, 1.0, -1.0]))
    write_rtdose(flipped, tmp_path / "d.dcm", PatientInfo())
    d = read_rtdose(tmp_path / "d.dcm").dose
    assert d.same_grid(v)
    np.testing.assert_allclose(d.array, v.array, rtol=1e-6, atol=1e-6)


def test_real_rtdose():
    """pydicom's rtdose.dcm: 15 frames of 10x10, 10 mm pixels, 5 mm frames, RELATIVE units, scaling 1e-6."""
    d = read_rtdose(get_testdata_file("rtdose.dcm"))
    v = d.dose
    assert v.shape == (15, 10, 10)
    np.testing.assert_allclose(v.origin, (189.43125, 199.43125, -761.87))
    np.testing.assert_allclose(v.spacing, (10.0, 10.0, 5.0))
    assert d.units == "RELATIVE" and d.summation_type == "BEAM"
    stored = pydicom.dcmread(get_testdata_file("rtdose.dcm")).pixel_array
    assert float(v.array.max()) == pytest.approx(stored.max() * 1e-6) == pytest.approx(1.254)
    assert d.referenced_plan_uid == "1.2.123.456.78.9.0123.4567.89012345678901"
    # Big-endian and RLE encodings of the same grid read identically.
    for name in ("rtdose_expb.dcm", "rtdose_rle.dcm"):
        np.testing.assert_array_equal(read_rtdose(get_testdata_file(name)).dose.array, v.array)


# ----------------------------------------------------------------- REG
def test_reg_round_trip(tmp_path, written_set):
    t = RigidTransform.from_params((3.2, -1.5, 7.25), (1.5, -2.0, 3.5), centre_mm=(5.5, -2.0, 13.0))
    ct = written_set.ct
    daily_for = pydicom.uid.generate_uid()
    uid = write_spatial_registration(
        t,
        tmp_path / "reg.dcm",
        written_set.patient,
        registered_for_uid=daily_for,
        source_for_uid=ct.frame_of_reference_uid,
        source_images=(ct.sop_class_uid, ct.sop_instance_uids, ct.series_uid),
    )
    r = read_spatial_registration(tmp_path / "reg.dcm")
    assert r.sop_instance_uid == uid and r.registered_for_uid == daily_for
    got = r.transform_from(ct.frame_of_reference_uid)
    assert got.is_close(t, tol_mm=1e-6, tol_deg=1e-6)
    assert r.transform_from(daily_for).is_close(RigidTransform.identity())
    with pytest.raises(MissingTagError):
        r.transform_from("1.2.3")
    ds = pydicom.dcmread(tmp_path / "reg.dcm")
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.1" and ds.Modality == "REG"
    assert len(ds.RegistrationSequence[1].ReferencedImageSequence) == len(ct.sop_instance_uids)


def test_reg_refuses_same_frame(tmp_path):
    with pytest.raises(UnsupportedDicomError):
        write_spatial_registration(RigidTransform.identity(), tmp_path / "r.dcm", PatientInfo(), "1.2.3", "1.2.3")


def test_real_single_frame_dose():
    """rtdose_1frame.dcm holds the first frame of rtdose.dcm (and a 15-value offset vector)."""
    one = read_rtdose(get_testdata_file("rtdose_1frame.dcm"))
    full = read_rtdose(get_testdata_file("rtdose.dcm")).dose
    assert one.dose.shape == (1, 10, 10)
    np.testing.assert_array_equal(one.dose.array[0], full.array[0])
    np.testing.assert_allclose(one.dose.spacing, (10.0, 10.0, 5.0))
    assert any("1 frame" in n for n in one.notes)


def test_truncated_dose(tmp_path, written_set):
    from igrt.io.dicom.errors import TruncatedPixelDataError

    raw = written_set.rtdose_path.read_bytes()
    (tmp_path / "d.dcm").write_bytes(raw[: len(raw) - 4000])
    with pytest.raises(TruncatedPixelDataError, match="d.dcm"):
        read_rtdose(tmp_path / "d.dcm")


def test_other_software_reads_our_ct_and_dose(written_set, reference):
    """GDCM (through SimpleITK) places our CT series and RT Dose grid where igrt does."""
    import SimpleITK as sitk

    from igrt.io.images import volume_from_sitk

    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(written_set.folder / "CT")))
    ct = volume_from_sitk(reader.Execute())
    assert ct.same_grid(reference.ct)
    np.testing.assert_array_equal(ct.array, reference.ct.array)
    dose = volume_from_sitk(sitk.ReadImage(str(written_set.rtdose_path)))
    assert dose.same_grid(reference.dose)
    scaling = float(pydicom.dcmread(written_set.rtdose_path, stop_before_pixels=True).DoseGridScaling)
    got = dose.array.astype(np.float64) * scaling  # GDCM leaves DoseGridScaling to the caller
    assert np.abs(got - reference.dose.array).max() < 1e-3 * reference.dose.array.max()


def test_arc_beam_noted(tmp_path):
    ds = pydicom.dcmread(get_testdata_file("rtplan.dcm"))
    cps = ds.BeamSequence[0].ControlPointSequence
    cps[0].GantryRotationDirection = "CW"
    cps[0].GantryAngle = "181"
    cps[1].GantryAngle = "179"
    ds.save_as(tmp_path / "arc.dcm")
    p = read_rtplan(tmp_path / "arc.dcm")
    assert p.plan.beams[0].gantry_deg == 181.0
    assert any("arc (CW 181 -> 179 deg)" in n for n in p.notes)
