"""Write a whole planning set (CT, RTSTRUCT, RTPLAN, RTDOSE) with shared UIDs and references."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pydicom.uid import generate_uid

from igrt.io.dicom.common import PatientInfo
from igrt.io.dicom.ct import CtSeries, write_ct_series
from igrt.io.dicom.errors import DicomError
from igrt.io.dicom.rtdose import write_rtdose
from igrt.io.dicom.rtplan import write_rtplan
from igrt.io.dicom.rtstruct import write_rtstruct
from igrt.planning import PlanningReference


@dataclass(frozen=True)
class WrittenPlanningSet:
    """Paths and UIDs of a written planning set."""

    folder: Path
    patient: PatientInfo
    ct: CtSeries
    rtstruct_path: Path | None
    rtstruct_uid: str | None
    rtplan_path: Path | None
    rtplan_uid: str | None
    rtdose_path: Path | None
    rtdose_uid: str | None


def write_planning_folder(reference: PlanningReference, folder: str | os.PathLike, patient: PatientInfo | None = None) -> WrittenPlanningSet:
    """Write ``reference`` as DICOM into ``folder``: CT series in ``CT/``, then RTSTRUCT, RTPLAN, RTDOSE files.

    All objects share the patient, study and FrameOfReferenceUID; RTSTRUCT
    refers to the CT slices, RTPLAN to the RTSTRUCT, RTDOSE to the RTPLAN.
    Structure masks must lie on the CT grid.
    """
    if reference.ct is None:
        raise DicomError("a planning set needs a CT to write; build or load one first")
    folder = Path(folder)
    patient = patient or PatientInfo(
        patient_id=reference.patient_id or "IGRT0001",
        patient_name=reference.patient_name or "IGRT^Phantom",
        study_uid=reference.study_uid or generate_uid(),
        frame_of_reference_uid=reference.frame_of_reference_uid or generate_uid(),
    )
    orientation = reference.plan.orientation if reference.plan is not None else "HFS"
    ct = write_ct_series(reference.ct, folder / "CT", patient, orientation=orientation)
    ss_path = ss_uid = plan_path = plan_uid = dose_path = dose_uid = None
    if reference.structures:
        ss_path = write_rtstruct(reference.structures, ct, folder / "RTSTRUCT.dcm")
        from igrt.io.dicom.common import read_dataset

        ss_uid = str(read_dataset(ss_path, stop_before_pixels=True).SOPInstanceUID)
    if reference.plan is not None:
        plan_path = folder / "RTPLAN.dcm"
        plan_uid = write_rtplan(reference.plan, plan_path, patient, structure_set_uid=ss_uid)
    if reference.dose is not None:
        dose_path = folder / "RTDOSE.dcm"
        dose_uid = write_rtdose(reference.dose, dose_path, patient, plan_uid=plan_uid)
    return WrittenPlanningSet(folder, patient, ct, ss_path, ss_uid, plan_path, plan_uid, dose_path, dose_uid)
