"""Typed errors of `igrt.correction`."""

from igrt.errors import IgrtError


class CorrectionError(IgrtError):
    """A couch correction, action level or protocol input is invalid."""


class ExportUnavailableError(CorrectionError):
    """A decision cannot be exported (not approved, or the DICOM writer is missing)."""
