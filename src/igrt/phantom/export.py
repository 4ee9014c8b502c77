"""Writing a phantom patient (and its course truth) to disk: DICOM planning set + truth.json."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from igrt.phantom.course import CourseTruth

TRUTH_SCHEMA = "igrt.phantom.truth/1"


def truth_dict(patient, course: CourseTruth | None = None) -> dict:
    """Every ground-truth number of the patient (and course) as a JSON-ready dict (schema in docs/phantom.md)."""
    cfg = patient.config
    ref = patient.reference
    plan = patient.plan
    structures = {}
    for name, s in ref.structures.items():
        entry = {"roi_type": s.roi_type, "number": s.number, "volume_cc": round(s.volume_cc(), 4)}
        if np.any(s.mask.array):
            entry["centroid_mm"] = [round(float(v), 4) for v in s.centroid_mm()]
        structures[name] = entry
    cfg_dict = {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.__dict__.items()}
    out = {
        "schema": TRUTH_SCHEMA,
        "site": patient.site,
        "seed": patient.seed,
        "patient_id": ref.patient_id,
        "patient_name": ref.patient_name,
        "frame_of_reference_uid": ref.frame_of_reference_uid,
        "coordinates": "DICOM LPS, mm; patient orientation HFS",
        "ct": {
            "shape_zyx": list(patient.ct.shape),
            "spacing_xyz_mm": list(patient.ct.spacing),
            "origin_mm": list(patient.ct.origin),
        },
        "config": cfg_dict,
        "plan": {
            "label": plan.label,
            "orientation": plan.orientation.value,
            "isocentre_mm": list(plan.isocentre_mm),
            "prescription_gy": plan.prescription_gy,
            "fractions": plan.fractions,
            "dose_per_fraction_gy": plan.dose_per_fraction_gy,
            "target_name": plan.target_name,
            "beams": [{"number": b.number, "name": b.name, "gantry_deg": b.gantry_deg, "collimator_deg": b.collimator_deg,
                       "couch_deg": b.couch_deg, "energy_mv": b.energy_mv} for b in plan.beams],
        },
        "target_centre_mm": [float(v) for v in patient.target_centre_mm],
        "anatomy": {k: (np.asarray(v).tolist() if isinstance(v, np.ndarray) else v) for k, v in patient.anatomy.items()},
        "labels": {str(k): v for k, v in sorted(patient.label_names.items())},
        "structures": structures,
        "course": None if course is None else course.to_dict(),
    }
    return out


def export_patient(patient, out_dir: str | os.PathLike, course: CourseTruth | None = None) -> dict:
    """Write CT, RTSTRUCT and RTPLAN (via `igrt.io.dicom`) and ``truth.json`` into ``out_dir``.

    Returns ``{"folder", "truth", "ct", "rtstruct", "rtplan"}`` paths (str).
    """
    from igrt.io.dicom import write_planning_folder  # I/O lives in igrt.io; imported here only when exporting

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = write_planning_folder(patient.reference, out)
    truth_path = out / "truth.json"
    truth_path.write_text(json.dumps(truth_dict(patient, course), indent=1))
    return {
        "folder": str(out),
        "truth": str(truth_path),
        "ct": str(out / "CT"),
        "rtstruct": str(written.rtstruct_path) if written.rtstruct_path else None,
        "rtplan": str(written.rtplan_path) if written.rtplan_path else None,
    }
