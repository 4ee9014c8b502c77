"""A JSON-ready report of a DICOM folder (the `igrt info` schema, ``igrt.info/1``; see docs/dicom.md)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from igrt.geometry import Volume
from igrt.io.dicom.loader import load_folder, scan_folder, summarise
from igrt.io.dicom.rtstruct import is_point_roi, structure_volume_cc

SCHEMA = "igrt.info/1"


def _r(v, nd: int = 4):
    return None if v is None else round(float(v), nd)


def _grid(v: Volume) -> dict:
    return {
        "size_xyz": list(v.size_xyz),
        "spacing_mm": [_r(s) for s in v.spacing],
        "origin_mm": [_r(o) for o in v.origin],
        "direction": [[_r(x, 6) for x in row] for row in np.asarray(v.direction)],
    }


def folder_report(path: str | os.PathLike, supersample: int = 1) -> dict:
    """Summarise a folder: patients > studies > series, then per patient the planning data igrt reads.

    Raises the loader's typed errors (e.g. a structure set whose frame of
    reference matches no CT) so the CLI can print them as one line.
    """
    scan = scan_folder(path)
    summary = summarise(scan)
    out: dict = {
        "schema": SCHEMA,
        "path": str(Path(path)),
        "files": summary.files,
        "dicom_files": summary.dicom_files,
        "skipped": [{"path": p, "reason": r} for p, r in summary.skipped],
        "patients": [],
    }
    for pat in summary.patients:
        entry = {
            "patient_id": pat.patient_id,
            "patient_name": pat.patient_name,
            "studies": [
                {
                    "study_uid": st.study_uid,
                    "description": st.description,
                    "date": st.date,
                    "series": [
                        {
                            "series_uid": se.series_uid,
                            "modality": se.modality,
                            "description": se.description,
                            "instances": se.instances,
                            "frame_of_reference_uid": se.frame_of_reference_uid,
                        }
                        for se in st.series
                    ],
                }
                for st in pat.studies
            ],
            "planning": None,
        }
        if summary.dicom_files:
            lf = load_folder(path, patient_id=pat.patient_id, supersample=supersample, scan=scan)
            entry["planning"] = _planning(lf)
        out["patients"].append(entry)
    return out


def _planning(lf) -> dict:
    ref = lf.reference
    ct = None
    if lf.ct is not None:
        ct = {"series_uid": lf.ct.series_uid, "modality": lf.ct.modality, "orientation": lf.ct.orientation, **_grid(lf.ct.volume)}
        arr = lf.ct.volume.array
        ct["min"] = _r(arr.min(), 2)
        ct["max"] = _r(arr.max(), 2)
    plan = None
    if ref.plan is not None:
        p = ref.plan
        plan = {
            "label": p.label,
            "orientation": p.orientation.value,
            "isocentre_mm": None if p.isocentre_mm is None else [_r(v) for v in p.isocentre_mm],
            "isocentres_mm": [[_r(v) for v in iso] for iso in p.isocentres_mm],
            "prescription_gy": _r(p.prescription_gy),
            "fractions": p.fractions,
            "dose_per_fraction_gy": _r(p.dose_per_fraction_gy),
            "target": p.target_name,
            "prescription_source": lf.rtplan.prescription_source if lf.rtplan else "",
            "beams": [
                {
                    "number": b.number,
                    "name": b.name,
                    "gantry_deg": _r(b.gantry_deg),
                    "collimator_deg": _r(b.collimator_deg),
                    "couch_deg": _r(b.couch_deg),
                    "isocentre_mm": [_r(v) for v in b.isocentre_mm],
                    "energy_mv": _r(b.energy_mv),
                    "radiation_type": b.radiation_type,
                    "monitor_units": _r(b.monitor_units),
                }
                for b in p.beams
            ],
        }
    thickness = lf.ct.volume.spacing[2] if lf.ct is not None else None
    structures = []
    for s in ref.structures.values():
        structures.append(
            {
                "number": s.number,
                "name": s.name,
                "type": s.roi_type,
                "colour": list(s.colour),
                "contours": len(s.contours),
                "point": is_point_roi(s),
                "volume_cc": _r(structure_volume_cc(s, thickness), 3),
                "mask_volume_cc": None if s.mask is None else _r(s.volume_cc(), 3),
            }
        )
    dose = None
    if lf.rtdose is not None:
        d = lf.rtdose
        dmax = float(d.dose.array.max()) if d.dose.array.size else 0.0
        dose = {
            **_grid(d.dose),
            "units": d.units,
            "summation_type": d.summation_type,
            "max": _r(dmax),
            "max_gy": _r(dmax) if d.units == "GY" else None,
        }
    return {
        "frame_of_reference_uid": ref.frame_of_reference_uid,
        "study_uid": ref.study_uid,
        "ct": ct,
        "plan": plan,
        "structures": structures,
        "dose": dose,
        "registrations": [
            {"registered_frame": r.registered_for_uid, "source_frames": sorted(r.transforms)} for r in lf.registrations
        ],
        "missing": list(ref.missing),
        "notes": list(ref.notes),
    }
