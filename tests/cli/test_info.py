"""`igrt info`: tables, the igrt.info/1 JSON document, and one-line errors."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "io"))
from io_helpers import make_reference  # noqa: E402

from igrt.cli import app  # noqa: E402

IGRT = Path(sys.executable).parent / "igrt"


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    from igrt.io.dicom import write_planning_folder

    ref = make_reference()
    out = tmp_path_factory.mktemp("info")
    write_planning_folder(ref, out)
    (out / "readme.txt").write_text("not dicom")
    return out, ref


def test_json_schema_and_values(folder):
    out, ref = folder
    res = CliRunner().invoke(app, ["info", str(out), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["schema"] == "igrt.info/1"
    assert doc["files"] == 28 and doc["dicom_files"] == 27
    assert [s["path"] for s in doc["skipped"]] == ["readme.txt"]
    (pat,) = doc["patients"]
    assert pat["patient_id"] == "P1" and pat["patient_name"] == "Test^Patient"
    (study,) = pat["studies"]
    mods = {s["modality"]: s["instances"] for s in study["series"]}
    assert mods == {"CT": 24, "RTSTRUCT": 1, "RTPLAN": 1, "RTDOSE": 1}
    pl = pat["planning"]
    assert pl["ct"]["size_xyz"] == [56, 48, 24] and pl["ct"]["spacing_mm"] == [1.5, 1.25, 2.5]
    plan = pl["plan"]
    assert plan["isocentre_mm"] == [5.5, -2.0, 13.0] and plan["orientation"] == "HFS"
    assert plan["prescription_gy"] == 54.0 and plan["fractions"] == 3 and plan["dose_per_fraction_gy"] == 18.0
    assert [b["gantry_deg"] for b in plan["beams"]] == [0.0, 72.0, 144.0, 216.0, 288.0]
    assert [b["couch_deg"] for b in plan["beams"]] == [0.0, 0.0, 0.0, 0.0, 270.0]
    assert [b["collimator_deg"] for b in plan["beams"]] == [0.0, 10.0, 20.0, 30.0, 40.0]
    structs = {s["name"]: s for s in pl["structures"]}
    assert set(structs) == {"BODY", "PTV", "Lung_R"}
    for name, s in structs.items():
        truth = ref.structures[name].volume_cc()
        assert s["volume_cc"] == pytest.approx(truth, rel=0.03), name
        assert s["type"] == ref.structures[name].roi_type
    d = pl["dose"]
    assert d["units"] == "GY" and d["max_gy"] == pytest.approx(float(ref.dose.array.max()), rel=1e-4)
    assert d["size_xyz"] == [56, 48, 24]
    assert pl["missing"] == [] and any("readme.txt" in n for n in pl["notes"])


def test_tables(folder):
    out, _ = folder
    res = CliRunner().invoke(app, ["info", str(out)])
    assert res.exit_code == 0, res.output
    for text in ("54.00 Gy in 3 fractions", "Lung_R", "288.0", "RTDOSE", "max 59.9"):
        assert text in res.output


def test_real_plan_file(tmp_path):
    shutil.copy(get_testdata_file("rtplan.dcm"), tmp_path / "plan.dcm")
    res = CliRunner().invoke(app, ["info", str(tmp_path), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    pl = doc["patients"][0]["planning"]
    assert pl["plan"]["fractions"] == 30 and pl["plan"]["prescription_gy"] == pytest.approx(30.826203)
    assert pl["plan"]["isocentre_mm"] == pytest.approx([235.7112, 244.1354, -724.9782])
    assert [m.split(":")[0] for m in pl["missing"]] == ["CT", "RTSTRUCT", "RTDOSE"]


def test_two_patients_listed_separately(tmp_path):
    for n in ("rtplan.dcm", "rtstruct.dcm"):
        shutil.copy(get_testdata_file(n), tmp_path / n)
    doc = json.loads(CliRunner().invoke(app, ["info", str(tmp_path), "--json"]).output)
    by_id = {p["patient_id"]: p for p in doc["patients"]}
    assert set(by_id) == {"id00001", "tPhantom30sep"}
    assert by_id["id00001"]["planning"]["plan"]["fractions"] == 30
    body = {s["name"]: s for s in by_id["tPhantom30sep"]["planning"]["structures"]}["patient"]
    assert body["volume_cc"] == pytest.approx(3600.0) and body["type"] == "EXTERNAL"


def test_errors_are_one_line_and_exit_2(tmp_path):
    """A missing folder, and a structure set whose frame of reference matches no CT."""
    import pydicom

    from igrt.io.dicom import PatientInfo, write_ct_series

    write_ct_series(make_reference().ct, tmp_path / "ct", PatientInfo(patient_id="tPhantom30sep"))
    ds = pydicom.dcmread(get_testdata_file("rtstruct.dcm"), force=True)
    ds.save_as(tmp_path / "ct" / "rs.dcm")
    for args, text in (([str(tmp_path / "missing")], "no such folder"), ([str(tmp_path / "ct")], "matches no CT")):
        proc = subprocess.run([str(IGRT), "info", *args], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2, proc.stderr
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and text in lines[0] and "Traceback" not in proc.stderr
