"""Helpers shared by the registration tests (imported by name: the test dir is on sys.path)."""

from __future__ import annotations

import numpy as np

from igrt.registration import synthetic as S


def make_daily(rng: np.random.Generator, setup_error, *, degrade: bool = True, shape=(60, 62, 66),
               spacing=(3.8, 3.9, 4.1)):
    """A CBCT-like daily image of the synthetic patient displaced by ``setup_error``."""
    grid = S.grid(shape, spacing, tuple(rng.uniform(-5, 5, 3)))
    img = S.render(grid, setup_error)
    if not degrade:
        return img
    return S.cbct_like(img, rng, noise_hu=rng.uniform(10, 40), blur_mm=rng.uniform(0.5, 2.0),
                       hu_scale=rng.uniform(0.9, 1.1), hu_offset=rng.uniform(-50, 50), cupping_hu=rng.uniform(0, 100))


def errors(result, truth, centre):
    """Per-axis (translation mm, rotation deg) error of a result against the true transform."""
    tt, rr = truth.params(centre)
    return np.asarray(result.translation_mm) - tt, np.asarray(result.rotation_deg) - np.asarray(rr)
