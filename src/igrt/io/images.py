"""Read and write 3D images as `Volume`s: DICOM CT series folders or any SimpleITK format.

SimpleITK already works in DICOM LPS (it converts NIfTI's RAS on read), its
``GetArrayFromImage`` returns ``[z, y, x]`` and its direction is a row-major
3x3 whose columns are the index axes: exactly `Volume`'s conventions, so the
mapping below is a straight copy.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from igrt.geometry import Volume
from igrt.io.errors import ImageIOError

# Extensions whose files are single DICOM objects (read through igrt's DICOM reader).
_DICOM_SUFFIXES = {".dcm", ".ima", ".dicom"}


def _is_dicom_file(path: Path) -> bool:
    if path.suffix.lower() in _DICOM_SUFFIXES:
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(132)
        return len(head) == 132 and head[128:132] == b"DICM"
    except OSError:
        return False


def read_image(path: str | os.PathLike) -> Volume:
    """Read a 3D image: a folder holding one DICOM CT series, one DICOM slice or RT Dose file, or a file SimpleITK reads.

    Files: .mha/.mhd/.nii/.nii.gz/.nrrd/... (origin/spacing/direction kept, LPS mm).
    CT values are returned as stored after rescale (HU for CT). Raises
    `ImageIOError` (or a DICOM error) when the path cannot be read as a 3D image.
    """
    p = Path(path)
    if not p.exists():
        raise ImageIOError(f"{p}: no such file or folder; check the path")
    if p.is_dir():
        from igrt.io.dicom.ct import read_ct_series

        return read_ct_series(p)
    if _is_dicom_file(p):
        from igrt.io.dicom.common import modality_of, read_dataset
        from igrt.io.dicom.ct import read_ct_series

        if modality_of(read_dataset(p, stop_before_pixels=True)) == "RTDOSE":
            from igrt.io.dicom.rtdose import read_rtdose

            return read_rtdose(p).dose  # a dose grid file reads as its dose Volume (Gy)
        return read_ct_series([p])
    import SimpleITK as sitk

    try:
        img = sitk.ReadImage(str(p))
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[-1] if str(exc).strip() else "unknown format"
        raise ImageIOError(
            f"{p}: SimpleITK cannot read this file ({first}); use .mha, .nii(.gz), .nrrd or a DICOM series folder"
        ) from None
    return volume_from_sitk(img, source=str(p))


def volume_from_sitk(img, source: str = "image") -> Volume:
    """Convert a SimpleITK image (3D, scalar) to a `Volume` (array [z, y, x], LPS)."""
    import SimpleITK as sitk

    if img.GetDimension() != 3:
        raise ImageIOError(f"{source}: igrt needs a 3D image, this one has {img.GetDimension()} dimensions")
    if img.GetNumberOfComponentsPerPixel() != 1:
        raise ImageIOError(
            f"{source}: igrt needs a scalar image, this one has {img.GetNumberOfComponentsPerPixel()} components per voxel"
        )
    arr = sitk.GetArrayFromImage(img)
    direction = np.asarray(img.GetDirection(), dtype=float).reshape(3, 3)
    return Volume(arr, tuple(img.GetOrigin()), tuple(img.GetSpacing()), direction)


def volume_to_sitk(volume: Volume):
    """Convert a `Volume` to a SimpleITK image (booleans become uint8)."""
    import SimpleITK as sitk

    arr = np.asarray(volume.array)
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    img = sitk.GetImageFromArray(np.ascontiguousarray(arr), isVector=False)
    img.SetOrigin(tuple(float(v) for v in volume.origin))
    img.SetSpacing(tuple(float(v) for v in volume.spacing))
    img.SetDirection(tuple(float(v) for v in np.asarray(volume.direction).reshape(-1)))
    return img


def write_image(volume: Volume, path: str | os.PathLike, compress: bool = False) -> Path:
    """Write ``volume`` to ``path`` with SimpleITK (format from the extension, e.g. .mha, .nii.gz, .nrrd).

    Boolean masks are written as uint8. Returns the path written. For DICOM
    output use `igrt.io.dicom.write_ct_series`.
    """
    import SimpleITK as sitk

    p = Path(path)
    if p.suffix == "" or p.is_dir():
        raise ImageIOError(
            f"{p}: give a file name with an image extension (.mha, .nii.gz, .nrrd); "
            "for a DICOM series use igrt.io.dicom.write_ct_series"
        )
    p.parent.mkdir(parents=True, exist_ok=True)
    try:
        sitk.WriteImage(volume_to_sitk(volume), str(p), useCompression=compress)
    except RuntimeError as exc:
        raise ImageIOError(f"{p}: SimpleITK cannot write this file ({str(exc).strip().splitlines()[-1]})") from None
    return p
