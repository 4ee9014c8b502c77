"""Input/output: images via SimpleITK (`images`), DICOM RT (`dicom`)."""

from igrt.io.images import read_image, write_image

__all__ = ["read_image", "write_image"]
