"""Load a planning folder (CT + RTSTRUCT + RTPLAN + RTDOSE as a TPS exports it) into a `PlanningReference`.

Files are grouped by patient, study and frame of reference. Several patients
in one folder raise `PatientMismatchError` (unless a ``patient_id`` is
chosen); RT objects in another frame of reference than the planning CT raise
`FrameOfReferenceMismatchError`. Incomplete exports are normal: what is there
is used, what is not is listed in ``missing``, and anything odd (skipped
files, extra series, contours outside the CT) is listed in ``notes``.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from pydicom.dataset import Dataset

from igrt.io.dicom.common import CT_IMAGE_STORAGE, MR_IMAGE_STORAGE, modality_of, quiet, read_dataset
from igrt.io.dicom.fastheader import parse_header
from igrt.io.dicom.ct import CtSeries, is_image_header, load_ct_series
from igrt.io.dicom.errors import (
    DicomError,
    FrameOfReferenceMismatchError,
    MissingTagError,
    NotDicomError,
    PatientMismatchError,
    SeriesGeometryError,
    TruncatedPixelDataError,
    UnsupportedDicomError,
)
from igrt.io.dicom.reg import SpatialRegistration, read_spatial_registration
from igrt.io.dicom.rtdose import RtDose, read_rtdose
from igrt.io.dicom.rtplan import RtPlan, read_rtplan
from igrt.io.dicom.rtstruct import StructureSet, rasterise, read_rtstruct
from igrt.planning import PlanningReference

_DICOMDIR = "1.2.840.10008.1.3.10"


@dataclass(frozen=True)
class SeriesEntry:
    series_uid: str
    modality: str
    description: str
    instances: int
    frame_of_reference_uid: str


@dataclass(frozen=True)
class StudyEntry:
    study_uid: str
    description: str
    date: str
    series: tuple[SeriesEntry, ...]


@dataclass(frozen=True)
class PatientEntry:
    patient_id: str
    patient_name: str
    studies: tuple[StudyEntry, ...]


@dataclass(frozen=True)
class FolderSummary:
    """What a folder holds: patients > studies > series, and the files that were skipped (with why)."""

    root: Path
    files: int
    dicom_files: int
    patients: tuple[PatientEntry, ...]
    skipped: tuple[tuple[str, str], ...]  # (path relative to root, reason)

    def to_dict(self) -> dict:
        return {
            "files": self.files,
            "dicom_files": self.dicom_files,
            "skipped": [{"path": p, "reason": r} for p, r in self.skipped],
        }


@dataclass(frozen=True)
class FolderScan:
    root: Path
    headers: tuple[tuple[Path, Dataset], ...]
    skipped: tuple[tuple[str, str], ...]
    files: int


def _rel(root: Path, p: Path) -> str:
    try:
        return str(p.relative_to(root))
    except ValueError:
        return str(p)


@quiet
def scan_folder(path: str | os.PathLike) -> FolderScan:
    """Read every file's header (no pixels); non-DICOM and corrupt files are skipped with a reason."""
    root = Path(path)
    if not root.exists():
        raise NotDicomError("no such folder; check the path", root)
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    headers: list[tuple[Path, Dataset]] = []
    skipped: list[tuple[str, str]] = []
    for p in files:
        fast = _fast_image_header(p)
        if fast is not None:
            headers.append((p, fast))
            continue
        try:
            ds = read_dataset(p, stop_before_pixels=True)
        except DicomError as exc:
            reason = str(exc)
            prefix = f"{p}: "
            skipped.append((_rel(root, p), reason[len(prefix):] if reason.startswith(prefix) else reason))
            continue
        if str(ds.get("SOPClassUID", "")) == _DICOMDIR or "DirectoryRecordSequence" in ds:
            skipped.append((_rel(root, p), "DICOMDIR index (not an object)"))
            continue
        headers.append((p, ds))
    return FolderScan(root if root.is_dir() else root.parent, tuple(headers), tuple(skipped), len(files))


_IMAGE_SOP_CLASSES = {CT_IMAGE_STORAGE, MR_IMAGE_STORAGE, "1.2.840.10008.5.1.4.1.1.128"}  # CT, MR, PET


def _fast_image_header(p: Path):
    """Header of an ordinary image slice via the fast parser (first 64 KiB), else None (then pydicom reads it)."""
    try:
        with open(p, "rb") as f:
            head = f.read(65536)
    except OSError:
        return None
    h = parse_header(head)
    # Only trust it when the parser reached Pixel Data: then every header element was seen.
    if h is None or h.pixel_offset is None or h.get("SOPClassUID") not in _IMAGE_SOP_CLASSES:
        return None
    return h


