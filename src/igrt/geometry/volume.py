"""`Volume`: a 3D image on a DICOM patient (LPS) grid.

The array is indexed ``[z, y, x]`` (slice, row, column). ``origin`` is the
LPS position in mm of the centre of voxel ``[0, 0, 0]``; ``spacing`` is
``(x, y, z)`` in mm; ``direction`` is a 3x3 matrix whose columns are the LPS
unit vectors of increasing x, y and z index (identity for an axial HFS CT).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from igrt.errors import GeometryError


def _as3(values, name: str) -> tuple[float, float, float]:
    arr = np.asarray(values, dtype=float).reshape(-1)
    if arr.shape != (3,) or not np.all(np.isfinite(arr)):
        raise GeometryError(f"{name} must be three finite numbers, got {values!r}")
    return (float(arr[0]), float(arr[1]), float(arr[2]))


@dataclass(frozen=True, eq=False)
class Volume:
    """A 3D image: ``array[z, y, x]`` plus its position in patient space (LPS, mm)."""

    array: np.ndarray
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    direction: np.ndarray = field(default_factory=lambda: np.eye(3))

    def __post_init__(self) -> None:
        arr = np.asarray(self.array)
        if arr.ndim != 3:
            raise GeometryError(f"a Volume needs a 3D array [z, y, x], got shape {arr.shape}")
        object.__setattr__(self, "array", arr)
        object.__setattr__(self, "origin", _as3(self.origin, "origin"))
        spacing = _as3(self.spacing, "spacing")
        if min(spacing) <= 0:
            raise GeometryError(f"voxel spacing must be positive (mm), got {spacing}")
        object.__setattr__(self, "spacing", spacing)
        d = np.asarray(self.direction, dtype=float).reshape(3, 3)
        if not np.allclose(d.T @ d, np.eye(3), atol=1e-5):
            raise GeometryError("direction must be an orthonormal 3x3 matrix (columns = index axes in LPS)")
        object.__setattr__(self, "direction", d)

    # --- grid facts -------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int, int]:
        """Array shape (nz, ny, nx)."""
        return tuple(int(s) for s in self.array.shape)  # type: ignore[return-value]

    @property
    def size_xyz(self) -> tuple[int, int, int]:
        """Grid size in (x, y, z) order, as ITK/SimpleITK report it."""
        nz, ny, nx = self.shape
        return (nx, ny, nz)

    @property
    def index_to_world(self) -> np.ndarray:
        """4x4 matrix mapping homogeneous (i, j, k, 1) = (x, y, z index) to LPS mm."""
        m = np.eye(4)
        m[:3, :3] = self.direction @ np.diag(self.spacing)
        m[:3, 3] = self.origin
        return m

    @property
    def world_to_index(self) -> np.ndarray:
        """4x4 matrix mapping LPS mm to continuous (i, j, k) = (x, y, z) index."""
        m = np.eye(4)
        inv = np.diag(1.0 / np.asarray(self.spacing)) @ self.direction.T
        m[:3, :3] = inv
        m[:3, 3] = -inv @ np.asarray(self.origin)
        return m

    def to_world(self, ijk) -> np.ndarray:
        """LPS mm of continuous indices given as (..., 3) in (x, y, z) index order."""
        ijk = np.asarray(ijk, dtype=float)
        return ijk @ (self.direction @ np.diag(self.spacing)).T + np.asarray(self.origin)

    def to_index(self, points) -> np.ndarray:
        """Continuous (x, y, z) indices of LPS points given as (..., 3)."""
        m = self.world_to_index
        return np.asarray(points, dtype=float) @ m[:3, :3].T + m[:3, 3]

    @property
    def centre(self) -> np.ndarray:
        """LPS mm of the geometric centre of the grid."""
        return self.to_world((np.asarray(self.size_xyz, dtype=float) - 1.0) / 2.0)

    @property
    def voxel_volume_mm3(self) -> float:
        return float(np.prod(self.spacing))

    def world_coordinates(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Broadcastable LPS coordinate arrays (x, y, z) of every voxel, each shaped to the array.

        Only valid for axis-aligned directions (diagonal ±1), which covers images
        the project itself creates; general directions use ``to_world``.
        """
        if not np.allclose(np.abs(self.direction), np.eye(3)):
            raise GeometryError("world_coordinates needs an axis-aligned direction matrix")
        nz, ny, nx = self.shape
        d = np.diag(self.direction)
        x = self.origin[0] + d[0] * self.spacing[0] * np.arange(nx)
        y = self.origin[1] + d[1] * self.spacing[1] * np.arange(ny)
        z = self.origin[2] + d[2] * self.spacing[2] * np.arange(nz)
        return x[None, None, :], y[None, :, None], z[:, None, None]

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(min, max) LPS corners of the voxel-centre box, in mm."""
        nx, ny, nz = self.size_xyz
        corners = np.array([[i, j, k] for i in (0, nx - 1) for j in (0, ny - 1) for k in (0, nz - 1)], float)
        w = self.to_world(corners)
        return w.min(axis=0), w.max(axis=0)

    def same_grid(self, other: "Volume", tol_mm: float = 1e-4) -> bool:
        """True when both volumes share shape, origin, spacing and direction."""
        return (
            self.shape == other.shape
            and np.allclose(self.origin, other.origin, atol=tol_mm)
            and np.allclose(self.spacing, other.spacing, atol=tol_mm)
            and np.allclose(self.direction, other.direction, atol=1e-6)
        )

    def with_array(self, array: np.ndarray) -> "Volume":
        """Same grid, new voxel values (shape must match)."""
        array = np.asarray(array)
        if array.shape != self.array.shape:
            raise GeometryError(f"array shape {array.shape} does not match the grid {self.array.shape}")
        return Volume(array, self.origin, self.spacing, self.direction)

    @classmethod
    def like(cls, other: "Volume", fill: float = 0.0, dtype=np.float32) -> "Volume":
        """A new volume on ``other``'s grid filled with ``fill``."""
        return cls(np.full(other.shape, fill, dtype=dtype), other.origin, other.spacing, other.direction)

    @classmethod
    def centred(cls, array: np.ndarray, spacing, centre=(0.0, 0.0, 0.0)) -> "Volume":
        """An axis-aligned volume whose grid centre sits at ``centre`` (LPS mm)."""
        array = np.asarray(array)
        spacing = _as3(spacing, "spacing")
        nz, ny, nx = array.shape
        half = (np.array([nx, ny, nz], float) - 1.0) / 2.0 * np.asarray(spacing)
        return cls(array, tuple(np.asarray(centre, float) - half), spacing)
