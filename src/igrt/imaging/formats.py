"""Projection data files: RTK geometry XML, projection stacks (.mha via SimpleITK), Elekta HIS.

RTK geometry XML (``RTKThreeDCircularGeometry`` version 3): values shared by
every projection sit at the top level, the rest inside each ``<Projection>``
(``GantryAngle``, ``SourceOffsetX/Y``, ``ProjectionOffsetX/Y``, ... and the
3x4 ``Matrix``). igrt's `CBCTGeometry` uses RTK's frame, so gantry angles and
source offsets map one to one; RTK's ``ProjectionOffsetX/Y`` are relative to
the projection image's own origin, so ``du = ProjectionOffsetX + origin_u +
(nu - 1) / 2 pu`` (igrt writes stacks with centred origins, making them equal).
In-plane / out-of-plane detector tilts and cylindrical detectors are refused.

Elekta HIS (XIS/Heimann format, little-endian): a 100-byte header - a 68-byte
file header (uint16 file type 0x7000, uint16 header size 68, uint16 header
version, uint32 file size, uint16 image header size 32, uint16 ULX, ULY, BRX,
BRY, uint16 number of frames, uint16 correction flags, float64 integration
time (us), uint16 type of numbers, 34 reserved bytes) and a 32-byte image
(hardware) header - then ``frames x (BRY-ULY+1) x (BRX-ULX+1)`` uint16 pixels.
"""

from __future__ import annotations

import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from igrt.imaging.errors import ImagingFormatError
from igrt.geometry import PatientOrientation
from igrt.imaging.geometry import CBCTGeometry, PatientPlacement

# --- RTK geometry XML ---------------------------------------------------------
_PER_PROJECTION = {
    "SourceOffsetX": "source_offset_u_mm",
    "SourceOffsetY": "source_offset_v_mm",
    "ProjectionOffsetX": "offset_u_mm",
    "ProjectionOffsetY": "offset_v_mm",
}


def _fmt(x: float) -> str:
    return repr(float(x)) if float(x) != int(x) else str(int(x))


def write_rtk_geometry(geometry: CBCTGeometry, path: str | Path) -> None:
    """Write ``geometry`` as an RTK ``ThreeDCircularProjectionGeometry`` XML file (version 3)."""
    root = ET.Element("RTKThreeDCircularGeometry", version="3")
    ET.SubElement(root, "SourceToIsocenterDistance").text = _fmt(geometry.sad_mm)
    ET.SubElement(root, "SourceToDetectorDistance").text = _fmt(geometry.sid_mm)
    varying = []
    for tag, attr in _PER_PROJECTION.items():
        vals = getattr(geometry, attr)
        if np.all(vals == vals[0]):
            ET.SubElement(root, tag).text = _fmt(vals[0])
        else:
            varying.append((tag, vals))
    matrices = geometry.rtk_matrices()
    for i, angle in enumerate(geometry.angles_deg):
        proj = ET.SubElement(root, "Projection")
        ET.SubElement(proj, "GantryAngle").text = _fmt(angle)
        for tag, vals in varying:
            ET.SubElement(proj, tag).text = _fmt(vals[i])
        rows = "\n".join("        " + " ".join(f"{v:.17g}" for v in row) for row in matrices[i])
        ET.SubElement(proj, "Matrix").text = "\n" + rows + "\n    "
    ET.indent(root, space="    ")
    text = '<?xml version="1.0"?>\n<!DOCTYPE RTKGEOMETRY>\n' + ET.tostring(root, encoding="unicode") + "\n"
    Path(path).write_text(text)