def summarise(scan: FolderScan) -> FolderSummary:
    """Group the scanned headers into patients > studies > series."""
    tree: dict[str, dict] = {}
    for _, ds in scan.headers:
        pid = str(ds.get("PatientID", ""))
        pat = tree.setdefault(pid, {"name": str(ds.get("PatientName", "")), "studies": {}})
        suid = str(ds.get("StudyInstanceUID", ""))
        study = pat["studies"].setdefault(suid, {"description": str(ds.get("StudyDescription", "")), "date": str(ds.get("StudyDate", "")), "series": {}})
        seuid = str(ds.get("SeriesInstanceUID", ""))
        ser = study["series"].setdefault(
            seuid, {"modality": modality_of(ds), "description": str(ds.get("SeriesDescription", "")), "n": 0, "for": _frame_of(ds)}
        )
        ser["n"] += 1
    patients = tuple(
        PatientEntry(
            pid,
            pat["name"],
            tuple(
                StudyEntry(
                    suid,
                    st["description"],
                    st["date"],
                    tuple(SeriesEntry(seuid, s["modality"], s["description"], s["n"], s["for"]) for seuid, s in st["series"].items()),
                )
                for suid, st in pat["studies"].items()
            ),
        )
        for pid, pat in tree.items()
    )
    return FolderSummary(scan.root, scan.files, len(scan.headers), patients, scan.skipped)


def _frame_of(ds: Dataset) -> str:
    """Frame of reference of any object (RTSTRUCT keeps it in a sequence)."""
    f = str(ds.get("FrameOfReferenceUID", "") or "")
    if f:
        return f
    for fr in ds.get("ReferencedFrameOfReferenceSequence", []):
        if fr.get("FrameOfReferenceUID", None):
            return str(fr.FrameOfReferenceUID)
    for roi in ds.get("StructureSetROISequence", []):
        if roi.get("ReferencedFrameOfReferenceUID", None):
            return str(roi.ReferencedFrameOfReferenceUID)
    return ""


@dataclass(frozen=True, eq=False)
class LoadedFolder:
    """The planning reference plus everything read on the way (for reports such as `igrt info`)."""

    reference: PlanningReference
    summary: FolderSummary
    ct: CtSeries | None = None
    structure_set: StructureSet | None = None
    rtplan: RtPlan | None = None
    rtdose: RtDose | None = None
    registrations: tuple[SpatialRegistration, ...] = field(default_factory=tuple)


def _created(ds: Dataset) -> str:
    return f"{ds.get('InstanceCreationDate', '')}{ds.get('InstanceCreationTime', '')}"


def _pick(items: list[tuple[Path, Dataset]], kind: str, preferred_uid: str, notes: list[str], root: Path) -> tuple[Path, Dataset] | None:
    """One object of a kind: the one referenced by another object, else the newest; note the others."""
    if not items:
        return None
    chosen = next((it for it in items if str(it[1].get("SOPInstanceUID", "")) == preferred_uid), None)
    if chosen is None:
        chosen = max(items, key=lambda it: _created(it[1]))
    if len(items) > 1:
        others = ", ".join(_rel(root, p) for p, _ in items if p != chosen[0])
        notes.append(f"{len(items)} {kind} objects; used {_rel(root, chosen[0])}, ignored {others}")
    return chosen


