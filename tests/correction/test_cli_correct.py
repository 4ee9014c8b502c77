"""`igrt correct` end to end (CliRunner, and the real entry point for errors)."""

from __future__ import annotations

import json
import sys

import pytest
from typer.testing import CliRunner

from igrt.cli import app, main
from igrt.geometry import PatientOrientation, RigidTransform
from igrt.planning import Beam, Plan
from igrt.registration.result import RegistrationResult

runner = CliRunner()
ISO = (10.0, -5.0, 30.0)


def _write_reg(path, t=(5.0, -3.0, 2.0), r=(0.0, 0.0, 0.0), success=True, pid="P1", centre=ISO):
    reg = RegistrationResult(
        RigidTransform.from_params(t, r, centre), centre, success, converged=success,
        failure_reason=None if success else "images do not overlap",
        uncertainty_mm=(0.2,) * 3, uncertainty_deg=(0.1,) * 3, patient_id=pid,
    )
    path.write_text(json.dumps(reg.to_dict()))
    return path


def _run_main(monkeypatch, capsys, args):
    monkeypatch.setattr(sys, "argv", ["igrt", *args])
    with pytest.raises(SystemExit) as exc:
        main()
    return exc.value.code, capsys.readouterr()


def test_correct_orientation_only_table_and_json(tmp_path):
    reg = _write_reg(tmp_path / "reg.json")
    res = runner.invoke(app, ["correct", "--registration", str(reg), "--orientation", "HFS"], terminal_width=200)
    assert res.exit_code == 0, res.output
    # HFS, anatomy 5 mm left / 3 mm anterior / 2 mm superior: couch left, away from gantry, down.
    assert "-5.0 mm" in res.output and "move couch 5.0 mm left" in res.output
    assert "move couch 2.0 mm away from gantry" in res.output and "lower couch 3.0 mm" in res.output
    assert "NEEDS_APPROVAL" in res.output  # |t| = 6.2 mm > 5 mm automatic band
    res = runner.invoke(app, ["correct", "-r", str(reg), "--orientation", "FFS", "--json"])
    d = json.loads(res.output)
    assert d["schema"] == "igrt.correction.decision/1"
    c = d["correction"]
    assert (c["lateral_mm"], c["longitudinal_mm"], c["vertical_mm"]) == pytest.approx((5.0, 2.0, -3.0))
    assert d["status"] == "NEEDS_APPROVAL" and d["rule"] == "approval_band"


def test_correct_with_plan_file_and_folder(tmp_path):
    from igrt.io.dicom import PatientInfo, write_rtplan

    plan = Plan("P", PatientOrientation.HFP, (Beam(1, "AP", 0.0, isocentre_mm=ISO),), 60.0, 30)
    (tmp_path / "plan").mkdir()
    write_rtplan(plan, tmp_path / "plan" / "rtplan.dcm", PatientInfo(patient_id="P1"))
    reg = _write_reg(tmp_path / "reg.json", t=(1.0, 0.0, 0.0))
    res = runner.invoke(app, ["correct", "-r", str(reg), "--plan", str(tmp_path / "plan" / "rtplan.dcm"), "--json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    assert d["inputs"]["orientation"] == "HFP" and d["inputs"]["plan_patient_id"] == "P1"
    assert d["correction"]["lateral_mm"] == pytest.approx(+1.0)  # HFP: patient's right is couch right
    assert d["status"] == "NO_ACTION"
    res = runner.invoke(app, ["correct", "-r", str(reg), "--plan", str(tmp_path / "plan"), "--couch", "4dof"], terminal_width=200)
    assert res.exit_code == 0, res.output
    assert "4DOF" in res.output and "move couch 1.0 mm right" in res.output
    # A registration of another patient is blocked (exit 3) with the reason.
    other = _write_reg(tmp_path / "other.json", t=(1.0, 0.0, 0.0), pid="P2")
    res = runner.invoke(app, ["correct", "-r", str(other), "--plan", str(tmp_path / "plan" / "rtplan.dcm")])
    assert res.exit_code == 3 and "BLOCKED" in res.output and "patient_mismatch" in res.output
    # An --orientation that contradicts the plan is refused.
    res = runner.invoke(app, ["correct", "-r", str(reg), "--plan", str(tmp_path / "plan"), "--orientation", "HFS"])
    assert res.exit_code != 0 and "contradicts" in str(res.exception)


def test_correct_pydicom_rtplan():
    from pydicom.data import get_testdata_file

    plan = get_testdata_file("rtplan.dcm")  # HFS, patient id00001, isocentre (235.7, 244.1, -725.0)
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        reg = _write_reg(Path(d) / "reg.json", t=(0.0, 0.0, -4.0), pid="id00001", centre=(235.711172833292, 244.135437110782, -724.97815409918))
        res = runner.invoke(app, ["correct", "-r", str(reg), "--plan", plan, "--json"])
    d = json.loads(res.output)
    # HFS, anatomy 4 mm inferior: move the couch 4 mm toward the gantry.
    assert d["correction"]["longitudinal_mm"] == pytest.approx(4.0) and d["status"] == "APPLY"


def test_correct_blocks_failed_registration(tmp_path, monkeypatch, capsys):
    reg = _write_reg(tmp_path / "reg.json", success=False)
    code, out = _run_main(monkeypatch, capsys, ["correct", "-r", str(reg), "--orientation", "HFS"])
    assert code == 3
    assert "BLOCKED" in out.out and "images do not overlap" in out.out


def test_correct_user_errors_one_line(tmp_path, monkeypatch, capsys):
    code, out = _run_main(monkeypatch, capsys, ["correct", "-r", str(tmp_path / "none.json"), "--orientation", "HFS"])
    assert code == 2 and "not found" in out.err and "Traceback" not in out.err
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    code, out = _run_main(monkeypatch, capsys, ["correct", "-r", str(bad), "--orientation", "HFS"])
    assert code == 2 and "not readable JSON" in out.err
    reg = _write_reg(tmp_path / "reg.json")
    code, out = _run_main(monkeypatch, capsys, ["correct", "-r", str(reg)])
    assert code == 2 and "--orientation" in out.err
    code, out = _run_main(monkeypatch, capsys, ["correct", "-r", str(reg), "--orientation", "HFS", "--couch", "5dof"])
    assert code == 2 and "unknown couch model" in out.err
