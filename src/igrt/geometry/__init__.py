"""Geometry core: volumes on LPS grids, rigid transforms, resampling, IEC 61217 frames."""

from igrt.geometry.orientation import (
    PatientOrientation,
    iec_to_lps,
    iec_to_lps_matrix,
    lps_to_iec,
    lps_to_iec_matrix,
)
from igrt.geometry.resample import resample, resample_to_grid
from igrt.geometry.transform import RigidTransform, rotation_matrix
from igrt.geometry.volume import Volume

__all__ = [
    "PatientOrientation",
    "RigidTransform",
    "Volume",
    "iec_to_lps",
    "iec_to_lps_matrix",
    "lps_to_iec",
    "lps_to_iec_matrix",
    "resample",
    "resample_to_grid",
    "rotation_matrix",
]
