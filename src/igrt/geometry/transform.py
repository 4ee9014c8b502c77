"""`RigidTransform`: a 6DOF rigid motion in LPS millimetres.

Rotation convention (used everywhere in igrt): angles ``(rx, ry, rz)`` in
degrees are right-handed rotations about the LPS x (patient left), y
(posterior) and z (superior) axes, applied in that order - first about x,
then y, then z, all about fixed axes - so ``R = Rz @ Ry @ Rx``. A transform
with a rotation centre ``c`` maps a point ``p`` to ``R (p - c) + c + t``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from igrt.errors import GeometryError


def rotation_matrix(rx_deg: float, ry_deg: float, rz_deg: float) -> np.ndarray:
    """3x3 matrix ``Rz @ Ry @ Rx`` for right-handed rotations in degrees."""
    ax, ay, az = np.deg2rad([rx_deg, ry_deg, rz_deg])
    cx, sx, cy, sy, cz, sz = np.cos(ax), np.sin(ax), np.cos(ay), np.sin(ay), np.cos(az), np.sin(az)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def euler_angles_deg(r: np.ndarray) -> tuple[float, float, float]:
    """Angles (rx, ry, rz) in degrees with ``r == rotation_matrix(rx, ry, rz)``; |ry| <= 90."""
    r = np.asarray(r, dtype=float)
    sy = -r[2, 0]
    sy = float(np.clip(sy, -1.0, 1.0))
    ry = np.arcsin(sy)
    if abs(sy) < 1.0 - 1e-12:
        rx = np.arctan2(r[2, 1], r[2, 2])
        rz = np.arctan2(r[1, 0], r[0, 0])
    else:  # gimbal lock: only rz - rx (or rz + rx) is defined; put it all in rz
        rx = 0.0
        rz = np.arctan2(-r[0, 1], r[1, 1])
    return tuple(float(a) for a in np.rad2deg([rx, ry, rz]))  # type: ignore[return-value]


def rotation_angle_deg(r: np.ndarray) -> float:
    """Total rotation angle of a rotation matrix in degrees (axis-angle magnitude)."""
    r = np.asarray(r, dtype=float)
    # atan2 of the skew and symmetric parts stays accurate near 0 and 180 deg, unlike arccos.
    s = np.linalg.norm([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]]) / 2.0
    c = (np.trace(r) - 1.0) / 2.0
    return float(np.rad2deg(np.arctan2(s, c)))


@dataclass(frozen=True, eq=False)
class RigidTransform:
    """A rigid transform as a 4x4 homogeneous matrix acting on LPS points (mm)."""

    matrix: np.ndarray

    def __post_init__(self) -> None:
        m = np.asarray(self.matrix, dtype=float)
        if m.shape != (4, 4) or not np.all(np.isfinite(m)):
            raise GeometryError("a rigid transform needs a finite 4x4 matrix")
        r = m[:3, :3]
        if not np.allclose(r.T @ r, np.eye(3), atol=1e-6) or np.linalg.det(r) < 0:
            raise GeometryError("the 3x3 part of a rigid transform must be a proper rotation")
        if not np.allclose(m[3], [0, 0, 0, 1]):
            raise GeometryError("the last row of a homogeneous matrix must be [0, 0, 0, 1]")
        object.__setattr__(self, "matrix", m)

    @classmethod
    def identity(cls) -> "RigidTransform":
        return cls(np.eye(4))

    @classmethod
    def from_params(
        cls,
        translation_mm=(0.0, 0.0, 0.0),
        rotation_deg=(0.0, 0.0, 0.0),
        centre_mm=(0.0, 0.0, 0.0),
    ) -> "RigidTransform":
        """``p -> R (p - c) + c + t`` with ``R = rotation_matrix(*rotation_deg)``."""
        r = rotation_matrix(*rotation_deg)
        c = np.asarray(centre_mm, dtype=float)
        m = np.eye(4)
        m[:3, :3] = r
        m[:3, 3] = np.asarray(translation_mm, dtype=float) + c - r @ c
        return cls(m)

    @property
    def rotation(self) -> np.ndarray:
        return self.matrix[:3, :3]

    @property
    def offset(self) -> np.ndarray:
        """Translation part of the matrix (rotation about the LPS origin)."""
        return self.matrix[:3, 3]

    def rotation_deg(self) -> tuple[float, float, float]:
        """(rx, ry, rz) in degrees, convention of `rotation_matrix`."""
        return euler_angles_deg(self.rotation)

    def translation_mm(self, centre_mm=(0.0, 0.0, 0.0)) -> np.ndarray:
        """Translation t such that the transform is ``R (p - c) + c + t`` about ``centre_mm``."""
        c = np.asarray(centre_mm, dtype=float)
        return self.apply(c) - c

    def params(self, centre_mm=(0.0, 0.0, 0.0)) -> tuple[np.ndarray, tuple[float, float, float]]:
        """(translation_mm, rotation_deg) about ``centre_mm``; inverse of `from_params`."""
        return self.translation_mm(centre_mm), self.rotation_deg()

    def apply(self, points) -> np.ndarray:
        """Map LPS points given as (3,) or (N, 3) in mm."""
        p = np.asarray(points, dtype=float)
        return p @ self.rotation.T + self.offset

    def apply_vector(self, vectors) -> np.ndarray:
        """Rotate direction vectors (no translation)."""
        return np.asarray(vectors, dtype=float) @ self.rotation.T

    def inverse(self) -> "RigidTransform":
        m = np.eye(4)
        m[:3, :3] = self.rotation.T
        m[:3, 3] = -self.rotation.T @ self.offset
        return RigidTransform(m)

    def compose(self, other: "RigidTransform") -> "RigidTransform":
        """``self ∘ other``: apply ``other`` first, then ``self``."""
        return RigidTransform(self.matrix @ other.matrix)

    def __matmul__(self, other: "RigidTransform") -> "RigidTransform":
        return self.compose(other)

    def is_close(self, other: "RigidTransform", tol_mm: float = 1e-6, tol_deg: float = 1e-6) -> bool:
        angle = rotation_angle_deg(self.rotation.T @ other.rotation)
        return bool(angle <= tol_deg and np.allclose(self.offset, other.offset, atol=tol_mm))

    def to_dict(self, centre_mm=(0.0, 0.0, 0.0)) -> dict:
        """JSON-ready description: matrix, translation and rotation about ``centre_mm``."""
        t, r = self.params(centre_mm)
        return {
            "matrix": self.matrix.tolist(),
            "centre_mm": [float(v) for v in centre_mm],
            "translation_mm": [float(v) for v in t],
            "rotation_deg": list(r),
            "rotation_order": "Rz@Ry@Rx (extrinsic x, then y, then z; LPS axes)",
        }

    @classmethod
    def from_dict(cls, data: dict) -> "RigidTransform":
        return cls(np.asarray(data["matrix"], dtype=float))
