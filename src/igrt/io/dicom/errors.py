"""Typed DICOM errors. Each names the file (``path``) and says what to do."""

from __future__ import annotations

from pathlib import Path

from igrt.errors import IgrtError


class DicomError(IgrtError):
    """Base class of every DICOM input/output problem igrt reports."""

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        self.path = None if path is None else Path(path)
        super().__init__(f"{path}: {message}" if path is not None else message)


class NotDicomError(DicomError):
    """The file is not DICOM or is corrupt (cannot be parsed)."""


class MissingTagError(DicomError):
    """A tag the object needs is absent or empty."""


class TruncatedPixelDataError(DicomError):
    """Pixel data shorter than Rows x Columns x BitsAllocated say."""


class UnsupportedDicomError(DicomError):
    """Valid DICOM that igrt does not handle (compression without a decoder, multi-frame CT, ...)."""


class SeriesGeometryError(DicomError):
    """A CT series whose slices do not form one regular 3D grid."""


class GantryTiltError(SeriesGeometryError):
    """Slices are shifted sideways along the stack (gantry tilt)."""


class NonUniformSpacingError(SeriesGeometryError):
    """Slice spacing varies within the series."""


class MissingSlicesError(SeriesGeometryError):
    """Gaps in the slice stack (slices missing from the export)."""


class MixedSeriesError(SeriesGeometryError):
    """Files of several series or incompatible slices where one series was expected."""


class NoImageSeriesError(DicomError):
    """No CT (image) series where one was required."""


class PatientMismatchError(DicomError):
    """Files of more than one patient where one was expected."""


class FrameOfReferenceMismatchError(DicomError):
    """An object whose frame of reference does not match the images it refers to."""


class MissingReferenceError(DicomError):
    """A reference between RT objects cannot be resolved."""
