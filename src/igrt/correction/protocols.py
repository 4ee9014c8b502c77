"""Setup correction protocols as pure functions of the errors measured so far.

Every protocol function takes ``measured_mm``: the setup errors (LPS mm)
measured in the fractions given so far, shape ``(..., k, 3)`` (any leading
patient dimensions; ``k`` fractions, first fraction first). A row of NaN
means the fraction was not imaged. The errors are *uncorrected*: the
patient's position error as set up from the skin marks, before any
protocol correction (a measurement taken with a correction ``c`` in place
shows ``e + c``; pass ``e = measured - c``, see `uncorrected_error`).

Each returns a `ProtocolStep` for the next fraction: the correction
``correction_mm`` (LPS mm, the shift applied to the patient, so the error
left is ``e + correction``; it is minus the estimated systematic error),
whether to image that fraction, and for the online protocol whether the
image of that fraction corrects it before treatment.

Protocols:

* `online`: image and correct every fraction (optionally only beyond an action level).
* `nal`: No Action Level (de Boer & Heijmen 2001, IJROBP 50:1350): image the
  first ``n`` fractions, then correct every later fraction by minus their mean.
* `enal`: extended NAL (de Boer & Heijmen 2007, IJROBP 67:1586): NAL, then
  one check image per week (every ``check_interval`` fractions). Each check
  joins the running average (the correction keeps improving); if the running
  mean of the residuals seen at the checks since the last (re)correction
  leaves ``threshold_mm`` on any axis (a drift or a gross error), the
  protocol starts a fresh NAL block: the triggering check plus the next
  ``n - 1`` fractions are imaged and the correction becomes minus their mean.
* `sal`: shrinking action level (Bel et al. 1993, Radiother Oncol 29:253):
  image every fraction; after ``k`` images since the last correction, if the
  length of their mean residual exceeds ``alpha_mm / sqrt(k)``, correct by it
  and start counting again; stop imaging after ``n_max`` images without action.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from igrt.correction.errors import CorrectionError


@dataclass(frozen=True, eq=False)
class ProtocolStep:
    """What a protocol asks for at the next fraction (shapes follow the leading patient dims)."""

    correction_mm: np.ndarray  # (..., 3) LPS shift applied before treatment; residual = error + correction
    image_next: np.ndarray  # (...,) bool: image the next fraction
    online: bool  # True: after imaging the next fraction, also correct it by minus its measurement
    protocol: str
    description: str


def _check(measured_mm) -> np.ndarray:
    m = np.asarray(measured_mm, dtype=float)
    if m.ndim < 2 or m.shape[-1] != 3:
        raise CorrectionError(f"measured errors must have shape (..., fractions, 3) in mm, got {m.shape}")
    if np.any(np.isinf(m)):
        raise CorrectionError("measured errors contain infinities; use NaN rows for fractions that were not imaged")
    return m


def uncorrected_error(measured_with_correction_mm, applied_correction_mm) -> np.ndarray:
    """The setup error without the protocol's correction: ``measured - applied`` (LPS mm)."""
    return np.asarray(measured_with_correction_mm, dtype=float) - np.asarray(applied_correction_mm, dtype=float)


def online_correction(measured_today_mm, action_level_mm: float = 0.0) -> np.ndarray:
    """The online correction for today's measured error: minus it, or 0 within the action level (length)."""
    e = np.asarray(measured_today_mm, dtype=float)
    big = np.linalg.norm(np.nan_to_num(e), axis=-1, keepdims=True) > action_level_mm
    return np.where(big & np.isfinite(e), -e, 0.0)


def online(measured_mm, action_level_mm: float = 0.0) -> ProtocolStep:
    """Online protocol: image every fraction and correct it by its own measurement (see `online_correction`)."""
    m = _check(measured_mm)
    lead = m.shape[:-2]
    return ProtocolStep(
        np.zeros(lead + (3,)),
        np.ones(lead, dtype=bool),
        True,
        "online",
        f"image and correct every fraction (action level {action_level_mm:.1f} mm)",
    )


