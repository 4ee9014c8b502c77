"""Correction protocols: hand-worked sequences and simulated populations (Sigma = sigma = 3 mm)."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest

from igrt.correction.errors import CorrectionError
from igrt.correction.protocols import (
    enal,
    nal,
    online,
    online_correction,
    residual_systematic_sd,
    sal,
    simulate_protocol,
    uncorrected_error,
)

NAN = [np.nan] * 3


def test_nal_hand_worked():
    m = np.array([[1.0, -2.0, 3.0], [3.0, 0.0, 1.0]])
    s = nal(m, n=3)
    assert np.allclose(s.correction_mm, 0.0) and s.image_next  # still collecting
    m = np.vstack([m, [2.0, -4.0, 2.0]])  # mean (2, -2, 2)
    s = nal(m, n=3)
    assert np.allclose(s.correction_mm, [-2.0, 2.0, -2.0]) and not s.image_next
    # Later (unused) images and gaps do not change the NAL estimate.
    s = nal(np.vstack([[NAN], m[:1], [NAN], m[1:], [[9.0, 9.0, 9.0]]]).reshape(-1, 3), n=3)
    assert np.allclose(s.correction_mm, [-2.0, 2.0, -2.0])


def test_online_hand_worked():
    s = online(np.zeros((0, 3)))
    assert s.online and s.image_next and np.allclose(s.correction_mm, 0)
    assert np.allclose(online_correction([2.0, -1.0, 0.5]), [-2.0, 1.0, -0.5])
    assert np.allclose(online_correction([0.6, 0.0, 0.0], action_level_mm=1.0), 0.0)  # within the action level
    assert np.allclose(uncorrected_error([1.0, 0.0, 0.0], [-2.0, 0.0, 0.0]), [3.0, 0.0, 0.0])


def test_enal_hand_worked():
    # n = 3, checks every 5 fractions (0-based fractions 5, 10, ...), threshold 2 mm.
    e = np.full((11, 3), np.nan)
    e[0:3] = [[2.0, 0, 0], [4.0, 0, 0], [3.0, 0, 0]]  # NAL: correction -3 mm in x
    p = partial(enal, n=3, check_interval=5, threshold_mm=2.0)
    s = p(e[:3])
    assert np.allclose(s.correction_mm, [-3.0, 0, 0])
    assert not s.image_next  # fraction 3 is not a check
    assert p(e[:5]).image_next  # fraction 5 is the weekly check
    # Check at fraction 5 measures 4 mm: residual +1 mm < 2 mm -> joins the
    # average: (2 + 4 + 3 + 4) / 4 = 3.25 -> correction -3.25.
    e[5] = [4.0, 0, 0]
    s = p(e[:6])
    assert np.allclose(s.correction_mm, [-3.25, 0, 0]) and not s.image_next
    # Check at fraction 10 measures 9 mm: residual 5.75; running mean of check
    # residuals (1 + 5.75) / 2 = 3.375 > 2 -> drift: fresh NAL block starting
    # with this image; the next two fractions are imaged.
    e[10] = [9.0, 0, 0]
    s = p(e[:11])
    assert np.allclose(s.correction_mm, [-3.25, 0, 0]) and s.image_next
    e2 = np.vstack([e, [[8.0, 1.0, 0], [10.0, -1.0, 0]]])  # block (9, 8, 10) -> mean 9; y (0, 1, -1) -> 0
    s = p(e2)
    assert np.allclose(s.correction_mm, [-9.0, 0.0, 0.0]) and not s.image_next


def test_sal_hand_worked():
    # alpha 6 mm, n_max 2. Image 1: |(5,0,0)| = 5 < 6/sqrt(1) -> no action.
    p = partial(sal, alpha_mm=6.0, n_max=2)
    s = p(np.array([[5.0, 0, 0]]))
    assert np.allclose(s.correction_mm, 0) and s.image_next
    # Image 2: mean (5.5, 0, 0), 5.5 > 6/sqrt(2) = 4.24 -> correct by -5.5, restart.
    s = p(np.array([[5.0, 0, 0], [6.0, 0, 0]]))
    assert np.allclose(s.correction_mm, [-5.5, 0, 0]) and s.image_next
    # Images 3, 4 residuals (0.5, 0, 0), (-0.5, 0, 0): mean 0 -> n_max reached, stop imaging.
    s = p(np.array([[5.0, 0, 0], [6.0, 0, 0], [6.0, 0, 0], [5.0, 0, 0]]))
    assert np.allclose(s.correction_mm, [-5.5, 0, 0]) and not s.image_next


def test_bad_input():
    with pytest.raises(CorrectionError, match="shape"):
        nal(np.zeros(3))
    with pytest.raises(CorrectionError, match="n >= 1"):
        nal(np.zeros((2, 3)), n=0)
    with pytest.raises(CorrectionError, match="infinities"):
        enal(np.array([[np.inf, 0, 0]]))


P, F, SIGMA = 2000, 30, 3.0


def _population(slope_sd_mm_per_fraction: float, seed: int = 7):
    rng = np.random.default_rng(seed)
    systematic = rng.normal(0, SIGMA, (P, 1, 3))
    random = rng.normal(0, SIGMA, (P, F, 3))
    trend = rng.normal(0, slope_sd_mm_per_fraction, (P, 1, 3)) * np.arange(F)[None, :, None]
    return systematic + trend + random, random


def _sigma_res(protocol, errors, random, first=3):
    course = simulate_protocol(errors, protocol)
    return float(residual_systematic_sd(course, random, first).mean()), course


def test_population_nal_residual_is_sigma_over_sqrt_n():
    errors, random = _population(0.0)
    # Before correction Sigma is 3 mm (6000 axis samples: SE of an SD ~ 1 %).
    assert residual_systematic_sd(simulate_protocol(errors, partial(nal, n=10**6)), random, 3).mean() == pytest.approx(3.0, rel=0.04)
    for n in (1, 3, 5):
        s_res, course = _sigma_res(partial(nal, n=n), errors, random, first=n)
        assert s_res == pytest.approx(SIGMA / np.sqrt(n), rel=0.04), n
        assert course.imaged.sum(axis=1).max() == n
    s_on, course = _sigma_res(online, errors, random)
    assert s_on < 1e-9 and course.imaged.all()


def test_population_enal_holds_with_time_trend():
    errors0, random0 = _population(0.0)
    errors, random = _population(0.2, seed=8)  # trend SD 0.2 mm/fraction: ~6 mm over the course
    nal0, _ = _sigma_res(partial(nal, n=3), errors0, random0)
    nal_t, _ = _sigma_res(partial(nal, n=3), errors, random)
    enal0, c0 = _sigma_res(partial(enal, n=3), errors0, random0)
    enal_t, ct = _sigma_res(partial(enal, n=3), errors, random)
    assert nal0 == pytest.approx(SIGMA / np.sqrt(3), rel=0.04)
    assert nal_t > 1.6 * nal0  # NAL degrades under a trend
    assert enal_t <= SIGMA / np.sqrt(3)  # eNAL holds Sigma_res at or below sigma/sqrt(N)
    assert enal0 < nal0  # continued averaging improves on NAL without a trend
    assert 8 <= ct.imaged.sum(axis=1).mean() < F  # fewer images than online
    sal_t, _ = _sigma_res(sal, errors, random)
    assert sal_t < SIGMA  # SAL reduces the systematic error too


def test_population_from_phantom_course_truth():
    # Setup errors drawn by the phantom's population model (Sigma = sigma = 3 mm).
    course = pytest.importorskip("igrt.phantom.course")
    pop = course.sample_population(2000, 20, course.SetupErrorModel((3.0,) * 3, (3.0,) * 3), seed=5)
    random = pop.random_translation_mm
    errors = pop.systematic_translation_mm[:, None, :] + random
    s_res, _ = _sigma_res(partial(nal, n=3), errors, random)
    assert s_res == pytest.approx(SIGMA / np.sqrt(3), rel=0.04)