@quiet
def load_folder(
    path: str | os.PathLike,
    patient_id: str | None = None,
    frame_of_reference_uid: str | None = None,
    supersample: int = 1,
    strict: bool = False,
    scan: FolderScan | None = None,
) -> LoadedFolder:
    """Read a planning folder; see the module docstring for what is refused and what is tolerated.

    ``strict=True`` re-raises CT series problems (gaps, tilt, truncated
    slices) instead of loading without the CT and noting why.
    ``supersample > 1`` gives partial-volume structure masks.
    """
    scan = scan_folder(path)
    root = scan.root
    summary = summarise(scan)
    notes: list[str] = [f"skipped {p}: {r}" for p, r in scan.skipped]
    missing: list[str] = []
    if not scan.headers:
        raise NotDicomError(f"no DICOM files among {scan.files} file(s); give a folder exported from a planning system", Path(path))
    ids = Counter(str(ds.get("PatientID", "")) for _, ds in scan.headers)
    if patient_id is None:
        if len(ids) > 1:
            listing = ", ".join(f"{pid!r} ({n} files)" for pid, n in ids.items())
            raise PatientMismatchError(
                f"files of {len(ids)} patients in one folder: {listing}; put each patient in its own folder or choose one with patient_id",
                Path(path),
            )
        patient_id = next(iter(ids))
    elif patient_id not in ids:
        raise PatientMismatchError(f"no files of patient {patient_id!r}; the folder holds {', '.join(map(repr, ids))}", Path(path))
    headers = [(p, ds) for p, ds in scan.headers if str(ds.get("PatientID", "")) == patient_id]
    if len(headers) < len(scan.headers):
        notes.append(f"ignored {len(scan.headers) - len(headers)} file(s) of other patients")

    by_kind: dict[str, list[tuple[Path, Dataset]]] = {}
    images: list[tuple[Path, Dataset]] = []
    for p, ds in headers:
        kind = modality_of(ds)
        if kind in ("RTSTRUCT", "RTPLAN", "RTDOSE", "REG"):
            by_kind.setdefault(kind, []).append((p, ds))
        elif is_image_header(ds):
            images.append((p, ds))
        else:
            notes.append(f"ignored {_rel(root, p)}: {kind} object not used for planning")

    # Frame of reference: the one asked for, else the structure set's, else the plan's/dose's, else the largest CT's.
    series: dict[str, list[tuple[Path, Dataset]]] = {}
    for p, ds in images:
        series.setdefault(str(ds.get("SeriesInstanceUID", "")), []).append((p, ds))
    ct_frames = {uid: _frame_of(g[0][1]) for uid, g in series.items()}
    rt_frames = [_frame_of(ds) for k in ("RTSTRUCT", "RTDOSE", "RTPLAN") for _, ds in by_kind.get(k, []) if _frame_of(ds)]
    frame = frame_of_reference_uid
    if frame is None:
        if rt_frames:
            frame = rt_frames[0]
        elif series:
            frame = ct_frames[max(series, key=lambda u: len(series[u]))]
        else:
            frame = ""

    # CT: the series the structure set references, else the largest CT in the frame.
    ss_pick = _pick(by_kind.get("RTSTRUCT", []), "RTSTRUCT", "", notes, root)
    plan_items = by_kind.get("RTPLAN", [])
    dose_items = by_kind.get("RTDOSE", [])
    ref_series = ""
    if ss_pick is not None:
        for fr in ss_pick[1].get("ReferencedFrameOfReferenceSequence", []):
            for st in fr.get("RTReferencedStudySequence", []):
                for se in st.get("RTReferencedSeriesSequence", []):
                    ref_series = ref_series or str(se.get("SeriesInstanceUID", ""))
    in_frame = {u: g for u, g in series.items() if ct_frames[u] == frame}
    for u, g in series.items():
        if u not in in_frame:
            notes.append(f"ignored image series {u} ({len(g)} {g[0][1].get('Modality', '')} files): other frame of reference {ct_frames[u]}")
    ct: CtSeries | None = None
    if in_frame:
        if ref_series in in_frame:
            chosen_uid = ref_series
        else:
            cts = [u for u, g in in_frame.items() if str(g[0][1].get("Modality", "")).upper() == "CT"] or list(in_frame)
            chosen_uid = max(cts, key=lambda u: len(in_frame[u]))
            if ref_series:
                notes.append(f"the structure set refers to CT series {ref_series}, which is not in the folder; used series {chosen_uid}")
        for u in in_frame:
            if u != chosen_uid:
                notes.append(f"ignored image series {u} ({len(in_frame[u])} files) in the same frame of reference")
        try:
            ct = load_ct_series(None, headers=in_frame[chosen_uid])
        except (SeriesGeometryError, TruncatedPixelDataError, UnsupportedDicomError, MissingTagError) as exc:
            if strict:
                raise
            notes.append(f"CT series {chosen_uid} not usable: {exc}")
            missing.append("CT: the series in the folder could not be read (see notes)")
    elif series:
        missing.append("CT: no image series in the frame of reference of the RT objects")
    else:
        missing.append("CT: no image series in the folder")

    # Structures.
    structure_set = None
    structures = {}
    if ss_pick is not None:
        structure_set = read_rtstruct(ss_pick[0], read_dataset(ss_pick[0]))
        if structure_set.frame_of_reference_uid and frame and structure_set.frame_of_reference_uid != frame:
            raise FrameOfReferenceMismatchError(
                f"the structure set's frame of reference {structure_set.frame_of_reference_uid} differs from the chosen one {frame}; "
                "export the structures with their planning CT",
                ss_pick[0],
            )
        if series and not in_frame:
            raise FrameOfReferenceMismatchError(
                f"the structure set's frame of reference {structure_set.frame_of_reference_uid} matches no CT series in the folder "
                f"(CT frames: {', '.join(sorted(set(ct_frames.values())))}); export the structures with their planning CT",
                ss_pick[0],
            )
        notes.extend(structure_set.notes)
        if ct is not None:
            structures = rasterise(structure_set, ct, supersample=supersample)
            _note_coverage(structure_set, ct, notes)
        else:
            structures = structure_set.by_name()
            notes.append("structures have contours only (no CT grid to rasterise them on)")
    else:
        missing.append("RTSTRUCT: no structure set")

    # Plan.
    rtplan = None
    if plan_items:
        dose_ref_plan = ""
        for _, ds in dose_items:
            for r in ds.get("ReferencedRTPlanSequence", []):
                dose_ref_plan = dose_ref_plan or str(r.get("ReferencedSOPInstanceUID", ""))
        pp = _pick(plan_items, "RTPLAN", dose_ref_plan, notes, root)
        full = read_dataset(pp[0])
        _check_frame(full, frame, pp[0], "plan")
        rtplan = read_rtplan(pp[0], full, default_orientation=(ct.orientation if ct is not None else None))
        notes.extend(rtplan.notes)
        if structure_set is not None and rtplan.referenced_structure_set_uid and rtplan.referenced_structure_set_uid != structure_set.sop_instance_uid:
            notes.append("the plan refers to another structure set than the one in the folder")
        plan = rtplan.plan
        if plan.target_name is None:
            plan = _target_from_rois(full, structure_set, plan)
            rtplan = RtPlan(**{**rtplan.__dict__, "plan": plan})
    else:
        missing.append("RTPLAN: no plan (no isocentre, beams or prescription)")

    # Dose.
    rtdose = None
    if dose_items:
        plan_doses = [it for it in dose_items if str(it[1].get("DoseSummationType", "")).upper() == "PLAN"] or dose_items
        dp = _pick(plan_doses, "RTDOSE", "", notes, root)
        _check_frame(dp[1], frame, dp[0], "dose")
        rtdose = read_rtdose(dp[0])
        notes.extend(rtdose.notes)
        if rtplan is not None and rtdose.referenced_plan_uid and rtdose.referenced_plan_uid != rtplan.sop_instance_uid:
            notes.append("the dose refers to another plan than the one in the folder")
    else:
        missing.append("RTDOSE: no dose grid")

    regs = []
    for p, _ in by_kind.get("REG", []):
        try:
            regs.append(read_spatial_registration(p))
        except DicomError as exc:
            notes.append(f"registration {_rel(root, p)} not usable: {exc}")

    first = headers[0][1]
    study = ct.study_uid if ct is not None else str(first.get("StudyInstanceUID", ""))
    ref = PlanningReference(
        patient_id=patient_id,
        patient_name=str(first.get("PatientName", "")),
        frame_of_reference_uid=frame,
        study_uid=study,
        ct=ct.volume if ct is not None else None,
        structures=structures,
        plan=rtplan.plan if rtplan is not None else None,
        dose=rtdose.dose if rtdose is not None else None,
        missing=tuple(missing),
        notes=tuple(notes),
    )
    return LoadedFolder(ref, summary, ct, structure_set, rtplan, rtdose, tuple(regs))


