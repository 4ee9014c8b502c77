"""Multi-resolution image pyramid: binomial smoothing + factor-2 decimation (numba)."""

from __future__ import annotations

import numpy as np

from igrt.geometry import Volume
from igrt.registration._kernels import downsample


def halve(volume: Volume, axes: tuple[bool, bool, bool] | None = None) -> Volume:
    """Smooth and decimate by 2 along the chosen (x, y, z) axes (default: the finest ones).

    An axis is halved when its spacing is within 1.5x of the finest spacing, so
    thick-slice images first become near-isotropic. Axes with fewer than 8
    voxels are only smoothed. The output grid keeps the physical extent: a new
    voxel i sits at input index 2 i + 0.5.
    """
    sp = np.asarray(volume.spacing)
    if axes is None:
        axes = tuple(bool(s <= 1.5 * sp.min()) for s in sp)  # type: ignore[assignment]
    size = np.asarray(volume.size_xyz)
    f = [2 if (ax and n >= 8) else 1 for ax, n in zip(axes, size)]
    arr = np.ascontiguousarray(volume.array, dtype=np.float32)
    out = downsample(arr, f[2], f[1], f[0])
    shift_idx = np.array([0.5 if fi == 2 else 0.0 for fi in f])
    origin = volume.to_world(shift_idx)
    return Volume(out, tuple(origin), tuple(sp * np.asarray(f)), volume.direction)


def build_pyramid(volume: Volume, n_levels: int) -> list[Volume]:
    """Levels coarsest first; the last level is the input (as float32)."""
    levels = [Volume(np.ascontiguousarray(volume.array, dtype=np.float32), volume.origin, volume.spacing, volume.direction)]
    for _ in range(n_levels - 1):
        levels.append(halve(levels[-1]))
    return levels[::-1]
