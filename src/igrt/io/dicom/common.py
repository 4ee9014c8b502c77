"""Helpers shared by the DICOM readers and writers: safe reading, tags, UIDs, file meta."""

from __future__ import annotations

import datetime as _dt
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import ExplicitVRLittleEndian, PYDICOM_IMPLEMENTATION_UID, generate_uid

from igrt.io.dicom.errors import MissingTagError, NotDicomError

# SOP classes used by igrt.
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
ENHANCED_CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2.1"
MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
RT_STRUCTURE_SET_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"
RT_PLAN_STORAGE = "1.2.840.10008.5.1.4.1.1.481.5"
RT_ION_PLAN_STORAGE = "1.2.840.10008.5.1.4.1.1.481.8"
RT_DOSE_STORAGE = "1.2.840.10008.5.1.4.1.1.481.2"
SPATIAL_REGISTRATION_STORAGE = "1.2.840.10008.5.1.4.1.1.66.1"

SOP_CLASS_MODALITY = {
    CT_IMAGE_STORAGE: "CT",
    MR_IMAGE_STORAGE: "MR",
    RT_STRUCTURE_SET_STORAGE: "RTSTRUCT",
    RT_PLAN_STORAGE: "RTPLAN",
    RT_ION_PLAN_STORAGE: "RTPLAN",
    RT_DOSE_STORAGE: "RTDOSE",
    SPATIAL_REGISTRATION_STORAGE: "REG",
}


def quiet(func):
    """Silence pydicom's UserWarnings about slightly invalid values (common in real archives) inside ``func``."""
    import functools

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return func(*args, **kwargs)

    return wrapper


def read_dataset(path: str | Path, stop_before_pixels: bool = False) -> Dataset:
    """``pydicom.dcmread`` with igrt errors: `NotDicomError` for non-DICOM or corrupt files."""
    p = Path(path)
    try:
        with warnings.catch_warnings():
            # Real archives hold slightly invalid values (over-long UIDs...): read them, don't flood stderr.
            warnings.simplefilter("ignore", UserWarning)
            ds = pydicom.dcmread(p, stop_before_pixels=stop_before_pixels)
    except InvalidDicomError:
        # Some exporters omit the 128-byte preamble; accept those only when they parse to an object with a SOP class.
        ds = _read_without_preamble(p, stop_before_pixels)
        if ds is None:
            raise NotDicomError("not a DICOM file (no DICM preamble or meta header); remove it or give a DICOM file", p) from None
    except FileNotFoundError:
        raise NotDicomError("no such file; check the path", p) from None
    except IsADirectoryError:
        raise NotDicomError("is a folder, expected a DICOM file", p) from None
    except Exception as exc:  # pydicom raises many kinds on corrupt data
        raise NotDicomError(f"corrupt DICOM file ({type(exc).__name__}: {exc}); re-export it", p) from None
    if "SOPClassUID" not in ds and "Modality" not in ds:
        raise NotDicomError("corrupt or incomplete DICOM file: no SOP Class UID or Modality; re-export it", p)
    return ds


def _read_without_preamble(p: Path, stop_before_pixels: bool) -> Dataset | None:
    with open(p, "rb") as f:
        head = f.read(8)
    # A raw dataset starts with a little-endian tag of group 0x0002..0x0010 (element ordering).
    if len(head) < 8 or head[1] != 0 or head[0] not in (0x02, 0x08, 0x10):
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(p, force=True, stop_before_pixels=stop_before_pixels)
        uid = str(ds.get("SOPClassUID", ""))
    except Exception:
        return None
    if not uid.startswith("1.2.840.10008."):
        return None
    return ds


def modality_of(ds: Dataset) -> str:
    """Modality string from the SOP class (preferred) or the Modality tag."""
    sop = str(ds.get("SOPClassUID", ""))
    if sop in SOP_CLASS_MODALITY:
        return SOP_CLASS_MODALITY[sop]
    return str(ds.get("Modality", "")).upper() or "UNKNOWN"


def require(ds: Dataset, keyword: str, path=None, what: str = "this object"):
    """Value of ``keyword`` or `MissingTagError` naming the tag and file."""
    value = ds.get(keyword, None)
    if value is None or (hasattr(value, "__len__") and not isinstance(value, (int, float)) and len(value) == 0 and keyword != "PixelData"):
        raise MissingTagError(f"required tag {keyword} is missing or empty in {what}; re-export it from the source system", path)
    return value


def floats(value, n: int | None = None, name: str = "value", path=None) -> np.ndarray:
    """A DICOM multi-value as a float array (checks the count when ``n`` is given)."""
    try:
        arr = np.asarray([float(v) for v in (value if hasattr(value, "__iter__") and not isinstance(value, str) else [value])], dtype=float)
    except (TypeError, ValueError):
        raise MissingTagError(f"{name} holds non-numeric values {value!r}; re-export the file", path) from None
    if n is not None and arr.size != n:
        raise MissingTagError(f"{name} needs {n} numbers, found {arr.size}; re-export the file", path)
    return arr


@dataclass
class PatientInfo:
    """Who and which study/frame of reference a set of written objects belongs to (shared UIDs)."""

    patient_id: str = "IGRT0001"
    patient_name: str = "IGRT^Phantom"
    study_uid: str = field(default_factory=generate_uid)
    frame_of_reference_uid: str = field(default_factory=generate_uid)
    study_id: str = "1"
    study_description: str = "igrt"
    birth_date: str = ""
    sex: str = "O"


