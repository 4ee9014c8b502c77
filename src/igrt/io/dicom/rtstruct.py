"""RT Structure Set: read contours (and rasterise them on a CT grid), write masks as contours."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import generate_uid

from igrt.geometry import Volume
from igrt.io.dicom.common import (
    quiet,
    RT_STRUCTURE_SET_STORAGE,
    PatientInfo,
    modality_of,
    new_dataset,
    read_dataset,
    require,
    save,
    set_ds_fast,
    get_ds_fast,
)
from igrt.io.dicom.ct import CtSeries
from igrt.io.dicom.errors import DicomError, FrameOfReferenceMismatchError, NotDicomError
from igrt.io.dicom.raster import contour_volume_cc, mask_to_contours, rasterise_contours
from igrt.planning import Structure

DETACHED_STUDY_MANAGEMENT = "1.2.840.10008.3.1.2.3.1"


@dataclass(frozen=True, eq=False)
class StructureSet:
    """An RTSTRUCT as read: structures with contours (masks once rasterised) and its references."""

    path: Path | None
    label: str
    structures: tuple[Structure, ...]
    frame_of_reference_uid: str
    referenced_series_uid: str
    sop_instance_uid: str
    patient_id: str = ""
    study_uid: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)

    def by_name(self) -> dict[str, Structure]:
        return {s.name: s for s in self.structures}


def _colour(value) -> tuple[int, int, int]:
    try:
        c = [int(float(v)) for v in value]
        if len(c) == 3:
            return (c[0], c[1], c[2])
    except (TypeError, ValueError):
        pass
    return (255, 0, 0)


@quiet
def read_rtstruct(path: str | os.PathLike, ds: Dataset | None = None) -> StructureSet:
    """Read an RTSTRUCT's ROIs with their contours (LPS mm); no masks yet (see `rasterise`)."""
    p = Path(path)
    ds = ds if ds is not None else read_dataset(p)
    if modality_of(ds) != "RTSTRUCT":
        raise NotDicomError(f"expected an RT Structure Set, found {modality_of(ds)}; give the RTSTRUCT file", p)
    rois = require(ds, "StructureSetROISequence", p, "the RT Structure Set")
    names: dict[int, tuple[str, str]] = {}
    for item in rois:
        num = int(require(item, "ROINumber", p, "a StructureSetROISequence item"))
        names[num] = (str(item.get("ROIName", f"ROI {num}")).strip() or f"ROI {num}", str(item.get("ReferencedFrameOfReferenceUID", "")))
    types: dict[int, str] = {}
    for item in ds.get("RTROIObservationsSequence", []):
        if "ReferencedROINumber" in item:
            types[int(item.ReferencedROINumber)] = str(item.get("RTROIInterpretedType", "") or "").strip().upper()
    structures: list[Structure] = []
    notes: list[str] = []
    contoured = set()
    for item in ds.get("ROIContourSequence", []):
        num = int(require(item, "ReferencedROINumber", p, "a ROIContourSequence item"))
        contours = []
        for c in item.get("ContourSequence", []):
            geo = str(c.get("ContourGeometricType", "CLOSED_PLANAR")).upper()
            data = get_ds_fast(c, "ContourData")
            if data is None or len(data) < 3 or len(data) % 3:
                notes.append(f"ROI {num}: a contour without valid ContourData was skipped")
                continue
            pts = data.reshape(-1, 3)
            if geo == "CLOSED_PLANAR" or geo == "POINT":
                contours.append(pts)
            else:
                notes.append(f"ROI {num}: {geo} contour kept as points only")
                contours.append(pts)
        name, _ = names.get(num, (f"ROI {num}", ""))
        contoured.add(num)
        structures.append(
            Structure(name=name, roi_type=types.get(num, "") or "ORGAN", number=num, colour=_colour(item.get("ROIDisplayColor", None)), contours=tuple(contours))
        )
    for num, (name, _) in names.items():
        if num not in contoured:
            structures.append(Structure(name=name, roi_type=types.get(num, "") or "ORGAN", number=num))
            notes.append(f"ROI {name!r} has no contours")
    for_uid = ""
    series_uid = ""
    for fr in ds.get("ReferencedFrameOfReferenceSequence", []):
        for_uid = for_uid or str(fr.get("FrameOfReferenceUID", ""))
        for st in fr.get("RTReferencedStudySequence", []):
            for se in st.get("RTReferencedSeriesSequence", []):
                series_uid = series_uid or str(se.get("SeriesInstanceUID", ""))
    if not for_uid:
        for_uid = next((f for _, f in names.values() if f), "")
    return StructureSet(
        path=p,
        label=str(ds.get("StructureSetLabel", "")),
        structures=tuple(structures),
        frame_of_reference_uid=for_uid,
        referenced_series_uid=series_uid,
        sop_instance_uid=str(ds.get("SOPInstanceUID", "")),
        patient_id=str(ds.get("PatientID", "")),
        study_uid=str(ds.get("StudyInstanceUID", "")),
        notes=tuple(notes),
    )


def is_point_roi(s: Structure) -> bool:
    """True for markers/isocentre points (single-point contours): no volume to rasterise."""
    return bool(s.contours) and all(len(c) < 3 for c in s.contours)


def structure_volume_cc(s: Structure, slice_thickness_mm: float | None = None) -> float:
    """Volume in cm^3 from the structure's contours (0 for point ROIs)."""
    if not s.contours or is_point_roi(s):
        return 0.0
    return contour_volume_cc(list(s.contours), slice_thickness_mm)