def read_rtk_geometry(
    path: str | Path,
    detector_shape: tuple[int, int],
    pixel_spacing_mm: tuple[float, float],
    projection_origin_mm: tuple[float, float] | None = None,
) -> CBCTGeometry:
    """Read an RTK geometry XML into a `CBCTGeometry` for projections of the given size.

    ``projection_origin_mm`` is the (u, v) origin of the projection images (the
    physical coordinate of pixel 0, as in the .mha header); None means centred.
    """
    try:
        root = ET.parse(str(path)).getroot()
    except (OSError, ET.ParseError) as exc:
        raise ImagingFormatError(f"cannot read RTK geometry {path}: {exc}") from exc
    if root.tag != "RTKThreeDCircularGeometry":
        raise ImagingFormatError(f"{path} is not an RTK ThreeDCircularGeometry XML file (root <{root.tag}>)")

    def value(elem, tag, default):
        node = elem.find(tag)
        if node is None or node.text is None:
            return default
        try:
            return float(node.text)
        except ValueError:
            raise ImagingFormatError(f"{path}: <{tag}> is not a number: {node.text!r}") from None

    glob = {tag: value(root, tag, None) for tag in (
        "SourceToIsocenterDistance", "SourceToDetectorDistance", "InPlaneAngle", "OutOfPlaneAngle",
        "RadiusCylindricalDetector", *_PER_PROJECTION)}
    projections = root.findall("Projection")
    if not projections:
        raise ImagingFormatError(f"{path} holds no <Projection> entries")
    per = {tag: [] for tag in ("GantryAngle", "SourceToIsocenterDistance", "SourceToDetectorDistance",
                               "InPlaneAngle", "OutOfPlaneAngle", *_PER_PROJECTION)}
    for proj in projections:
        for tag in per:
            default = glob.get(tag)
            v = value(proj, tag, default if default is not None else (None if tag == "GantryAngle" else 0.0))
            if v is None:
                raise ImagingFormatError(f"{path}: a <Projection> has no <{tag}>")
            per[tag].append(v)
    for tag in ("InPlaneAngle", "OutOfPlaneAngle"):
        if np.any(np.abs(per[tag]) > 1e-9):
            raise ImagingFormatError(f"{path}: non-zero {tag} (tilted detector) is not supported by igrt")
    if (glob.get("RadiusCylindricalDetector") or 0.0) != 0.0:
        raise ImagingFormatError(f"{path}: cylindrical detectors are not supported; igrt handles flat panels")
    for tag in ("SourceToIsocenterDistance", "SourceToDetectorDistance"):
        vals = np.asarray(per[tag], float)
        if np.ptp(vals) > 1e-6:
            raise ImagingFormatError(f"{path}: {tag} varies between projections; igrt needs one value")
    nu, nv = (int(x) for x in detector_shape)
    pu, pv = (float(x) for x in pixel_spacing_mm)
    if projection_origin_mm is None:
        shift_u = shift_v = 0.0
    else:
        shift_u = projection_origin_mm[0] + (nu - 1) / 2.0 * pu
        shift_v = projection_origin_mm[1] + (nv - 1) / 2.0 * pv
    return CBCTGeometry(
        per["SourceToIsocenterDistance"][0],
        per["SourceToDetectorDistance"][0],
        np.asarray(per["GantryAngle"], float),
        (nu, nv),
        (pu, pv),
        offset_u_mm=np.asarray(per["ProjectionOffsetX"], float) + shift_u,
        offset_v_mm=np.asarray(per["ProjectionOffsetY"], float) + shift_v,
        source_offset_u_mm=np.asarray(per["SourceOffsetX"], float),
        source_offset_v_mm=np.asarray(per["SourceOffsetY"], float),
    )


# --- projection stacks (.mha / any SimpleITK format) ---------------------------
# Metadata keys of an .mha stack that say where the patient lay (RTK's XML cannot).
PLACEMENT_ISOCENTRE_KEY = "igrt_isocentre_lps_mm"
PLACEMENT_ORIENTATION_KEY = "igrt_patient_orientation"


def write_projections(
    path: str | Path, projections: np.ndarray, geometry: CBCTGeometry, placement: PatientPlacement | None = None
) -> None:
    """Write a stack ``[angle, v, u]`` with RTK's conventions (spacing pu, pv, 1; centred origin).

    ``placement`` (plan isocentre in LPS mm and patient orientation) is kept in
    the file's metadata so a reconstruction lands in patient coordinates.
    """
    import SimpleITK as sitk

    nu, nv = geometry.detector_shape
    pu, pv = geometry.pixel_spacing_mm
    arr = np.asarray(projections, np.float32)
    if arr.shape != (geometry.n_projections, nv, nu):
        raise ImagingFormatError(f"stack shape {arr.shape} does not match the geometry {(geometry.n_projections, nv, nu)}")
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((pu, pv, 1.0))
    img.SetOrigin((-(nu - 1) / 2.0 * pu, -(nv - 1) / 2.0 * pv, 0.0))
    if placement is not None:
        img.SetMetaData(PLACEMENT_ISOCENTRE_KEY, " ".join(f"{v:.6f}" for v in placement.isocentre_lps_mm))
        img.SetMetaData(PLACEMENT_ORIENTATION_KEY, PatientOrientation.parse(placement.orientation).value)
    sitk.WriteImage(img, str(path), useCompression=False)


def read_projection_placement(path: str | Path) -> PatientPlacement | None:
    """The patient placement stored by `write_projections`, or None when the file has none."""
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as exc:
        raise ImagingFormatError(f"cannot read projections {path}: {str(exc).strip().splitlines()[-1]}") from exc
    if not reader.HasMetaDataKey(PLACEMENT_ISOCENTRE_KEY):
        return None
    iso = tuple(float(v) for v in reader.GetMetaData(PLACEMENT_ISOCENTRE_KEY).split())
    orientation = reader.GetMetaData(PLACEMENT_ORIENTATION_KEY) if reader.HasMetaDataKey(PLACEMENT_ORIENTATION_KEY) else "HFS"
    return PatientPlacement(iso, orientation)


