"""Implicit shapes painted into a label grid, evaluated only inside their bounding boxes.

Every shape is an `Implicit`: an LPS bounding box (mm) plus a function of
broadcastable world coordinates ``(x, y, z)`` returning a boolean mask. The
`Grid` gives the coordinates of any sub-box of an axis-aligned volume, so a
shape costs only the voxels of its box (this is what keeps a 256x256x128
build in seconds).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np

from igrt.geometry import Volume
from igrt.phantom.errors import PhantomError

Coords = tuple[np.ndarray, np.ndarray, np.ndarray]


@dataclass(frozen=True)
class Grid:
    """Axis-aligned sampling grid: per-axis voxel-centre coordinates in LPS mm (float32)."""

    x: np.ndarray  # (nx,)
    y: np.ndarray  # (ny,)
    z: np.ndarray  # (nz,)

    @classmethod
    def of(cls, volume: Volume) -> "Grid":
        if not np.allclose(volume.direction, np.eye(3)):
            raise PhantomError("phantom grids must have an identity direction matrix (axial, LPS-aligned)")
        x, y, z = volume.world_coordinates()
        return cls(x.ravel().astype(np.float32), y.ravel().astype(np.float32), z.ravel().astype(np.float32))

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.z.size, self.y.size, self.x.size)

    def slices(self, lo, hi) -> tuple[slice, slice, slice] | None:
        """Index slices (z, y, x) of the voxels whose centres lie in the box [lo, hi] (mm); None if empty."""
        out = []
        for axis, a in zip((2, 1, 0), (self.z, self.y, self.x)):
            i0 = int(np.searchsorted(a, lo[axis], side="left"))
            i1 = int(np.searchsorted(a, hi[axis], side="right"))
            if i1 <= i0:
                return None
            out.append(slice(i0, i1))
        return tuple(out)  # type: ignore[return-value]

    def coords(self, sl: tuple[slice, slice, slice]) -> Coords:
        """Broadcastable (x, y, z) coordinates of a sub-box."""
        return self.x[sl[2]][None, None, :], self.y[sl[1]][None, :, None], self.z[sl[0]][:, None, None]


@dataclass(frozen=True)
class Implicit:
    """A solid: bounding box (lo, hi) in LPS mm and an inside-test on broadcast coordinates."""

    lo: np.ndarray
    hi: np.ndarray
    inside: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def paint(labels: np.ndarray, grid: Grid, shape: Implicit, value: int, only: Iterable[int] | None = None) -> None:
    """Set ``labels`` to ``value`` inside ``shape``; with ``only``, overwrite only those label values."""
    sl = grid.slices(shape.lo, shape.hi)
    if sl is None:
        return
    x, y, z = grid.coords(sl)
    m = np.broadcast_to(shape.inside(x, y, z), labels[sl].shape)
    sub = labels[sl]
    if only is not None:
        m = m & np.isin(sub, np.fromiter(only, dtype=labels.dtype))
    sub[m] = value


# --- primitives -------------------------------------------------------------


def ellipsoid(centre, semi_axes, exponent: float = 2.0, rotation: np.ndarray | None = None) -> Implicit:
    """Superellipsoid ``sum |u_i / a_i|^e <= 1`` with ``u = R^T (p - c)`` (R columns = body axes in LPS)."""
    c = np.asarray(centre, dtype=np.float32)
    a = np.asarray(semi_axes, dtype=np.float32)
    if np.any(a <= 0):
        raise PhantomError(f"ellipsoid semi-axes must be positive (mm), got {semi_axes}")
    r = None if rotation is None else np.asarray(rotation, dtype=np.float32)
    half = a if r is None else np.abs(r) @ a  # box of the rotated bounding box (safe for e >= 2)
    e = float(exponent)

    def inside(x, y, z):
        dx, dy, dz = x - c[0], y - c[1], z - c[2]
        if r is not None:
            dx, dy, dz = (
                r[0, 0] * dx + r[1, 0] * dy + r[2, 0] * dz,
                r[0, 1] * dx + r[1, 1] * dy + r[2, 1] * dz,
                r[0, 2] * dx + r[1, 2] * dy + r[2, 2] * dz,
            )
        if e == 2.0:
            return (dx / a[0]) ** 2 + (dy / a[1]) ** 2 + (dz / a[2]) ** 2 <= 1.0
        return np.abs(dx / a[0]) ** e + np.abs(dy / a[1]) ** e + np.abs(dz / a[2]) ** e <= 1.0

    return Implicit(c - half, c + half, inside)


def capsule(p0, p1, r0: float, r1: float | None = None) -> Implicit:
    """Segment p0-p1 swept by a sphere whose radius goes linearly from r0 to r1 (mm)."""
    a = np.asarray(p0, dtype=np.float32)
    b = np.asarray(p1, dtype=np.float32)
    r1 = r0 if r1 is None else r1
    d = b - a
    dd = float(d @ d) or 1e-12
    rmax = max(r0, r1)

    def inside(x, y, z):
        t = ((x - a[0]) * d[0] + (y - a[1]) * d[1] + (z - a[2]) * d[2]) / dd
        t = np.clip(t, 0.0, 1.0)
        qx, qy, qz = x - (a[0] + t * d[0]), y - (a[1] + t * d[1]), z - (a[2] + t * d[2])
        rad = r0 + (r1 - r0) * t
        return qx * qx + qy * qy + qz * qz <= rad * rad

    return Implicit(np.minimum(a, b) - rmax, np.maximum(a, b) + rmax, inside)


def tube(points, radii) -> list[Implicit]:
    """A polyline tube as a list of capsules (paint each)."""
    pts = np.asarray(points, dtype=float)
    rad = np.broadcast_to(np.asarray(radii, dtype=float), (len(pts),))
    return [capsule(pts[i], pts[i + 1], rad[i], rad[i + 1]) for i in range(len(pts) - 1)]


def smoothstep(t: np.ndarray) -> np.ndarray:
    """C1 ramp: 0 for t <= 0, 1 for t >= 1."""
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def soft_ellipsoid_weight(x, y, z, centre, semi_axes, falloff_mm: float) -> np.ndarray:
    """1 inside an ellipsoid, falling smoothly to 0 at ``falloff_mm`` outside (radial distance estimate)."""
    c = np.asarray(centre, dtype=float)
    a = np.asarray(semi_axes, dtype=float)
    dx, dy, dz = x - c[0], y - c[1], z - c[2]
    rho = np.sqrt((dx / a[0]) ** 2 + (dy / a[1]) ** 2 + (dz / a[2]) ** 2)
    length = np.sqrt(dx * dx + dy * dy + dz * dz)
    dist = length * (1.0 - 1.0 / np.maximum(rho, 1e-9))  # distance to the surface along the ray from the centre
    return 1.0 - smoothstep(dist / falloff_mm)
