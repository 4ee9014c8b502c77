"""CT numbers from a label map: tissue HU, texture, lung vessels, cortical bone, scanner blur and noise."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

from igrt.geometry import Volume
from igrt.phantom import tissues as T
from igrt.phantom.config import PhantomConfig
from igrt.phantom.noise import smooth_noise


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


def synthesize_ct(labels: np.ndarray, grid: Volume, cfg: PhantomConfig, rng: np.random.Generator) -> np.ndarray:
    """HU array (float32, [z, y, x]) for ``labels`` on ``grid``."""
    hu = _lut("hu")[labels]
    ts = np.float32(cfg.texture_scale)
    coarse = smooth_noise(grid, 16.0, rng)
    fine = smooth_noise(grid, 5.0, rng)
    hu += (_lut("coarse_sd")[labels] * ts) * coarse
    hu += (_lut("fine_sd")[labels] * ts) * fine
    del coarse
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