def read_projections(path: str | Path) -> tuple[np.ndarray, tuple[float, float], tuple[float, float]]:
    """Read a stack: (array ``[angle, v, u]`` float32, (pu, pv) mm, (u, v) origin mm of pixel 0)."""
    import SimpleITK as sitk

    try:
        img = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise ImagingFormatError(f"cannot read projections {path}: {str(exc).strip().splitlines()[-1]}") from exc
    if img.GetDimension() != 3:
        raise ImagingFormatError(f"{path}: a projection stack must be 3D (u, v, angle), got {img.GetDimension()}D")
    arr = sitk.GetArrayFromImage(img).astype(np.float32, copy=False)
    sp, org = img.GetSpacing(), img.GetOrigin()
    return arr, (float(sp[0]), float(sp[1])), (float(org[0]), float(org[1]))


# --- Elekta HIS -----------------------------------------------------------------
HIS_FILE_ID = 0x7000
HIS_FILE_HEADER_SIZE = 68
HIS_IMAGE_HEADER_SIZE = 32
HIS_HEADER_SIZE = HIS_FILE_HEADER_SIZE + HIS_IMAGE_HEADER_SIZE  # 100 bytes
_HIS_STRUCT = struct.Struct("<HHHIHHHHHHHdH34s")  # 68 bytes, little-endian, packed


def write_his(path: str | Path, frames: np.ndarray, integration_time_us: float = 0.0, header_version: int = 100) -> None:
    """Write uint16 frames ``[n, rows, cols]`` (or one ``[rows, cols]``) as an Elekta/XIS HIS file."""
    arr = np.asarray(frames)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.size == 0:
        raise ImagingFormatError(f"HIS frames must be [n, rows, cols], got shape {arr.shape}")
    if arr.min() < 0 or arr.max() > 65535:
        raise ImagingFormatError("HIS pixels are uint16: values must lie in 0..65535")
    n, rows, cols = arr.shape
    data = arr.astype("<u2").tobytes()
    header = _HIS_STRUCT.pack(
        HIS_FILE_ID, HIS_FILE_HEADER_SIZE, header_version, HIS_HEADER_SIZE + len(data), HIS_IMAGE_HEADER_SIZE,
        1, 1, cols, rows, n, 0, float(integration_time_us), 4, b"\0" * 34,
    )
    Path(path).write_bytes(header + b"\0" * HIS_IMAGE_HEADER_SIZE + data)


def read_his(path: str | Path) -> tuple[np.ndarray, dict]:
    """Read an HIS file: (uint16 frames ``[n, rows, cols]``, header fields)."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ImagingFormatError(f"cannot read HIS file {path}: {exc}") from exc
    if len(raw) < HIS_HEADER_SIZE:
        raise ImagingFormatError(f"{path}: {len(raw)} bytes is shorter than the 100-byte HIS header")
    (ftype, hsize, hver, fsize, ihsize, ulx, uly, brx, bry, n, corr, itime, tnum, _) = _HIS_STRUCT.unpack_from(raw, 0)
    if ftype != HIS_FILE_ID:
        raise ImagingFormatError(f"{path}: not an HIS file (file type 0x{ftype:04x}, expected 0x7000)")
    cols, rows = brx - ulx + 1, bry - uly + 1
    if cols <= 0 or rows <= 0 or n <= 0:
        raise ImagingFormatError(f"{path}: bad HIS image rectangle ({ulx},{uly})-({brx},{bry}) or {n} frames")
    start = hsize + ihsize
    need = start + n * rows * cols * 2
    if len(raw) < need:
        raise ImagingFormatError(
            f"{path}: truncated HIS file, {len(raw)} bytes for {n} frames of {cols}x{rows} ({need} needed)"
        )
    frames = np.frombuffer(raw, dtype="<u2", count=n * rows * cols, offset=start).reshape(n, rows, cols).copy()
    header = dict(header_version=hver, file_size=fsize, ulx=ulx, uly=uly, brx=brx, bry=bry, frames=n,
                  correction=corr, integration_time_us=itime, type_of_numbers=tnum)
    return frames, header


def his_to_line_integrals(frames: np.ndarray, flood_value: float = 65536.0) -> np.ndarray:
    """Line integrals ``log(flood / (raw + 1))`` from raw HIS intensities (Elekta Synergy convention)."""
    return np.log(flood_value / (np.asarray(frames, np.float64) + 1.0)).astype(np.float32)
