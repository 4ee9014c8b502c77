"""`igrt register`: files in, JSON and DICOM REG out, failures as exit codes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk
from typer.testing import CliRunner

from igrt.cli import app
from igrt.geometry import RigidTransform, Volume
from igrt.io.dicom import PatientInfo, read_spatial_registration, write_ct_series
from igrt.registration import synthetic as S

ISO = (-40.0, -10.0, 20.0)
TRUTH = RigidTransform.from_params((5.0, -3.0, 2.0), (1.0, 0.0, -1.0), ISO)


def _mha(v: Volume, path):
    img = sitk.GetImageFromArray(np.asarray(v.array, np.float32))
    img.SetOrigin(v.origin)
    img.SetSpacing(v.spacing)
    sitk.WriteImage(img, str(path))
    return path


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(61)
    plan = S.render(S.grid((48, 64, 64), (4.0, 4.0, 4.0)))
    daily = S.cbct_like(S.render(S.grid((46, 60, 62), (4.1, 3.9, 4.0)), TRUTH), rng)
    return plan, daily


def test_register_json_from_image_files(images, tmp_path):
    plan, daily = images
    p, d = _mha(plan, tmp_path / "plan.mha"), _mha(daily, tmp_path / "daily.mha")
    out = CliRunner().invoke(app, ["register", str(p), str(d), "--centre", "-40,-10,20", "--json"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    assert doc["schema"] == "igrt.registration/1" and doc["success"]
    m = RigidTransform(np.asarray(doc["matrix_planning_to_daily"]))
    t, r = m.params(ISO)
    tt, rr = TRUTH.params(ISO)
    assert np.abs(t - tt).max() < 0.4 and np.abs(np.asarray(r) - rr).max() < 0.3
    np.testing.assert_allclose(doc["translation_mm"], t, atol=1e-9)


def test_register_dicom_series_and_reg(images, tmp_path):
    plan, daily = images
    patient = PatientInfo(patient_id="REG01")
    ps = write_ct_series(plan, tmp_path / "ct", patient)
    ds = write_ct_series(daily, tmp_path / "cbct", PatientInfo(patient_id="REG01", study_uid=patient.study_uid))
    reg = tmp_path / "reg.dcm"
    out = CliRunner().invoke(app, ["register", str(tmp_path / "ct"), str(tmp_path / "cbct"), "--centre", "-40,-10,20",
                                   "--reg", str(reg)])
    assert out.exit_code == 0, out.output
    assert "registration OK" in out.output
    sr = read_spatial_registration(reg)
    assert sr.registered_for_uid == ps.frame_of_reference_uid
    daily_to_plan = sr.transform_from(ds.frame_of_reference_uid)
    # HU are rounded to integers in DICOM: same answer as from the float images, within 0.1 mm
    assert daily_to_plan.inverse().is_close(TRUTH, tol_mm=0.5, tol_deg=0.3)


def test_failed_registration_exits_1_and_bad_roi_is_one_line(images, tmp_path):
    plan, _ = images
    p = _mha(plan, tmp_path / "plan.mha")
    flat = _mha(plan.with_array(np.zeros(plan.shape, np.float32)), tmp_path / "flat.mha")
    out = CliRunner().invoke(app, ["register", str(p), str(flat), "--json"])
    assert out.exit_code == 1
    doc = json.loads(out.output)
    assert not doc["success"] and "constant" in doc["failure_reason"]
    out = CliRunner().invoke(app, ["register", str(p), str(p), "--roi", "PTV"])
    assert out.exit_code != 0 and "--structures" in str(out.exception)


def test_register_with_roi_from_rtstruct(images, tmp_path):
    from igrt.io.dicom import write_rtstruct
    from igrt.planning import Structure

    plan, daily = images
    patient = PatientInfo(patient_id="REG02")
    ps = write_ct_series(plan, tmp_path / "ct", patient)
    x, y, z = plan.world_coordinates()
    gtv = plan.with_array(((x + 64) ** 2 / 14**2 + (y + 22) ** 2 / 12**2 + (z - 48) ** 2 / 16**2) <= 1.0)
    write_rtstruct([Structure("GTV", gtv, "GTV", 1)], ps, tmp_path / "rs.dcm")
    d = _mha(daily, tmp_path / "daily.mha")
    out = CliRunner().invoke(app, ["register", str(tmp_path / "ct"), str(d), "--structures", str(tmp_path / "rs.dcm"),
                                   "--roi", "GTV", "--margin", "40", "--json"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    centre = np.asarray(doc["centre_mm"])
    assert np.linalg.norm(centre - np.array([-64.0, -22.0, 48.0])) < 5.0  # reported about the ROI centre
    t, _ = RigidTransform(np.asarray(doc["matrix_planning_to_daily"])).params(centre)
    assert np.abs(t - TRUTH.params(centre)[0]).max() < 0.5
    out = CliRunner().invoke(app, ["register", str(tmp_path / "ct"), str(d), "--structures", str(tmp_path / "rs.dcm"),
                                   "--roi", "PTV"])
    assert out.exit_code != 0 and "GTV" in str(out.exception)