def rasterise(
    structure_set: StructureSet,
    ct: CtSeries | Volume,
    supersample: int = 1,
    check_frame: bool = True,
) -> dict[str, Structure]:
    """Structures with masks on the CT grid (bool, or float partial volume when ``supersample > 1``).

    Raises `FrameOfReferenceMismatchError` when the structure set belongs to
    another frame of reference than the CT series.
    """
    grid = ct.volume if isinstance(ct, CtSeries) else ct
    if check_frame and isinstance(ct, CtSeries) and structure_set.frame_of_reference_uid and ct.frame_of_reference_uid:
        if structure_set.frame_of_reference_uid != ct.frame_of_reference_uid:
            raise FrameOfReferenceMismatchError(
                f"structure set frame of reference {structure_set.frame_of_reference_uid} matches no CT "
                f"(the CT series is in {ct.frame_of_reference_uid}); export the structures with their planning CT",
                structure_set.path,
            )
    out: dict[str, Structure] = {}
    for s in structure_set.structures:
        if not s.contours or is_point_roi(s):
            out[s.name] = s
            continue
        mask, _dropped = rasterise_contours(list(s.contours), grid, supersample=supersample)
        out[s.name] = replace(s, mask=grid.with_array(mask))
    return out


def write_rtstruct(
    structures: Sequence[Structure] | dict[str, Structure],
    ct: CtSeries,
    path: str | os.PathLike,
    label: str = "igrt",
    series_number: int = 2,
) -> Path:
    """Write structures as an RT Structure Set referencing ``ct`` (its series, slices and frame).

    Masks (bool or partial volume, on the CT grid) are contoured at 0.5 by
    marching squares; structures without mask but with contours are written as
    they are (e.g. POINT markers).
    """
    items = list(structures.values()) if isinstance(structures, dict) else list(structures)
    patient = PatientInfo(ct.patient_id, ct.patient_name, ct.study_uid, ct.frame_of_reference_uid)
    ds = new_dataset(RT_STRUCTURE_SET_STORAGE, "RTSTRUCT", patient, generate_uid(), series_number, f"RTSTRUCT {label}")
    del ds.FrameOfReferenceUID  # not part of the RT Structure Set IOD: the frame is in the referenced sequence
    del ds.PositionReferenceIndicator
    ds.InstanceNumber = 1
    ds.StructureSetLabel = label[:16]
    ds.StructureSetName = label[:64]
    ds.StructureSetDate = ds.InstanceCreationDate
    ds.StructureSetTime = ds.InstanceCreationTime

    def image_ref(k: int) -> Dataset:
        r = Dataset()
        r.ReferencedSOPClassUID = ct.sop_class_uid
        r.ReferencedSOPInstanceUID = ct.sop_instance_uids[k]
        return r

    series = Dataset()
    series.SeriesInstanceUID = ct.series_uid
    series.ContourImageSequence = DicomSequence([image_ref(k) for k in range(len(ct.sop_instance_uids))])
    study = Dataset()
    study.ReferencedSOPClassUID = DETACHED_STUDY_MANAGEMENT
    study.ReferencedSOPInstanceUID = ct.study_uid
    study.RTReferencedSeriesSequence = DicomSequence([series])
    frame = Dataset()
    frame.FrameOfReferenceUID = ct.frame_of_reference_uid
    frame.RTReferencedStudySequence = DicomSequence([study])
    ds.ReferencedFrameOfReferenceSequence = DicomSequence([frame])

    roi_seq, contour_seq, obs_seq = [], [], []
    used = {s.number for s in items if s.number > 0}
    next_num = 1
    for s in items:
        num = s.number
        if num <= 0:
            while next_num in used:
                next_num += 1
            num = next_num
            used.add(num)
        roi = Dataset()
        roi.ROINumber = num
        roi.ReferencedFrameOfReferenceUID = ct.frame_of_reference_uid
        roi.ROIName = s.name[:64]
        roi.ROIGenerationAlgorithm = "AUTOMATIC"
        roi_seq.append(roi)

        rc = Dataset()
        rc.ROIDisplayColor = [int(v) for v in s.colour]
        rc.ReferencedROINumber = num
        cseq = []
        if s.mask is not None:
            if not s.mask.same_grid(ct.volume):
                raise DicomError(f"mask of structure {s.name!r} is not on the CT grid; resample it onto the CT first")
            polys = mask_to_contours(s.mask)
            geo = "CLOSED_PLANAR"
        else:
            polys = [(int(np.round(ct.volume.to_index(c[:1])[0, 2])), np.asarray(c, float)) for c in s.contours]
            geo = None
        for k, pts in polys:
            c = Dataset()
            kk = min(max(k, 0), len(ct.sop_instance_uids) - 1)
            c.ContourImageSequence = DicomSequence([image_ref(kk)])
            c.ContourGeometricType = geo or ("POINT" if len(pts) == 1 else "CLOSED_PLANAR")
            c.NumberOfContourPoints = len(pts)
            set_ds_fast(c, "ContourData", pts)
            cseq.append(c)
        if cseq:
            rc.ContourSequence = DicomSequence(cseq)
        contour_seq.append(rc)

        obs = Dataset()
        obs.ObservationNumber = num
        obs.ReferencedROINumber = num
        obs.RTROIInterpretedType = s.roi_type
        obs.ROIInterpreter = ""
        obs_seq.append(obs)
    ds.StructureSetROISequence = DicomSequence(roi_seq)
    ds.ROIContourSequence = DicomSequence(contour_seq)
    ds.RTROIObservationsSequence = DicomSequence(obs_seq)
    # Contour items hold pre-encoded ContourData: declare their encoding (the file's) so pydicom copies the bytes.
    for rc in ds.ROIContourSequence:
        for c in rc.get("ContourSequence", []):
            c.set_original_encoding(False, True, c._character_set)
    return save(ds, path)
