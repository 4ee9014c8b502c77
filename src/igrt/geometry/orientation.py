"""Patient orientations and the IEC 61217 patient support (table) frame.

IEC 61217 table frame at zero couch angles: +X to the right of an observer at
the foot of the couch facing the gantry (lateral), +Y toward the gantry
(longitudinal), +Z up (vertical). DICOM patient coordinates are LPS: +x to
the patient's left, +y posterior, +z superior.

How the patient lies on the couch fixes the LPS -> IEC rotation ``M`` with
``v_iec = M @ v_lps``. Derivation (right-handed frames, ``L = P x S``):
HFS has S = +Y and P = -Z, so L = (-Z) x Y = +X; every other orientation
follows the same way and is written out in `_LPS_TO_IEC`.
"""

from __future__ import annotations

from enum import Enum

import numpy as np

from igrt.errors import GeometryError


class PatientOrientation(str, Enum):
    """DICOM Patient Position (0018,5100) codes."""

    HFS = "HFS"  # head first supine
    HFP = "HFP"  # head first prone
    FFS = "FFS"  # feet first supine
    FFP = "FFP"  # feet first prone
    HFDL = "HFDL"  # head first decubitus left (left side down)
    HFDR = "HFDR"  # head first decubitus right
    FFDL = "FFDL"  # feet first decubitus left
    FFDR = "FFDR"  # feet first decubitus right

    @classmethod
    def parse(cls, value: "str | PatientOrientation") -> "PatientOrientation":
        try:
            return cls(str(value.value if isinstance(value, cls) else value).strip().upper())
        except ValueError:
            known = ", ".join(o.value for o in cls)
            raise GeometryError(f"unknown patient orientation {value!r}; expected one of {known}") from None


# Rows: IEC X (lateral), Y (longitudinal), Z (vertical) as combinations of LPS x, y, z.
_LPS_TO_IEC = {
    PatientOrientation.HFS: [[1, 0, 0], [0, 0, 1], [0, -1, 0]],
    PatientOrientation.HFP: [[-1, 0, 0], [0, 0, 1], [0, 1, 0]],
    PatientOrientation.FFS: [[-1, 0, 0], [0, 0, -1], [0, -1, 0]],
    PatientOrientation.FFP: [[1, 0, 0], [0, 0, -1], [0, 1, 0]],
    PatientOrientation.HFDL: [[0, -1, 0], [0, 0, 1], [-1, 0, 0]],
    PatientOrientation.HFDR: [[0, 1, 0], [0, 0, 1], [1, 0, 0]],
    PatientOrientation.FFDL: [[0, 1, 0], [0, 0, -1], [-1, 0, 0]],
    PatientOrientation.FFDR: [[0, -1, 0], [0, 0, -1], [1, 0, 0]],
}


def lps_to_iec_matrix(orientation: "str | PatientOrientation") -> np.ndarray:
    """3x3 rotation M with ``v_iec = M @ v_lps`` for the given patient orientation."""
    return np.array(_LPS_TO_IEC[PatientOrientation.parse(orientation)], dtype=float)


def iec_to_lps_matrix(orientation: "str | PatientOrientation") -> np.ndarray:
    """3x3 rotation with ``v_lps = M @ v_iec`` (transpose of `lps_to_iec_matrix`)."""
    return lps_to_iec_matrix(orientation).T


def lps_to_iec(vectors, orientation: "str | PatientOrientation") -> np.ndarray:
    """LPS vectors/points (..., 3) in mm expressed in the IEC table frame (same origin)."""
    return np.asarray(vectors, dtype=float) @ lps_to_iec_matrix(orientation).T


def iec_to_lps(vectors, orientation: "str | PatientOrientation") -> np.ndarray:
    """IEC table-frame vectors/points (..., 3) in mm expressed in LPS (same origin)."""
    return np.asarray(vectors, dtype=float) @ lps_to_iec_matrix(orientation)
