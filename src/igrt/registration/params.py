"""The 6 rigid parameters used by the optimisers and their derivatives.

``p = (tx, ty, tz, rx, ry, rz)``: translations in mm and rotations in radians
about a fixed centre ``c`` (LPS mm), with ``T(x) = R (x - c) + c + t`` and
``R = Rz @ Ry @ Rx`` exactly as in `igrt.geometry.transform` (there in degrees).
"""

from __future__ import annotations

import numpy as np

from igrt.geometry import RigidTransform
from igrt.geometry.transform import rotation_matrix


def _axis_mats(rx: float, ry: float, rz: float):
    cx, sx, cy, sy, cz, sz = np.cos(rx), np.sin(rx), np.cos(ry), np.sin(ry), np.cos(rz), np.sin(rz)
    mx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    my = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    mz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    dmx = np.array([[0, 0, 0], [0, -sx, -cx], [0, cx, -sx]])
    dmy = np.array([[-sy, 0, cy], [0, 0, 0], [-cy, 0, -sy]])
    dmz = np.array([[-sz, -cz, 0], [cz, -sz, 0], [0, 0, 0]])
    return mx, my, mz, dmx, dmy, dmz


def matrix_and_derivatives(p: np.ndarray, centre: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(3x4 matrix of T(p), dR/d(rx, ry, rz) as a (3, 3, 3) array)."""
    mx, my, mz, dmx, dmy, dmz = _axis_mats(p[3], p[4], p[5])
    r = mz @ my @ mx
    dr = np.stack([mz @ my @ dmx, mz @ dmy @ mx, dmz @ my @ mx])
    m = np.empty((3, 4))
    m[:, :3] = r
    m[:, 3] = np.asarray(p[:3]) + centre - r @ centre
    return m, dr


def to_transform(p: np.ndarray, centre: np.ndarray) -> RigidTransform:
    """`RigidTransform` for parameters ``p`` (rotations in radians) about ``centre``."""
    return RigidTransform.from_params(p[:3], np.rad2deg(p[3:6]), centre)


def from_transform(t: RigidTransform, centre: np.ndarray) -> np.ndarray:
    """Parameters (mm, radians) of ``t`` about ``centre``."""
    tr, rot = t.params(centre)
    return np.concatenate([tr, np.deg2rad(rot)])


def perturb(p: np.ndarray, centre: np.ndarray, shift_mm, rot_deg) -> np.ndarray:
    """Parameters of ``T(p)`` followed by an extra shift/rotation about the mapped centre."""
    t = to_transform(p, centre)
    c2 = t.apply(centre)
    extra = RigidTransform.from_params(shift_mm, rot_deg, c2)
    return from_transform(extra @ t, centre)


__all__ = ["matrix_and_derivatives", "to_transform", "from_transform", "perturb", "rotation_matrix"]