def new_dataset(sop_class_uid: str, modality: str, patient: PatientInfo, series_uid: str,
                series_number: int, series_description: str, sop_instance_uid: str | None = None) -> Dataset:
    """A dataset with file meta, SOP common, patient, study, series and equipment modules filled."""
    sop_uid = sop_instance_uid or generate_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class_uid
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = "IGRT_0_1"
    ds = Dataset()
    ds.file_meta = meta
    now = _dt.datetime.now()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = sop_class_uid
    ds.SOPInstanceUID = sop_uid
    ds.InstanceCreationDate = now.strftime("%Y%m%d")
    ds.InstanceCreationTime = now.strftime("%H%M%S")
    ds.StudyDate = now.strftime("%Y%m%d")
    ds.StudyTime = now.strftime("%H%M%S")
    ds.AccessionNumber = ""
    ds.Modality = modality
    ds.Manufacturer = "igrt"
    ds.ReferringPhysicianName = ""
    ds.OperatorsName = ""
    ds.StationName = "igrt"
    ds.StudyDescription = patient.study_description
    ds.SeriesDescription = series_description
    ds.ManufacturerModelName = "igrt"
    ds.SoftwareVersions = "0.1"
    ds.PatientName = patient.patient_name
    ds.PatientID = patient.patient_id
    ds.PatientBirthDate = patient.birth_date
    ds.PatientSex = patient.sex
    ds.StudyInstanceUID = patient.study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = patient.study_id
    ds.SeriesNumber = series_number
    ds.FrameOfReferenceUID = patient.frame_of_reference_uid
    ds.PositionReferenceIndicator = ""
    return ds


def patient_from_dataset(ds: Dataset) -> PatientInfo:
    """The `PatientInfo` of an existing object (to write new objects into the same study/frame)."""
    return PatientInfo(
        patient_id=str(ds.get("PatientID", "")),
        patient_name=str(ds.get("PatientName", "")),
        study_uid=str(ds.get("StudyInstanceUID", "")) or generate_uid(),
        frame_of_reference_uid=str(ds.get("FrameOfReferenceUID", "")) or generate_uid(),
        study_id=str(ds.get("StudyID", "1")),
        study_description=str(ds.get("StudyDescription", "")),
    )


def slices_in_stored_order(volume) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(array, origin, direction) of a Volume with a right-handed index frame.

    DICOM slices are stored along the row x column normal, so a left-handed
    grid (slices running against it) is written with its slice order reversed.
    """
    arr = np.asarray(volume.array)
    d = np.asarray(volume.direction, float)
    origin = np.asarray(volume.origin, float)
    if np.linalg.det(d) < 0:
        nz = arr.shape[0]
        origin = origin + d[:, 2] * volume.spacing[2] * (nz - 1)
        d = d.copy()
        d[:, 2] = -d[:, 2]
        arr = arr[::-1]
    return arr, origin, d


def set_image_pixel(ds: Dataset, rows: int, columns: int, row_col_spacing_mm, bits: int, signed: bool) -> None:
    """Image Pixel module of a greyscale image: size, pixel spacing (row, column) and sample layout."""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = columns
    ds.PixelSpacing = [ds_number(v) for v in row_col_spacing_mm]
    ds.BitsAllocated = bits
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 1 if signed else 0


def save(ds: Dataset, path: str | Path) -> Path:
    """Write a dataset as a DICOM Part 10 file (preamble + meta)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(p, enforce_file_format=True)
    return p


def get_ds_fast(item: Dataset, keyword: str) -> np.ndarray | None:
    """A DS multi-value as a float array, parsed from the raw bytes when still undecoded (fast for ContourData)."""
    from pydicom.datadict import tag_for_keyword

    tag = tag_for_keyword(keyword)
    if tag is None or tag not in item:
        return None
    elem = item.get_item(tag)
    value = elem.value
    if isinstance(value, (bytes, bytearray)):
        text = value.decode("ascii", errors="replace").strip(" \x00")
        if not text:
            return np.zeros(0)
        try:
            return np.array(text.split("\\"), dtype=float)
        except ValueError:
            pass  # odd formatting: let pydicom decode it
    value = item[tag].value
    if value is None:
        return np.zeros(0)
    return np.asarray([float(v) for v in (value if hasattr(value, "__iter__") and not isinstance(value, str) else [value])], dtype=float)


def set_ds_fast(item: Dataset, keyword: str, values: np.ndarray, decimals: int = 4) -> None:
    """Set a long DS multi-value (e.g. ContourData) as pre-encoded bytes.

    pydicom validates and converts every DS value on assignment (~30 us
    each); contours hold hundreds of thousands, so the string is built once
    and stored raw. The writer must then declare the item's original encoding
    (explicit VR little endian, the file's character set) so pydicom copies
    the bytes instead of decoding them again (see `write_rtstruct`).
    """
    from pydicom.dataelem import RawDataElement
    from pydicom.datadict import tag_for_keyword
    from pydicom.tag import Tag

    fmt = f"{{:.{decimals}f}}".format
    text = "\\".join(map(fmt, np.asarray(values, dtype=float).reshape(-1).tolist())).replace("-0." + "0" * decimals, "0." + "0" * decimals)
    raw = text.encode("ascii")
    if len(raw) % 2:
        raw += b" "
    tag = Tag(tag_for_keyword(keyword))
    item._dict[tag] = RawDataElement(tag, "DS", len(raw), raw, 0, False, True)


def ds_number(value: float) -> str:
    """Format a float for a DS element (max 16 characters)."""
    s = f"{value:.10g}"
    if len(s) > 16:
        s = f"{value:.8g}"
    if len(s) > 16:
        s = f"{value:.6e}"
    return s
