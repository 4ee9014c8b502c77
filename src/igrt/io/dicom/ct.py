"""CT (and other single-frame image) series: read into a `Volume`, write from one.

Reading: headers first (no pixels), slices sorted by ImagePositionPatient
projected on the slice normal (row x column direction cosines), geometry
checked (one orientation, no gantry tilt, uniform spacing, no gaps), then
pixel bytes decoded straight with ``np.frombuffer`` and rescaled
(RescaleSlope/RescaleIntercept, HU for CT). The Volume's direction columns are
the row direction, the column direction and the slice normal; its origin is
the first (lowest along the normal) slice's ImagePositionPatient.
"""

from __future__ import annotations

import io
import os
import struct
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

from igrt.geometry import PatientOrientation, Volume
from igrt.io.dicom.common import (
    set_image_pixel,
    slices_in_stored_order,
    CT_IMAGE_STORAGE,
    MR_IMAGE_STORAGE,
    RT_DOSE_STORAGE,
    PatientInfo,
    ds_number,
    floats,
    new_dataset,
    read_dataset,
    require,
)
from igrt.io.dicom.fastheader import FastHeader, parse_header
from igrt.io.dicom.errors import (
    GantryTiltError,
    MissingSlicesError,
    MixedSeriesError,
    NoImageSeriesError,
    NonUniformSpacingError,
    NotDicomError,
    TruncatedPixelDataError,
    UnsupportedDicomError,
)

_UNCOMPRESSED = {ImplicitVRLittleEndian, ExplicitVRLittleEndian, ExplicitVRBigEndian}
_PIXEL_TAG = b"\xe0\x7f\x10\x00"
_SLICE_SOP_CLASSES = {CT_IMAGE_STORAGE, MR_IMAGE_STORAGE, "1.2.840.10008.5.1.4.1.1.128"}  # CT, MR, PET
_PIXEL_TAG_BE = b"\x7f\xe0\x00\x10"


@dataclass(frozen=True, eq=False)
class CtSeries:
    """A read or written image series: the Volume plus the identifiers RT objects refer to."""

    volume: Volume
    series_uid: str
    study_uid: str
    frame_of_reference_uid: str
    patient_id: str
    patient_name: str
    sop_class_uid: str
    sop_instance_uids: tuple[str, ...]  # one per z index, in array order
    paths: tuple[Path, ...] = ()
    modality: str = "CT"
    orientation: str | None = None  # PatientPosition (HFS, ...), if the images say
    description: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)


def is_image_header(ds: Dataset) -> bool:
    """True for slice images (CT, MR, PT ...) with a position and a pixel grid (RT Dose grids excluded)."""
    if str(ds.get("SOPClassUID", "")) == RT_DOSE_STORAGE or str(ds.get("Modality", "")).upper() == "RTDOSE":
        return False
    # CT/MR/PET slices count even when a geometry tag is missing, so the reader names the file and the tag.
    if str(ds.get("SOPClassUID", "")) in _SLICE_SOP_CLASSES:
        return True
    return "ImagePositionPatient" in ds and "Rows" in ds and "Columns" in ds and "ImageOrientationPatient" in ds


def _list_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


# --------------------------------------------------------------------------- pixels
def _pixel_dtype(ds: Dataset, path) -> np.dtype:
    bits = int(require(ds, "BitsAllocated", path, "the image"))
    signed = int(ds.get("PixelRepresentation", 0)) == 1
    spp = int(ds.get("SamplesPerPixel", 1))
    if spp != 1:
        raise UnsupportedDicomError(f"{spp} samples per pixel (colour image); igrt reads greyscale CT/MR slices only", path)
    kinds = {8: "i1" if signed else "u1", 16: "i2" if signed else "u2", 32: "i4" if signed else "u4"}
    if bits not in kinds:
        raise UnsupportedDicomError(f"BitsAllocated={bits} is not supported (8, 16 or 32 expected)", path)
    return np.dtype(kinds[bits])


