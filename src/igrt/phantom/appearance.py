"""CT numbers from a label map: tissue HU, texture, lung vessels, cortical bone, scanner blur and noise."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

from igrt.geometry import Volume, resample
from igrt.phantom import tissues as T
from igrt.phantom.config import PhantomConfig
from igrt.phantom._kernels import compose_hu
from igrt.phantom.noise import coarse_noise, smooth_noise


def _lut(attr: str, default: float = 0.0) -> np.ndarray:
    lut = np.full(256, default, dtype=np.float32)
    for t in T.TISSUES.values():
        v = getattr(t, attr)
        lut[t.label] = default if v is None else v
    return lut


def cortical_shell(labels: np.ndarray, spacing_xyz) -> np.ndarray:
    """Boolean mask of the outer shell of every bone label (thickness from its `Tissue`)."""
    out = np.zeros(labels.shape, dtype=bool)
    for lab in T.BONE_LABELS:
        tissue = T.TISSUES[lab]
        m = labels == lab
        if not m.any():
            continue
        idx = [np.nonzero(m.any(axis=tuple(a for a in range(3) if a != ax)))[0] for ax in range(3)]
        sl = tuple(slice(max(int(i.min()) - 1, 0), int(i.max()) + 2) for i in idx)
        sub = m[sl]
        er = sub.copy()
        for ax, sp in zip((2, 1, 0), spacing_xyz):  # array axis for x, y, z
            n = max(1, int(round(tissue.cortical_mm / sp)))
            for _ in range(n):
                prev = er.copy()
                lo = [slice(None)] * 3
                hi = [slice(None)] * 3
                lo[ax], hi[ax] = slice(1, None), slice(None, -1)
                er[tuple(lo)] &= prev[tuple(hi)]
                er[tuple(hi)] &= prev[tuple(lo)]
                edge = [slice(None)] * 3
                edge[ax] = 0
                er[tuple(edge)] = False
                edge[ax] = -1
                er[tuple(edge)] = False
        out[sl] |= sub & ~er
    return out


def compose_hu_reference(labels: np.ndarray, grid: Volume, coarse: Volume, fine: Volume, texture_scale: float = 1.0) -> np.ndarray:
    """numpy reference of the `compose_hu` kernel (tests): LUT HU plus per-tissue scaled textures."""
    c = resample(coarse, grid, None, order=1, fill=0.0).array
    f = resample(fine, grid, None, order=1, fill=0.0).array
    return _lut("hu")[labels] + _lut("coarse_sd")[labels] * texture_scale * c + _lut("fine_sd")[labels] * texture_scale * f


def synthesize_ct(labels: np.ndarray, grid: Volume, cfg: PhantomConfig, rng: np.random.Generator) -> np.ndarray:
    """HU array (float32, [z, y, x]) for ``labels`` on ``grid``."""
    ts = np.float32(cfg.texture_scale)
    coarse = coarse_noise(grid, 16.0, rng)
    fine = coarse_noise(grid, 5.0, rng)
    hu = np.empty(labels.shape, np.float32)
    fine_full = np.empty(labels.shape, np.float32)
    compose_hu(
        np.ascontiguousarray(labels), _lut("hu"), _lut("coarse_sd") * ts, _lut("fine_sd") * ts,
        coarse.array, np.ascontiguousarray((coarse.world_to_index @ grid.index_to_world)[:3]),
        fine.array, np.ascontiguousarray((fine.world_to_index @ grid.index_to_world)[:3]), fine_full, hu,
    )
    fine = fine_full
    # lung vessels: the intersection of two random zero level sets makes branching-looking tubes
    lung = (labels == T.LUNG_R) | (labels == T.LUNG_L)
    if cfg.vessel_density > 0 and lung.any():
        idx = [np.nonzero(lung.any(axis=tuple(a for a in range(3) if a != ax)))[0] for ax in range(3)]
        sl = tuple(slice(int(i.min()), int(i.max()) + 1) for i in idx)
        n1 = smooth_noise(grid, 22.0, rng, sub=sl)
        n2 = smooth_noise(grid, 22.0, rng, sub=sl)
        eps = np.float32(0.13 * np.sqrt(cfg.vessel_density))
        strength = np.exp(-(n1 * n1 + n2 * n2) / (2.0 * eps * eps))
        sub = hu[sl]
        sub[lung[sl]] += (870.0 * strength)[lung[sl]]
    # cortical bone shell
    shell = cortical_shell(labels, grid.spacing)
    hu[shell] = _lut("cortical_hu")[labels[shell]] + 60.0 * fine[shell]
    del fine
    if cfg.psf_sigma_mm > 0:
        sigma = [cfg.psf_sigma_mm / sp for sp in grid.spacing[::-1]]
        hu = gaussian_filter(hu, sigma=sigma, truncate=2.5, mode="nearest")
    if cfg.noise_hu > 0:
        hu += rng.standard_normal(hu.shape, dtype=np.float32) * np.float32(cfg.noise_hu)
    np.clip(hu, -1024.0, 3071.0, out=hu)
    return hu