def load_planning_folder(path: str | os.PathLike, patient_id: str | None = None, supersample: int = 1, strict: bool = False) -> PlanningReference:
    """The `PlanningReference` of a planning folder (see `load_folder`)."""
    return load_folder(path, patient_id=patient_id, supersample=supersample, strict=strict).reference


def _check_frame(ds: Dataset, frame: str, path: Path, what: str) -> None:
    f = _frame_of(ds)
    if f and frame and f != frame:
        raise FrameOfReferenceMismatchError(
            f"the {what}'s frame of reference {f} differs from the planning CT/structures ({frame}); export the {what} with its planning CT",
            path,
        )


def _note_coverage(ss: StructureSet, ct: CtSeries, notes: list[str]) -> None:
    """Say when contours lie outside the CT slices (exports with part of the series)."""
    nz = ct.volume.shape[0]
    outside = 0
    total = 0
    for s in ss.structures:
        for c in s.contours:
            if len(c) < 3:
                continue
            total += 1
            k = float(ct.volume.to_index(c[:1])[0, 2])
            if k < -0.5 or k > nz - 0.5:
                outside += 1
    if outside:
        notes.append(f"{outside} of {total} contours lie outside the CT slices present (partial CT export); their masks are cut")


def _target_from_rois(ds: Dataset, ss: StructureSet | None, plan):
    """Name the plan's target from a TARGET dose reference that points at a ROI."""
    from dataclasses import replace

    if ss is None:
        return plan
    names = {s.number: s.name for s in ss.structures}
    for d in ds.get("DoseReferenceSequence", []):
        if str(d.get("DoseReferenceType", "")).upper() == "TARGET" and d.get("ReferencedROINumber", None) is not None:
            name = names.get(int(d.ReferencedROINumber))
            if name:
                return replace(plan, target_name=name)
    return plan
