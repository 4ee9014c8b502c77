"""Resampling a `Volume` through a rigid transform onto another grid."""

from __future__ import annotations

import numpy as np

from igrt.errors import GeometryError
from igrt.geometry._kernels import affine_resample_linear, affine_resample_nearest
from igrt.geometry.transform import RigidTransform
from igrt.geometry.volume import Volume


def index_map(source: Volume, reference: Volume, transform: RigidTransform | None) -> np.ndarray:
    """3x4 matrix taking reference (x, y, z) indices to continuous source indices.

    A reference voxel at LPS point ``p`` samples the source at ``transform(p)``.
    """
    t = np.eye(4) if transform is None else transform.matrix
    return (source.world_to_index @ t @ reference.index_to_world)[:3, :]


def resample(
    source: Volume,
    reference: Volume,
    transform: RigidTransform | None = None,
    *,
    order: int = 1,
    fill: float = 0.0,
    dtype=np.float32,
) -> Volume:
    """Resample ``source`` onto ``reference``'s grid.

    Each output voxel at LPS point ``p`` takes the source value at
    ``transform(p)`` (identity when None): trilinear for ``order=1``, nearest
    neighbour for ``order=0`` (labels/masks). Points outside get ``fill``.
    So with a registration result T (planning -> daily), ``resample(daily,
    planning, T)`` brings the daily image onto the planning grid.
    """
    if order not in (0, 1):
        raise GeometryError(f"interpolation order must be 0 (nearest) or 1 (linear), got {order}")
    a = np.ascontiguousarray(index_map(source, reference, transform))
    if order == 1:
        src = np.ascontiguousarray(source.array, dtype=np.float32)
        out = np.empty(reference.shape, dtype=np.float32)
        affine_resample_linear(src, a, reference.shape, float(fill), out)
        out = out.astype(dtype, copy=False)
    else:
        src = np.ascontiguousarray(source.array)
        out = np.empty(reference.shape, dtype=src.dtype)
        affine_resample_nearest(src, a, reference.shape, src.dtype.type(fill), out)
    return Volume(out, reference.origin, reference.spacing, reference.direction)


def resample_to_grid(
    source: Volume,
    spacing,
    *,
    order: int = 1,
    fill: float = 0.0,
) -> Volume:
    """Resample ``source`` to a new spacing (mm) covering the same extent."""
    spacing = np.asarray(spacing, dtype=float)
    extent = (np.asarray(source.size_xyz) - 1) * np.asarray(source.spacing)
    size = np.maximum(1, np.floor(extent / spacing + 1e-6).astype(int) + 1)
    ref = Volume(np.zeros(size[::-1], dtype=np.uint8), source.origin, tuple(spacing), source.direction)
    return resample(source, ref, None, order=order, fill=fill)
