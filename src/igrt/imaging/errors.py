"""Typed errors of `igrt.imaging` (all subclass `IgrtError`, so the CLI prints one line)."""

from igrt.errors import GeometryError, IgrtError


class ImagingGeometryError(GeometryError):
    """A cone-beam or DRR geometry that cannot describe a real imager (zero distances, ...)."""


class DetectorTooSmallError(ImagingGeometryError):
    """The detector does not cover the requested field of view / reconstruction grid."""


class ProjectionDataError(IgrtError):
    """Projection data that does not match its geometry or holds invalid values (NaN, ...)."""


class ImagingFormatError(IgrtError):
    """A projection / geometry file that cannot be read or written."""