def _locate_tail_pixels(raw: bytes, nbytes: int, ts: str) -> int | None:
    """Offset of the pixel bytes when Pixel Data is the last element (the usual layout), else None.

    Checks the exact tag and length bytes at the computed position, so a hit
    cannot be a coincidence of pixel values.
    """
    padded = nbytes + (nbytes & 1)
    if ts == ImplicitVRLittleEndian:
        start = len(raw) - padded - 8
        if start >= 0 and raw[start : start + 4] == _PIXEL_TAG and struct.unpack_from("<I", raw, start + 4)[0] == padded:
            return start + 8
        return None
    if ts == ExplicitVRLittleEndian:
        start = len(raw) - padded - 12
        if (
            start >= 0
            and raw[start : start + 4] == _PIXEL_TAG
            and raw[start + 4 : start + 6] in (b"OW", b"OB")
            and struct.unpack_from("<I", raw, start + 8)[0] == padded
        ):
            return start + 12
        return None
    return None


def decode_slice(path: Path, ds: Dataset, raw: bytes | None = None) -> np.ndarray:
    """Stored pixel values (rows, cols) of one single-frame image, without rescale."""
    rows = int(require(ds, "Rows", path, "the image"))
    cols = int(require(ds, "Columns", path, "the image"))
    if int(ds.get("NumberOfFrames", 1) or 1) > 1:
        raise UnsupportedDicomError("multi-frame image; igrt reads single-frame CT/MR slice series", path)
    dtype = _pixel_dtype(ds, path)
    nbytes = rows * cols * dtype.itemsize
    ts = str(getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", ExplicitVRLittleEndian) or ExplicitVRLittleEndian)
    if ts in _UNCOMPRESSED:
        if raw is None:
            with open(path, "rb") as f:
                raw = f.read()
        off = None
        if isinstance(ds, FastHeader) and ds.pixel_offset is not None and ds.pixel_length >= nbytes and ds.pixel_offset + nbytes <= len(raw):
            off = ds.pixel_offset
        if off is None:
            off = _locate_tail_pixels(raw, nbytes, ts)
        if off is not None:
            return np.frombuffer(raw, dtype=dtype.newbyteorder("<"), count=rows * cols, offset=off).reshape(rows, cols)
        # Unusual layout (elements after Pixel Data, big endian): let pydicom find the element.
        try:
            full = pydicom.dcmread(io.BytesIO(raw))
            data = full.get("PixelData", None)
        except Exception:
            data = None
            full = None
        if full is None:
            raise TruncatedPixelDataError(
                f"pixel data cannot be read (file cut short?); expected {nbytes} bytes for {rows}x{cols}; re-export the slice", path
            )
        if data is None:
            raise TruncatedPixelDataError("image without Pixel Data (7FE0,0010); re-export the slice", path)
        if len(data) < nbytes:
            raise TruncatedPixelDataError(
                f"pixel data holds {len(data)} bytes, {rows}x{cols}x{dtype.itemsize} needs {nbytes}; the file is truncated, re-export it",
                path,
            )
        order = ">" if ts == ExplicitVRBigEndian else "<"
        return np.frombuffer(data, dtype=dtype.newbyteorder(order), count=rows * cols).reshape(rows, cols)
    # Compressed transfer syntaxes: pydicom's decoders (may need optional plugins).
    try:
        full = pydicom.dcmread(path)
        arr = full.pixel_array
    except Exception as exc:
        raise UnsupportedDicomError(
            f"compressed pixel data ({ts}) could not be decoded ({type(exc).__name__}: {exc}); "
            "install pylibjpeg/gdcm plugins for pydicom or export uncompressed",
            path,
        ) from None
    if arr.shape != (rows, cols):
        raise UnsupportedDicomError(f"decoded pixel array has shape {arr.shape}, expected {(rows, cols)}", path)
    return arr


# --------------------------------------------------------------------------- geometry
@dataclass(frozen=True)
class _Geometry:
    order: np.ndarray
    origin: np.ndarray
    spacing: tuple[float, float, float]
    direction: np.ndarray


def _series_geometry(paths: Sequence[Path], headers: Sequence[Dataset]) -> _Geometry:
    """Sort slices along the normal and check they form one regular grid."""
    first_path = paths[0]
    iop = np.array([floats(require(h, "ImageOrientationPatient", p, "the image"), 6, "ImageOrientationPatient", p) for p, h in zip(paths, headers)])
    ipp = np.array([floats(require(h, "ImagePositionPatient", p, "the image"), 3, "ImagePositionPatient", p) for p, h in zip(paths, headers)])
    bad = np.nonzero(np.abs(iop - iop[0]).max(axis=1) > 1e-4)[0]
    if bad.size:
        raise MixedSeriesError(
            f"slices with different ImageOrientationPatient (e.g. {paths[bad[0]].name}); the series mixes orientations, split it", first_path
        )
    row_dir, col_dir = iop[0, :3], iop[0, 3:]
    row_dir = row_dir / np.linalg.norm(row_dir)
    col_dir = col_dir - row_dir * (row_dir @ col_dir)
    col_dir = col_dir / np.linalg.norm(col_dir)
    normal = np.cross(row_dir, col_dir)
    ps = [floats(require(h, "PixelSpacing", p, "the image"), 2, "PixelSpacing", p) for p, h in zip(paths, headers)]
    ps = np.array(ps)
    rc = np.array([(int(h.Rows), int(h.Columns)) for h in headers])
    if np.abs(ps - ps[0]).max() > 1e-4 or (rc != rc[0]).any():
        raise MixedSeriesError("slices with different sizes or pixel spacings; the folder mixes series, split it", first_path)
    d = ipp @ normal
    order = np.argsort(d, kind="stable")
    d_sorted = d[order]
    ipp_sorted = ipp[order]
    n = len(paths)
    if n == 1:
        h = headers[0]
        dz = float(h.get("SpacingBetweenSlices", 0) or h.get("SliceThickness", 0) or 1.0)
    else:
        diffs = np.diff(d_sorted)
        dup = np.nonzero(diffs < 1e-3)[0]
        if dup.size:
            a, b = paths[order[dup[0]]].name, paths[order[dup[0] + 1]].name
            raise MixedSeriesError(
                f"two slices at the same position ({a}, {b} at {d_sorted[dup[0]]:.3f} mm along the normal); "
                "the folder holds duplicates or several series, keep one",
                first_path,
            )
        # In-plane drift of the slice positions along the stack = gantry tilt (or a sheared stack).
        rel = ipp_sorted - ipp_sorted[0]
        inplane = np.abs(np.stack([rel @ row_dir, rel @ col_dir], axis=1)).max()
        if inplane > max(0.05, 1e-4 * (d_sorted[-1] - d_sorted[0])):
            tilt = [float(h.get("GantryDetectorTilt", 0) or 0) for h in headers[:1]][0]
            raise GantryTiltError(
                f"slice positions drift {inplane:.2f} mm sideways along the stack (gantry tilt {tilt:g} deg); "
                "igrt needs an untilted axial series: resample it to a regular grid first",
                first_path,
            )
        med = float(np.median(diffs))
        tol = max(0.01, 0.01 * med)
        off = np.abs(diffs - med) > tol
        if off.any():
            ratio = diffs / med
            gap = off & (np.abs(ratio - np.round(ratio)) * med <= tol) & (np.round(ratio) >= 2)
            if gap.any():
                k = int(np.nonzero(gap)[0][0])
                missing = int(np.sum(np.round(ratio[gap]) - 1))
                raise MissingSlicesError(
                    f"{missing} slice(s) missing from the series (first gap between {d_sorted[k]:.2f} and {d_sorted[k + 1]:.2f} mm "
                    f"along the normal, spacing {med:.3f} mm); export the complete series",
                    first_path,
                )
            raise NonUniformSpacingError(
                f"slice spacing varies from {diffs.min():.3f} to {diffs.max():.3f} mm; igrt needs uniform spacing: "
                "resample the series to a regular grid first",
                first_path,
            )
        dz = float((d_sorted[-1] - d_sorted[0]) / (n - 1))
    direction = np.stack([row_dir, col_dir, normal], axis=1)
    spacing = (float(ps[0][1]), float(ps[0][0]), dz)
    return _Geometry(order, ipp_sorted[0], spacing, direction)


# --------------------------------------------------------------------------- reading
def _read_header_and_raw(path: Path) -> tuple[Dataset, bytes]:
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise NotDicomError(f"cannot open the file ({exc.strerror}); check permissions", path) from None
    fast = parse_header(raw)
    if fast is not None and "SOPClassUID" in fast:
        return fast, raw
    try:
        ds = pydicom.dcmread(io.BytesIO(raw), stop_before_pixels=True)
    except Exception:
        read_dataset(path, stop_before_pixels=True)  # raises the typed error
        raise
    return ds, raw


def group_image_series(headers: Iterable[tuple[Path, Dataset]]) -> dict[str, list[tuple[Path, Dataset]]]:
    """Image headers grouped by SeriesInstanceUID (non-image objects are left out)."""
    groups: dict[str, list[tuple[Path, Dataset]]] = {}
    for p, h in headers:
        if is_image_header(h):
            groups.setdefault(str(h.get("SeriesInstanceUID", "")), []).append((p, h))
    return groups


def load_ct_series(
    source: str | os.PathLike | Sequence[str | os.PathLike],
    series_uid: str | None = None,
    dtype=np.float32,
    headers: Sequence[tuple[Path, Dataset]] | None = None,
    threads: int | None = None,
) -> CtSeries:
    """Read one image series (a folder, or a list of slice files) into a `CtSeries`.

    ``dtype``: output type of the rescaled values (float32 by default; None keeps
    int16 when slope/intercept are integral). ``series_uid`` picks one series in
    a folder holding several. ``headers`` lets the folder loader pass headers it
    already read (pixels are then read from the files).
    """
    raws: dict[Path, bytes] = {}
    if headers is None:
        if isinstance(source, (str, os.PathLike)):
            folder = Path(source)
            if folder.is_dir():
                files = _list_files(folder)
                if not files:
                    raise NoImageSeriesError("the folder is empty; give a folder holding a CT series", folder)
            else:
                files = [folder]
        else:
            files = [Path(p) for p in source]
        pairs = []
        for p in files:
            try:
                h, raw = _read_header_and_raw(p)
            except NotDicomError:
                if len(files) == 1:
                    raise
                continue  # not a slice: ignore other files in a series folder
            pairs.append((p, h))
            raws[p] = raw
        where = Path(source) if isinstance(source, (str, os.PathLike)) else (files[0] if files else Path("."))
    else:
        pairs = list(headers)
        where = pairs[0][0] if pairs else Path(".")
    groups = group_image_series(pairs)
    if series_uid is not None:
        if series_uid not in groups:
            raise NoImageSeriesError(f"no image series with SeriesInstanceUID {series_uid}; found {', '.join(groups) or 'none'}", where)
        chosen = groups[series_uid]
    else:
        if not groups:
            raise NoImageSeriesError("no CT/MR image slices found; give a folder holding an image series", where)
        if len(groups) > 1:
            desc = "; ".join(
                f"{uid} ({len(g)} slices, {g[0][1].get('Modality', '?')} '{g[0][1].get('SeriesDescription', '')}')" for uid, g in groups.items()
            )
            raise MixedSeriesError(f"{len(groups)} image series found: {desc}; pass series_uid or put each series in its own folder", where)
        chosen = next(iter(groups.values()))
    paths = [p for p, _ in chosen]
    hdrs = [h for _, h in chosen]
    geom = _series_geometry(paths, hdrs)
    rows, cols = int(hdrs[0].Rows), int(hdrs[0].Columns)
    n = len(paths)

    slopes = np.array([float(h.get("RescaleSlope", 1) or 1) for h in hdrs])
    inters = np.array([float(h.get("RescaleIntercept", 0) or 0) for h in hdrs])
    if dtype is None:
        integral = np.all(slopes == np.round(slopes)) and np.all(inters == np.round(inters))
        out_dtype = np.dtype(np.int16) if integral else np.dtype(np.float32)
    else:
        out_dtype = np.dtype(dtype)
    out = np.empty((n, rows, cols), dtype=out_dtype)

    def fill(k: int) -> None:
        i = int(geom.order[k])
        p = paths[i]
        pix = decode_slice(p, hdrs[i], raws.pop(p, None))
        if pix.shape != (rows, cols):
            raise MixedSeriesError(f"slice is {pix.shape}, the series is {(rows, cols)}", p)
        if slopes[i] == 1.0:
            np.add(pix, inters[i], out=out[k], casting="unsafe")
        else:
            np.multiply(pix, slopes[i], out=out[k], casting="unsafe")
            out[k] += out_dtype.type(inters[i])

    # File reads and numpy copies release the GIL; a few threads hide the I/O latency.
    nthreads = threads if threads is not None else min(4, os.cpu_count() or 1)
    if nthreads > 1 and n > 8:
        with ThreadPoolExecutor(nthreads) as pool:
            list(pool.map(fill, range(n)))
    else:
        for k in range(n):
            fill(k)

    vol = Volume(out, tuple(geom.origin), geom.spacing, geom.direction)
    h0 = hdrs[int(geom.order[0])]
    sorted_uids = tuple(str(hdrs[int(i)].get("SOPInstanceUID", "")) for i in geom.order)
    pos = str(h0.get("PatientPosition", "") or "").strip().upper() or None
    return CtSeries(
        volume=vol,
        series_uid=str(h0.get("SeriesInstanceUID", "")),
        study_uid=str(h0.get("StudyInstanceUID", "")),
        frame_of_reference_uid=str(h0.get("FrameOfReferenceUID", "")),
        patient_id=str(h0.get("PatientID", "")),
        patient_name=str(h0.get("PatientName", "")),
        sop_class_uid=str(h0.get("SOPClassUID", "")),
        sop_instance_uids=sorted_uids,
        paths=tuple(paths[int(i)] for i in geom.order),
        modality=str(h0.get("Modality", "CT")),
        orientation=pos,
        description=str(h0.get("SeriesDescription", "")),
    )


def read_ct_series(source, series_uid: str | None = None, dtype=np.float32) -> Volume:
    """Read a CT series (folder or list of files) as a `Volume` in HU (float32 by default)."""
    return load_ct_series(source, series_uid=series_uid, dtype=dtype).volume


# --------------------------------------------------------------------------- writing
def write_ct_series(
    volume: Volume,
    folder: str | os.PathLike,
    patient: PatientInfo | None = None,
    series_uid: str | None = None,
    series_number: int = 1,
    description: str = "CT",
    orientation: str | PatientOrientation = "HFS",
    prefix: str = "CT",
) -> CtSeries:
    """Write ``volume`` (HU) as a CT Image Storage series, one file per z slice.

    Values are rounded to integer HU and stored as signed 16 bit (slope 1,
    intercept 0). A left-handed direction (z against row x column) is written
    with the slice order reversed so every slice normal is row x column; the
    world geometry is unchanged. Returns the written series with its UIDs.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    patient = patient or PatientInfo()
    series_uid = series_uid or generate_uid()
    orientation = PatientOrientation.parse(orientation).value
    arr, origin, d = slices_in_stored_order(volume)
    sx, sy, sz = volume.spacing
    nz, ny, nx = arr.shape
    pix = np.clip(np.rint(arr), -32768, 32767).astype("<i2")

    ds = new_dataset(CT_IMAGE_STORAGE, "CT", patient, series_uid, series_number, description)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.PatientPosition = orientation
    ds.SliceThickness = ds_number(sz)
    ds.SpacingBetweenSlices = ds_number(sz)
    ds.KVP = "120"
    ds.AcquisitionNumber = 1
    ds.ImageOrientationPatient = [ds_number(v) for v in (*d[:, 0], *d[:, 1])]
    set_image_pixel(ds, ny, nx, (sy, sx), bits=16, signed=True)
    ds.WindowCenter = "40"
    ds.WindowWidth = "400"
    ds.RescaleIntercept = "0"
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU"
    uids = []
    paths = []
    width = max(4, len(str(nz)))
    for k in range(nz):
        uid = generate_uid()
        ds.SOPInstanceUID = uid
        ds.file_meta.MediaStorageSOPInstanceUID = uid
        ds.InstanceNumber = k + 1
        pos = origin + d[:, 2] * sz * k
        ds.ImagePositionPatient = [ds_number(v) for v in pos]
        ds.SliceLocation = ds_number(float(pos @ d[:, 2]))
        ds.PixelData = pix[k].tobytes()
        p = folder / f"{prefix}.{k + 1:0{width}d}.dcm"
        ds.save_as(p, enforce_file_format=True)
        uids.append(uid)
        paths.append(p)
    written = Volume(pix.astype(np.float32), tuple(origin), (sx, sy, sz), d)
    return CtSeries(
        volume=written,
        series_uid=series_uid,
        study_uid=patient.study_uid,
        frame_of_reference_uid=patient.frame_of_reference_uid,
        patient_id=patient.patient_id,
        patient_name=patient.patient_name,
        sop_class_uid=CT_IMAGE_STORAGE,
        sop_instance_uids=tuple(uids),
        paths=tuple(paths),
        orientation=orientation,
        description=description,
    )
