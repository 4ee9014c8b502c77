"""Painting shapes whose cross-section is fixed in-plane and varies only along z (spine, ribs).

The in-plane test runs once on the 2D (y, x) grid; the z test runs only on the
selected columns, so a rib cage costs a few per cent of the voxels.
"""

from __future__ import annotations

from typing import Callable, Iterable

import numpy as np

from igrt.phantom.shapes import Grid


def paint_columns(
    labels: np.ndarray,
    grid: Grid,
    plane_mask: np.ndarray,
    z_test: Callable[[np.ndarray, np.ndarray], np.ndarray],
    value: int,
    only: Iterable[int] | None = None,
) -> None:
    """Paint ``value`` where ``plane_mask[y, x]`` and ``z_test(z[:, None], columns)`` hold.

    ``z_test`` gets the slice coordinates (nz, 1) and the indices ``(j, i)`` of
    the selected columns as a tuple of 1D arrays, and returns (nz, ncol) booleans.
    """
    jj, ii = np.nonzero(plane_mask)
    if jj.size == 0:
        return
    m = z_test(grid.z[:, None], (jj, ii))
    sub = labels[:, jj, ii]
    if only is not None:
        m = m & np.isin(sub, np.fromiter(only, dtype=labels.dtype))
    sub[m] = value
    labels[:, jj, ii] = sub


def plane_coords(grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """2D (y, x) broadcast coordinates of the axial plane."""
    return grid.x[None, :], grid.y[:, None]
