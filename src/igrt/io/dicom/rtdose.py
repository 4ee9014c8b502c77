"""RT Dose: a dose grid Volume in Gy (DoseGridScaling, GridFrameOffsetVector); write one."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import generate_uid

from igrt.geometry import Volume
from igrt.io.dicom.common import set_image_pixel, slices_in_stored_order, quiet, RT_DOSE_STORAGE, RT_PLAN_STORAGE, PatientInfo, ds_number, floats, modality_of, new_dataset, read_dataset, require, save
from igrt.io.dicom.errors import NonUniformSpacingError, NotDicomError, TruncatedPixelDataError, UnsupportedDicomError


@dataclass(frozen=True, eq=False)
class RtDose:
    """A read RTDOSE: the dose Volume (Gy, or relative when ``units`` says so) and its references."""

    path: Path | None
    dose: Volume
    units: str
    summation_type: str
    frame_of_reference_uid: str
    referenced_plan_uid: str
    sop_instance_uid: str
    patient_id: str = ""
    study_uid: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)


@quiet
def read_rtdose(path: str | os.PathLike, ds: Dataset | None = None) -> RtDose:
    """Read an RTDOSE grid: stored values x DoseGridScaling, frames placed by GridFrameOffsetVector."""
    p = Path(path)
    if ds is None or "PixelData" not in ds:
        ds = read_dataset(p)
    if modality_of(ds) != "RTDOSE":
        raise NotDicomError(f"expected an RT Dose, found {modality_of(ds)}; give the RTDOSE file", p)
    what = "the RT Dose"
    rows, cols = int(require(ds, "Rows", p, what)), int(require(ds, "Columns", p, what))
    nframes = int(ds.get("NumberOfFrames", 1) or 1)
    ipp = floats(require(ds, "ImagePositionPatient", p, what), 3, "ImagePositionPatient", p)
    iop = floats(require(ds, "ImageOrientationPatient", p, what), 6, "ImageOrientationPatient", p)
    ps = floats(require(ds, "PixelSpacing", p, what), 2, "PixelSpacing", p)
    scaling = float(require(ds, "DoseGridScaling", p, what))
    if "PixelData" not in ds:
        raise TruncatedPixelDataError("RT Dose without Pixel Data; re-export the dose", p)
    bits = int(require(ds, "BitsAllocated", p, what))
    expected = rows * cols * nframes * bits // 8
    ts = str(ds.file_meta.get("TransferSyntaxUID", "")) if hasattr(ds, "file_meta") else ""
    if not getattr(ds.file_meta, "TransferSyntaxUID", None) or not ds.file_meta.TransferSyntaxUID.is_compressed:
        if len(ds.PixelData) < expected:
            raise TruncatedPixelDataError(
                f"dose pixel data holds {len(ds.PixelData)} bytes, {nframes}x{rows}x{cols}x{bits // 8} needs {expected}; re-export the dose", p
            )
    try:
        stored = ds.pixel_array
    except Exception as exc:
        raise UnsupportedDicomError(f"dose pixel data cannot be decoded ({type(exc).__name__}: {exc}) [{ts}]", p) from None
    stored = np.asarray(stored).reshape(nframes, rows, cols)
    row_dir = iop[:3] / np.linalg.norm(iop[:3])
    col_dir = iop[3:] / np.linalg.norm(iop[3:])
    normal = np.cross(row_dir, col_dir)
    notes = []
    if nframes > 1:
        gfov = floats(require(ds, "GridFrameOffsetVector", p, what), nframes, "GridFrameOffsetVector", p)
        if abs(gfov[0]) > 1e-6:
            # Absolute z positions (allowed for axial grids): make them relative to the first frame.
            gfov = gfov - float(ipp @ normal)
            notes.append("GridFrameOffsetVector holds absolute positions")
        steps = np.diff(gfov)
        if np.abs(steps - steps.mean()).max() > max(0.01, 0.01 * abs(steps.mean())) or abs(steps.mean()) < 1e-6:
            raise NonUniformSpacingError(
                f"dose frames are not evenly spaced (offsets {steps.min():.3f} to {steps.max():.3f} mm); resample the dose to a regular grid", p
            )
        dz = float(steps.mean())
        origin = ipp + normal * gfov[0]
        if dz < 0:  # frames run against the normal: reverse them so z index follows the normal
            stored = stored[::-1]
            origin = ipp + normal * gfov[-1]
            dz = -dz
    else:
        # One frame: its thickness from the offsets when given (some exports keep the full vector), else SliceThickness.
        gfov_raw = ds.get("GridFrameOffsetVector", None)
        gfov = floats(gfov_raw, None, "GridFrameOffsetVector", p) if gfov_raw not in (None, "") else np.zeros(0)
        if gfov.size >= 2 and abs(gfov[1] - gfov[0]) > 1e-6:
            dz = float(abs(gfov[1] - gfov[0]))
            notes.append(f"GridFrameOffsetVector has {gfov.size} values for 1 frame; used its first step as the thickness")
        else:
            dz = float(ds.get("SliceThickness", 0) or 1.0)
        origin = ipp
    dose = stored.astype(np.float32) * np.float32(scaling)
    vol = Volume(dose, tuple(origin), (float(ps[1]), float(ps[0]), dz), np.stack([row_dir, col_dir, normal], axis=1))
    units = str(ds.get("DoseUnits", "GY")).upper()
    if units != "GY":
        notes.append(f"dose units are {units}, not Gy")
    ref_plan = ""
    for r in ds.get("ReferencedRTPlanSequence", []):
        ref_plan = str(r.get("ReferencedSOPInstanceUID", ""))
    return RtDose(
        path=p,
        dose=vol,
        units=units,
        summation_type=str(ds.get("DoseSummationType", "")),
        frame_of_reference_uid=str(ds.get("FrameOfReferenceUID", "")),
        referenced_plan_uid=ref_plan,
        sop_instance_uid=str(ds.get("SOPInstanceUID", "")),
        patient_id=str(ds.get("PatientID", "")),
        study_uid=str(ds.get("StudyInstanceUID", "")),
        notes=tuple(notes),
    )


def write_rtdose(
    dose: Volume,
    path: str | os.PathLike,
    patient: PatientInfo,
    plan_uid: str | None = None,
    summation_type: str = "PLAN",
    series_number: int = 4,
) -> str:
    """Write a dose Volume (Gy) as an RT Dose (uint32 + DoseGridScaling); returns its SOP Instance UID.

    Negative doses are clipped to 0 (RTDOSE stores unsigned values by default).
    ``plan_uid`` links the dose to its RTPLAN.
    """
    arr, origin, d = slices_in_stored_order(dose)
    arr = np.asarray(arr, dtype=np.float64)
    sx, sy, sz = dose.spacing
    nz, ny, nx = arr.shape
    arr = np.clip(arr, 0.0, None)
    dmax = float(arr.max()) if arr.size else 0.0
    scaling = dmax / 4.0e9 if dmax > 0 else 1.0
    stored = np.rint(arr / scaling).astype("<u4")

    ds = new_dataset(RT_DOSE_STORAGE, "RTDOSE", patient, generate_uid(), series_number, "RTDOSE")
    ds.InstanceNumber = 1
    ds.ImagePositionPatient = [ds_number(v) for v in origin]
    ds.ImageOrientationPatient = [ds_number(v) for v in (*d[:, 0], *d[:, 1])]
    ds.SliceThickness = ds_number(sz)
    ds.NumberOfFrames = nz
    ds.FrameIncrementPointer = 0x3004000C
    set_image_pixel(ds, ny, nx, (sy, sx), bits=32, signed=False)
    ds.DoseUnits = "GY"
    ds.DoseType = "PHYSICAL"
    ds.DoseSummationType = summation_type
    ds.GridFrameOffsetVector = [ds_number(k * sz) for k in range(nz)]
    ds.DoseGridScaling = f"{scaling:.9e}"[:16] if len(f"{scaling:.9e}") > 16 else f"{scaling:.9e}"
    # Keep the exact scaling the file says, so values reconstruct identically.
    scaling_written = float(ds.DoseGridScaling)
    if scaling_written != scaling:
        stored = np.clip(np.rint(arr / scaling_written), 0, 2**32 - 1).astype("<u4")
    if plan_uid:
        r = Dataset()
        r.ReferencedSOPClassUID = RT_PLAN_STORAGE
        r.ReferencedSOPInstanceUID = plan_uid
        ds.ReferencedRTPlanSequence = DicomSequence([r])
    ds.PixelData = stored.tobytes()
    ds["PixelData"].VR = "OW"
    save(ds, path)
    return str(ds.SOPInstanceUID)
