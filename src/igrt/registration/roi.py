"""Regions of interest and match-mode weights for registration.

A `Roi` is a clip box in LPS mm (like the clip box of clinical IGRT systems),
optionally with a mask that restricts it further. Match modes turn the
planning CT into sample weights: ``all`` (every voxel of the ROI), ``bone``
(voxels above a bone threshold, dilated, so that edges of bone count) and
``soft`` (the soft-tissue target region: the ROI, bone excluded).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from igrt.geometry import Volume
from igrt.planning import Structure
from igrt.registration.errors import RegistrationError
from igrt.registration.pyramid import halve

MODES = ("all", "bone", "soft")


@dataclass(frozen=True, eq=False)
class Roi:
    """Clip box ``[lower_mm, upper_mm]`` (LPS) and an optional boolean mask Volume."""

    lower_mm: tuple[float, float, float]
    upper_mm: tuple[float, float, float]
    mask: Volume | None = None
    label: str = ""

    @property
    def centre_mm(self) -> np.ndarray:
        return (np.asarray(self.lower_mm) + np.asarray(self.upper_mm)) / 2.0

    def is_empty(self) -> bool:
        return bool(np.any(np.asarray(self.upper_mm) <= np.asarray(self.lower_mm)))


def roi_from_box(lower_mm, upper_mm, label: str = "box") -> Roi:
    lo = tuple(float(v) for v in lower_mm)
    hi = tuple(float(v) for v in upper_mm)
    return Roi(lo, hi, None, label)  # type: ignore[arg-type]


def roi_from_mask(mask: Volume, margin_mm: float = 0.0, label: str = "mask", clip_to_mask: bool = False) -> Roi:
    """Box around the non-zero voxels of ``mask`` grown by ``margin_mm``.

    An empty mask gives an empty ROI (the registration then fails with the reason);
    ``clip_to_mask`` keeps only mask voxels instead of the whole box.
    """
    arr = np.asarray(mask.array) > 0
    if not arr.any():
        return Roi((0.0, 0.0, 0.0), (0.0, 0.0, 0.0), None, label)
    k, j, i = np.nonzero(arr)
    corners = np.array([[i.min(), j.min(), k.min()], [i.max(), j.max(), k.max()]], float)
    # all 8 corners, so oblique grids give the right world box
    cc = np.array([[corners[a, 0], corners[b, 1], corners[c, 2]] for a in (0, 1) for b in (0, 1) for c in (0, 1)])
    w = mask.to_world(cc)
    half_vox = np.abs(mask.direction @ np.diag(mask.spacing)).sum(axis=1) / 2.0
    lo = w.min(axis=0) - half_vox - margin_mm
    hi = w.max(axis=0) + half_vox + margin_mm
    return Roi(tuple(lo), tuple(hi), mask if clip_to_mask else None, label)  # type: ignore[arg-type]


def roi_from_structure(structure: Structure, margin_mm: float = 10.0) -> Roi:
    """Clip box around a delineated structure (e.g. the PTV) with a margin in mm."""
    if structure.mask is None:
        raise RegistrationError(f"structure {structure.name!r} has no mask; cannot build an ROI from it")
    return roi_from_mask(structure.mask, margin_mm, label=f"{structure.name}+{margin_mm:g}mm")


def weight_map(
    planning: Volume,
    mode: str,
    *,
    bone_hu: float = 200.0,
    dilate_mm: float = 4.0,
    body_hu: float = -400.0,
    target_spacing_mm: float = 2.0,
) -> Volume | None:
    """Sample-weight volume (0..1) for a match mode on a coarse copy of the planning grid.

    ``all`` -> None (uniform weights). ``bone`` -> 1 on voxels with HU > ``bone_hu``
    dilated by ``dilate_mm``. ``soft`` -> 1 inside the body (HU > ``body_hu``)
    except bone (bone voxels excluded so that the target, not the skeleton, drives
    the match).
    """
    if mode not in MODES:
        raise RegistrationError(f"unknown match mode {mode!r}; use one of {', '.join(MODES)}")
    if mode == "all":
        return None
    vol = planning
    while min(vol.spacing) * 2 <= target_spacing_mm * 1.01 and min(vol.shape) >= 16:
        vol = halve(vol)
    arr = vol.array
    if mode == "bone":
        m = arr > bone_hu
        it = np.maximum(1, np.round(dilate_mm / np.asarray(vol.spacing[::-1]))).astype(int)
        m = ndimage.maximum_filter(m, size=tuple(2 * it + 1))
    else:
        m = (arr > body_hu) & ~ndimage.maximum_filter(arr > bone_hu, size=3)
    return vol.with_array(m.astype(np.float32))
