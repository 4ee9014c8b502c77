"""RT Plan: read orientation, isocentres, beams and prescription into a `Plan`; write a `Plan`.

Beam angles (gantry, collimator = BeamLimitingDeviceAngle, couch =
PatientSupportAngle) and the isocentre come from control point 0, where DICOM
requires them. The prescription is the total dose in Gy: the largest
TargetPrescriptionDose of a TARGET dose reference, else the sum of the beam
doses of fraction group 1 times its number of fractions.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import generate_uid

from igrt.geometry import PatientOrientation
from igrt.io.dicom.common import (
    quiet,
    RT_PLAN_STORAGE,
    RT_STRUCTURE_SET_STORAGE,
    PatientInfo,
    ds_number,
    floats,
    modality_of,
    new_dataset,
    read_dataset,
    save,
)
from igrt.io.dicom.errors import MissingTagError, NotDicomError
from igrt.planning import Beam, Plan


@dataclass(frozen=True, eq=False)
class RtPlan:
    """A read RTPLAN: the `Plan` plus the identifiers other objects refer to."""

    path: Path | None
    plan: Plan
    sop_instance_uid: str
    frame_of_reference_uid: str
    referenced_structure_set_uid: str
    patient_id: str = ""
    study_uid: str = ""
    setup_beams: tuple[str, ...] = ()
    prescription_source: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)


def _f(item: Dataset, keyword: str, default=None):
    v = item.get(keyword, None)
    if v is None or v == "":
        return default
    try:
        return float(v)
    except (TypeError, ValueError):
        return default


@quiet
def read_rtplan(path: str | os.PathLike, ds: Dataset | None = None, default_orientation: str | None = None) -> RtPlan:
    """Read an RTPLAN (photon or ion) into an `RtPlan`."""
    p = Path(path)
    ds = ds if ds is not None else read_dataset(p)
    if modality_of(ds) != "RTPLAN":
        raise NotDicomError(f"expected an RT Plan, found {modality_of(ds)}; give the RTPLAN file", p)
    notes: list[str] = []
    setups = {}
    for s in ds.get("PatientSetupSequence", []):
        pos = str(s.get("PatientPosition", "") or "").strip()
        if pos:
            setups[int(s.get("PatientSetupNumber", 1) or 1)] = pos
    beams_ds = ds.get("BeamSequence", None) or ds.get("IonBeamSequence", None)
    if beams_ds is None:
        raise MissingTagError("RT Plan without BeamSequence (brachytherapy or empty plan); igrt needs external beams", p)
    fg = ds.get("FractionGroupSequence", [])
    fractions = None
    mu: dict[int, float] = {}
    beam_dose: dict[int, float] = {}
    if fg:
        g = fg[0]
        fractions = int(g.NumberOfFractionsPlanned) if g.get("NumberOfFractionsPlanned", None) not in (None, "") else None
        for rb in g.get("ReferencedBeamSequence", []):
            n = int(rb.ReferencedBeamNumber)
            if _f(rb, "BeamMeterset") is not None:
                mu[n] = _f(rb, "BeamMeterset")
            if _f(rb, "BeamDose") is not None:
                beam_dose[n] = _f(rb, "BeamDose")
        if len(fg) > 1:
            notes.append(f"{len(fg)} fraction groups; igrt uses the first")
    beams: list[Beam] = []
    setup_beams: list[str] = []
    orientation_raw = None
    for b in beams_ds:
        number = int(b.get("BeamNumber", len(beams) + 1))
        name = str(b.get("BeamName", "") or b.get("BeamDescription", "") or f"Beam {number}")
        cps = b.get("ControlPointSequence", None) or b.get("IonControlPointSequence", None)
        if not cps:
            raise MissingTagError(f"beam {name!r} has no control points; re-export the plan", p)
        cp0 = cps[0]
        iso = cp0.get("IsocenterPosition", None)
        if iso is None:
            raise MissingTagError(f"beam {name!r} has no IsocenterPosition in control point 0; re-export the plan", p)
        gantry = _f(cp0, "GantryAngle")
        if gantry is None:
            raise MissingTagError(f"beam {name!r} has no GantryAngle in control point 0; re-export the plan", p)
        if str(b.get("TreatmentDeliveryType", "TREATMENT")).upper() == "SETUP":
            setup_beams.append(name)
            continue
        if str(cp0.get("GantryRotationDirection", "NONE") or "NONE").upper() in ("CW", "CC"):
            last = next((_f(cp, "GantryAngle") for cp in reversed(cps) if _f(cp, "GantryAngle") is not None), gantry)
            notes.append(f"beam {name!r} is an arc ({cp0.GantryRotationDirection} {gantry:g} -> {last:g} deg); igrt keeps its start angle")
        setup_no = int(b.get("ReferencedPatientSetupNumber", 1) or 1)
        orientation_raw = orientation_raw or setups.get(setup_no)
        energy = _f(cp0, "NominalBeamEnergy")
        beams.append(
            Beam(
                number=number,
                name=name,
                gantry_deg=float(gantry),
                collimator_deg=_f(cp0, "BeamLimitingDeviceAngle", 0.0),
                couch_deg=_f(cp0, "PatientSupportAngle", 0.0),
                isocentre_mm=tuple(float(v) for v in floats(iso, 3, "IsocenterPosition", p)),
                energy_mv=energy,
                radiation_type=str(b.get("RadiationType", "PHOTON") or "PHOTON"),
                monitor_units=mu.get(number),
            )
        )
    orientation_raw = orientation_raw or (next(iter(setups.values())) if setups else None)
    if orientation_raw is None:
        orientation_raw = default_orientation or "HFS"
        notes.append(f"no PatientSetupSequence orientation; assumed {orientation_raw}")
    orientation = PatientOrientation.parse(orientation_raw)

    prescription = None
    source = ""
    target_name = None
    targets = [d for d in ds.get("DoseReferenceSequence", []) if str(d.get("DoseReferenceType", "")).upper() == "TARGET"]
    doses = [(_f(d, "TargetPrescriptionDose"), d) for d in targets if _f(d, "TargetPrescriptionDose") is not None]
    if doses:
        prescription, dref = max(doses, key=lambda t: t[0])
        target_name = str(dref.get("DoseReferenceDescription", "") or "") or None
        source = "DoseReferenceSequence TargetPrescriptionDose"
    elif beam_dose and fractions:
        prescription = float(sum(beam_dose.values()) * fractions)
        source = "sum of BeamDose x NumberOfFractionsPlanned"
    else:
        notes.append("no prescription dose in the plan")

    ref_ss = ""
    for r in ds.get("ReferencedStructureSetSequence", []):
        ref_ss = str(r.get("ReferencedSOPInstanceUID", ""))
    plan = Plan(
        label=str(ds.get("RTPlanLabel", "") or ds.get("RTPlanName", "") or "plan"),
        orientation=orientation,
        beams=tuple(beams),
        prescription_gy=None if prescription is None else float(prescription),
        fractions=fractions,
        target_name=target_name,
    )
    if setup_beams:
        notes.append(f"{len(setup_beams)} setup beam(s) left out: {', '.join(setup_beams)}")
    return RtPlan(
        path=p,
        plan=plan,
        sop_instance_uid=str(ds.get("SOPInstanceUID", "")),
        frame_of_reference_uid=str(ds.get("FrameOfReferenceUID", "")),
        referenced_structure_set_uid=ref_ss,
        patient_id=str(ds.get("PatientID", "")),
        study_uid=str(ds.get("StudyInstanceUID", "")),
        setup_beams=tuple(setup_beams),
        prescription_source=source,
        notes=tuple(notes),
    )


def write_rtplan(
    plan: Plan,
    path: str | os.PathLike,
    patient: PatientInfo,
    structure_set_uid: str | None = None,
    machine: str = "IGRT_LINAC",
    series_number: int = 3,
) -> str:
    """Write ``plan`` as an RT Plan (static photon beams, 2 control points each); returns its SOP Instance UID.

    ``structure_set_uid`` links the plan to its RTSTRUCT (ReferencedStructureSetSequence).
    The prescription (total Gy) goes to a TARGET dose reference; each beam's
    meterset (MU, if known) to fraction group 1.
    """
    ds = new_dataset(RT_PLAN_STORAGE, "RTPLAN", patient, generate_uid(), series_number, f"RTPLAN {plan.label}")
    ds.InstanceNumber = 1
    ds.RTPlanLabel = plan.label[:16]
    ds.RTPlanName = plan.label[:64]
    ds.RTPlanDate = ds.InstanceCreationDate
    ds.RTPlanTime = ds.InstanceCreationTime
    ds.RTPlanGeometry = "PATIENT" if structure_set_uid else "TREATMENT_DEVICE"
    if structure_set_uid:
        r = Dataset()
        r.ReferencedSOPClassUID = RT_STRUCTURE_SET_STORAGE
        r.ReferencedSOPInstanceUID = structure_set_uid
        ds.ReferencedStructureSetSequence = DicomSequence([r])
    setup = Dataset()
    setup.PatientPosition = plan.orientation.value
    setup.PatientSetupNumber = 1
    setup.SetupTechnique = "ISOCENTRIC"
    ds.PatientSetupSequence = DicomSequence([setup])
    if plan.prescription_gy is not None:
        dref = Dataset()
        dref.DoseReferenceNumber = 1
        dref.DoseReferenceUID = generate_uid()
        dref.DoseReferenceStructureType = "SITE"
        dref.DoseReferenceDescription = (plan.target_name or "target")[:64]
        dref.DoseReferenceType = "TARGET"
        dref.TargetPrescriptionDose = ds_number(float(plan.prescription_gy))
        ds.DoseReferenceSequence = DicomSequence([dref])
    g = Dataset()
    g.FractionGroupNumber = 1
    g.NumberOfFractionsPlanned = int(plan.fractions or 1)
    g.NumberOfBeams = len(plan.beams)
    g.NumberOfBrachyApplicationSetups = 0
    refs = []
    per_beam = None
    if plan.prescription_gy is not None and plan.beams:
        per_beam = float(plan.prescription_gy) / int(plan.fractions or 1) / len(plan.beams)
    for b in plan.beams:
        rb = Dataset()
        rb.ReferencedBeamNumber = int(b.number)
        if per_beam is not None:
            rb.BeamDoseSpecificationPoint = [ds_number(v) for v in b.isocentre_mm]
            rb.BeamDose = ds_number(per_beam)
        if b.monitor_units is not None:
            rb.BeamMeterset = ds_number(float(b.monitor_units))
        refs.append(rb)
    g.ReferencedBeamSequence = DicomSequence(refs)
    ds.FractionGroupSequence = DicomSequence([g])
    beams = []
    for b in plan.beams:
        item = Dataset()
        item.TreatmentMachineName = machine
        item.PrimaryDosimeterUnit = "MU"
        item.SourceAxisDistance = "1000"
        jaws = []
        for kind in ("ASYMX", "ASYMY"):
            j = Dataset()
            j.RTBeamLimitingDeviceType = kind
            j.NumberOfLeafJawPairs = 1
            jaws.append(j)
        item.BeamLimitingDeviceSequence = DicomSequence(jaws)
        item.BeamNumber = int(b.number)
        item.BeamName = b.name[:64]
        item.BeamType = "STATIC"
        item.RadiationType = b.radiation_type
        item.TreatmentDeliveryType = "TREATMENT"
        item.NumberOfWedges = 0
        item.NumberOfCompensators = 0
        item.NumberOfBoli = 0
        item.NumberOfBlocks = 0
        item.FinalCumulativeMetersetWeight = "1"
        item.NumberOfControlPoints = 2
        item.ReferencedPatientSetupNumber = 1
        cp0 = Dataset()
        cp0.ControlPointIndex = 0
        if b.energy_mv is not None:
            cp0.NominalBeamEnergy = ds_number(float(b.energy_mv))
        pos = []
        for kind in ("ASYMX", "ASYMY"):
            bp = Dataset()
            bp.RTBeamLimitingDeviceType = kind
            bp.LeafJawPositions = ["-50", "50"]
            pos.append(bp)
        cp0.BeamLimitingDevicePositionSequence = DicomSequence(pos)
        cp0.GantryAngle = ds_number(float(b.gantry_deg) % 360.0)
        cp0.GantryRotationDirection = "NONE"
        cp0.BeamLimitingDeviceAngle = ds_number(float(b.collimator_deg) % 360.0)
        cp0.BeamLimitingDeviceRotationDirection = "NONE"
        cp0.PatientSupportAngle = ds_number(float(b.couch_deg) % 360.0)
        cp0.PatientSupportRotationDirection = "NONE"
        cp0.TableTopEccentricAngle = "0"
        cp0.TableTopEccentricRotationDirection = "NONE"
        cp0.IsocenterPosition = [ds_number(float(v)) for v in b.isocentre_mm]
        cp0.CumulativeMetersetWeight = "0"
        cp1 = Dataset()
        cp1.ControlPointIndex = 1
        cp1.CumulativeMetersetWeight = "1"
        item.ControlPointSequence = DicomSequence([cp0, cp1])
        beams.append(item)
    ds.BeamSequence = DicomSequence(beams)
    save(ds, path)
    return str(ds.SOPInstanceUID)