def nal(measured_mm, n: int = 3) -> ProtocolStep:
    """No Action Level: after ``n`` imaged fractions, correct by minus their mean; before that, image."""
    if n < 1:
        raise CorrectionError(f"NAL needs n >= 1 imaged fractions, got {n}")
    m = _check(measured_mm)
    imaged = np.all(np.isfinite(m), axis=-1)  # (..., k)
    order = np.cumsum(imaged, axis=-1)  # how many imaged so far, per fraction
    use = imaged & (order <= n)
    count = use.sum(axis=-1)  # (...,)
    total = np.where(use[..., None], np.nan_to_num(m), 0.0).sum(axis=-2)
    done = count >= n
    corr = np.where(done[..., None], -total / np.maximum(count, 1)[..., None], 0.0)
    return ProtocolStep(corr, ~done, False, "NAL", f"No Action Level: correct by minus the mean of the first {n} imaged fractions")


def enal(measured_mm, n: int = 3, check_interval: int = 5, threshold_mm: float = 3.0) -> ProtocolStep:
    """Extended NAL: NAL + weekly checks with continued averaging and re-NAL on drift (module docstring)."""
    if n < 1 or check_interval < 1 or threshold_mm <= 0:
        raise CorrectionError("eNAL needs n >= 1, check_interval >= 1 and threshold_mm > 0")
    m = _check(measured_mm)
    lead, k_total = m.shape[:-2], m.shape[-2]
    corr = np.zeros(lead + (3,))
    block_sum = np.zeros(lead + (3,))
    block_n = np.zeros(lead)
    collecting = np.ones(lead, dtype=bool)  # in a NAL block (initial or after a drift)
    check_sum = np.zeros(lead + (3,))
    check_n = np.zeros(lead)
    for k in range(k_total):  # replay the course so far; vectorised over patients
        e = m[..., k, :]
        seen = np.all(np.isfinite(e), axis=-1)
        e0 = np.nan_to_num(e)
        # NAL block: accumulate; when complete, correct and start checking.
        in_block = seen & collecting
        block_sum = block_sum + np.where(in_block[..., None], e0, 0.0)
        block_n = block_n + in_block
        complete = in_block & (block_n >= n)
        corr = np.where(complete[..., None], -block_sum / np.maximum(block_n, 1)[..., None], corr)
        collecting = collecting & ~complete
        check_sum = np.where(complete[..., None], 0.0, check_sum)
        check_n = np.where(complete, 0, check_n)
        # Weekly check: residual with the correction in force.
        is_check = seen & ~in_block
        resid = e0 + corr
        check_sum = check_sum + np.where(is_check[..., None], resid, 0.0)
        check_n = check_n + is_check
        drift = np.any(np.abs(check_sum / np.maximum(check_n, 1)[..., None]) > threshold_mm, axis=-1) & is_check
        keep = is_check & ~drift
        # No drift: the check joins the running average.
        block_sum = block_sum + np.where(keep[..., None], e0, 0.0)
        block_n = block_n + keep
        corr = np.where(keep[..., None], -block_sum / np.maximum(block_n, 1)[..., None], corr)
        # Drift: a fresh NAL block starts with this measurement.
        block_sum = np.where(drift[..., None], e0, block_sum)
        block_n = np.where(drift, 1, block_n)
        collecting = collecting | drift
        restart_done = drift & (block_n >= n)  # n == 1: the block is already complete
        corr = np.where(restart_done[..., None], -block_sum, corr)
        collecting = collecting & ~restart_done
        check_sum = np.where(drift[..., None], 0.0, check_sum)
        check_n = np.where(drift, 0, check_n)
    next_is_check = k_total >= n and k_total % check_interval == 0
    image_next = collecting | next_is_check
    return ProtocolStep(
        corr,
        np.asarray(image_next, dtype=bool) & np.ones(lead, dtype=bool),
        False,
        "eNAL",
        f"extended NAL: NAL over {n} fractions, a check every {check_interval} fractions joining the average, "
        f"fresh NAL when the mean check residual exceeds {threshold_mm:.1f} mm on an axis",
    )


