"""DICOM + truth.json export reads back through igrt.io.dicom / `igrt info`; the `igrt phantom` command."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from igrt.phantom import build_patient, simulate_course
from igrt.phantom.export import export_patient


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    p = build_patient("pelvis", shape=(40, 64, 64), spacing=(6.0, 6.0, 6.0), seed=2)
    course = simulate_course(p, 3, seed=8)
    out = tmp_path_factory.mktemp("phantom")
    paths = export_patient(p, out, course)
    return p, course, out, paths


def test_export_reads_back_with_the_same_structures_and_plan(exported):
    from igrt.io.dicom import load_planning_folder

    p, _, out, _ = exported
    ref = load_planning_folder(out)
    assert ref.patient_id == p.reference.patient_id
    assert ref.frame_of_reference_uid == p.reference.frame_of_reference_uid
    assert set(ref.structures) == set(p.structures)
    for name, s in p.structures.items():
        back = ref.structures[name]
        assert back.roi_type == s.roi_type
        a, b = s.mask.array, np.asarray(back.mask.array) > 0.5
        dice = 2 * np.count_nonzero(a & b) / max(np.count_nonzero(a) + np.count_nonzero(b), 1)
        assert dice > 0.9, f"{name}: Dice {dice:.3f}"
    np.testing.assert_allclose(ref.ct.origin, p.ct.origin, atol=1e-4)
    np.testing.assert_allclose(ref.ct.spacing, p.ct.spacing, atol=1e-4)
    assert np.max(np.abs(ref.ct.array - np.round(p.ct.array))) <= 1.0
    plan = ref.plan
    assert (plan.prescription_gy, plan.fractions, len(plan.beams)) == (60.0, 20, 7)
    np.testing.assert_allclose(plan.isocentre_mm, p.plan.isocentre_mm, atol=0.01)
    np.testing.assert_allclose(sorted(b.gantry_deg for b in plan.beams), sorted(b.gantry_deg for b in p.plan.beams), atol=0.01)


def test_truth_json_holds_every_number(exported):
    p, course, _, paths = exported
    truth = json.loads(open(paths["truth"]).read())
    assert truth["schema"] == "igrt.phantom.truth/1" and truth["site"] == "pelvis"
    np.testing.assert_allclose(truth["plan"]["isocentre_mm"], p.plan.isocentre_mm)
    assert truth["structures"]["Bladder"]["volume_cc"] == pytest.approx(p.volume_cc("Bladder"), abs=1e-3)
    fx = truth["course"]["fractions"]
    assert len(fx) == 3
    for f, d in zip(course.fractions, fx):
        np.testing.assert_allclose(d["setup_error"]["matrix"], f.setup_error.matrix)
        np.testing.assert_allclose(d["setup_translation_mm"], f.setup_translation_mm)
        np.testing.assert_allclose(d["setup_error"]["translation_mm"], f.setup_translation_mm, atol=1e-9)
        assert d["pelvis"]["bladder_volume_cc"] == pytest.approx(f.pelvis.bladder_volume_cc)
        assert d["breathing"]["period_s"] == pytest.approx(f.breathing.period_s)


def test_igrt_info_lists_the_structures(exported):
    from igrt.cli import app

    p, _, out, _ = exported
    res = CliRunner().invoke(app, ["info", str(out), "--json"])
    assert res.exit_code == 0, res.output
    planning = json.loads(res.output)["patients"][0]["planning"]
    listed = {s["name"]: s for s in planning["structures"]}
    assert set(listed) == set(p.structures)
    for name, s in p.structures.items():
        assert listed[name]["type"] == s.roi_type
        if name not in ("Skin",):  # a 2 mm shell on 6 mm voxels is all partial volume
            assert listed[name]["mask_volume_cc"] == pytest.approx(s.volume_cc(), rel=0.1)
    assert planning["plan"] is not None


def test_phantom_command_writes_a_set(tmp_path):
    from igrt.cli import app

    out = tmp_path / "lung"
    res = CliRunner().invoke(app, ["phantom", "--site", "lung", "--out", str(out), "--fractions", "2", "--seed", "4",
                                   "--shape", "40,48,48", "--spacing", "8,8,8"])
    assert res.exit_code == 0, res.output
    truth = json.loads((out / "truth.json").read_text())
    assert truth["site"] == "lung" and len(truth["course"]["fractions"]) == 2
    assert truth["ct"]["shape_zyx"] == [40, 48, 48] and truth["ct"]["spacing_xyz_mm"] == [8.0, 8.0, 8.0]
    assert (out / "RTSTRUCT.dcm").exists() and (out / "RTPLAN.dcm").exists() and any((out / "CT").iterdir())
    bad = CliRunner().invoke(app, ["phantom", "--site", "lung", "--out", str(out), "--shape", "40,48"])
    assert bad.exit_code != 0


def test_course_truth_round_trips_through_json(exported):
    from igrt.phantom import CourseTruth, PhantomError

    _, course, _, paths = exported
    back = CourseTruth.from_dict(json.loads(open(paths["truth"]).read())["course"])
    assert back.config == course.config and back.systematic_translation_mm == course.systematic_translation_mm
    for f, g in zip(course.fractions, back.fractions):
        assert g.setup_error.is_close(f.setup_error, 1e-9, 1e-9)
        assert (g.breathing, g.pelvis, g.target_shift_mm, g.index) == (f.breathing, f.pelvis, f.target_shift_mm, f.index)
    with pytest.raises(PhantomError, match="schema"):
        CourseTruth.from_dict({"schema": "something else"})