def sal(measured_mm, alpha_mm: float = 6.0, n_max: int = 4) -> ProtocolStep:
    """Shrinking action level (Bel et al. 1993): correct when |mean residual| > alpha/sqrt(k)."""
    if alpha_mm <= 0 or n_max < 1:
        raise CorrectionError("SAL needs alpha_mm > 0 and n_max >= 1")
    m = _check(measured_mm)
    lead, k_total = m.shape[:-2], m.shape[-2]
    corr = np.zeros(lead + (3,))
    s = np.zeros(lead + (3,))
    cnt = np.zeros(lead)
    stopped = np.zeros(lead, dtype=bool)
    for k in range(k_total):
        e = m[..., k, :]
        seen = np.all(np.isfinite(e), axis=-1) & ~stopped
        s = s + np.where(seen[..., None], np.nan_to_num(e) + corr, 0.0)
        cnt = cnt + seen
        mean = s / np.maximum(cnt, 1)[..., None]
        act = seen & (np.linalg.norm(mean, axis=-1) > alpha_mm / np.sqrt(np.maximum(cnt, 1)))
        corr = np.where(act[..., None], corr - mean, corr)
        s = np.where(act[..., None], 0.0, s)
        cnt = np.where(act, 0, cnt)
        stopped = stopped | (seen & ~act & (cnt >= n_max))
    return ProtocolStep(
        corr,
        ~stopped,
        False,
        "SAL",
        f"shrinking action level: alpha {alpha_mm:.1f} mm / sqrt(k), stop after {n_max} images without action",
    )


@dataclass(frozen=True, eq=False)
class SimulatedCourse:
    """A protocol replayed on known errors: what each fraction got (shapes (P, F, ...))."""

    true_error_mm: np.ndarray  # (P, F, 3) uncorrected setup error
    correction_mm: np.ndarray  # (P, F, 3) total correction applied at each fraction
    residual_mm: np.ndarray  # (P, F, 3) error left at treatment
    imaged: np.ndarray  # (P, F) bool
    online_corrected: np.ndarray  # (P, F) bool: the fraction was corrected by its own image

    def residual_systematic_mm(self, random_mm, first_fraction: int = 0) -> np.ndarray:
        """Per-patient systematic error left, (P, 3): the mean residual without the
        fraction-to-fraction random error ``random_mm`` (P, F, 3), which no offline
        correction can remove and an online correction removes with the rest."""
        r = np.asarray(random_mm, dtype=float)
        sys_part = self.residual_mm - np.where(self.online_corrected[..., None], 0.0, r)
        return sys_part[:, first_fraction:].mean(axis=1)


def simulate_protocol(
    true_error_mm,
    protocol: Callable[[np.ndarray], ProtocolStep],
    measurement_sd_mm: float = 0.0,
    rng: np.random.Generator | None = None,
) -> SimulatedCourse:
    """Run ``protocol`` fraction by fraction on known errors (P, F, 3), vectorised over patients.

    The measurement of an imaged fraction is the true error plus Gaussian
    noise of ``measurement_sd_mm`` per axis (registration error).
    """
    e = np.asarray(true_error_mm, dtype=float)
    if e.ndim != 3 or e.shape[-1] != 3:
        raise CorrectionError(f"true errors must have shape (patients, fractions, 3), got {e.shape}")
    rng = rng or np.random.default_rng(0)
    p, f, _ = e.shape
    measured = np.full_like(e, np.nan)
    corr = np.zeros_like(e)
    imaged = np.zeros((p, f), dtype=bool)
    online_done = np.zeros((p, f), dtype=bool)
    for k in range(f):
        step = protocol(measured[:, :k])
        img = np.broadcast_to(step.image_next, (p,))
        meas = e[:, k] + rng.normal(0.0, measurement_sd_mm, (p, 3)) if measurement_sd_mm > 0 else e[:, k]
        measured[:, k] = np.where(img[:, None], meas, np.nan)
        imaged[:, k] = img
        c = np.broadcast_to(step.correction_mm, (p, 3)).copy()
        if step.online:
            c = c + np.where(img[:, None], online_correction(meas + c), 0.0)
            online_done[:, k] = img
        corr[:, k] = c
    return SimulatedCourse(e, corr, e + corr, imaged, online_done)


def residual_systematic_sd(course: SimulatedCourse, random_mm, first_fraction: int = 0) -> np.ndarray:
    """Population Sigma_res per axis (ddof=1): SD over patients of the systematic error left
    over fractions >= first_fraction (see `SimulatedCourse.residual_systematic_mm`)."""
    return course.residual_systematic_mm(random_mm, first_fraction).std(axis=0, ddof=1)
