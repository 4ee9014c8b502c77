"""Breathing motion: the Lujan cos^2n model with baseline drift and irregular cycles.

Lujan et al. 1999 (Med Phys 26:715): ``z(t) = z0 - b cos^(2n)(pi t / tau - phi)``.
igrt writes it per LPS axis as a displacement from the planning (end-exhale)
position::

    d(t) = A * a(t) * cos^(2n)(theta(t)) + drift * t
    theta(t) = pi t / tau - phi + 0.3 * irregularity * pi * P(t)

``A`` (``amplitude_mm``) is the signed displacement at end-inhale, so with no
irregularity the peak-to-peak excursion on each axis is exactly ``|A|``.
``a(t) = 1 + irregularity * Q(t)`` varies the cycle amplitude (relative SD
= irregularity) and P the cycle length (relative SD about a third of it); ``P`` and
``Q`` are smooth seeded random processes (sums of slow sinusoids, unit SD),
so irregular cycles are reproducible. Phase ``p`` in [0, 1) means
``theta = pi p``: phase 0 is end-inhale, phase 0.5 end-exhale.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from igrt.phantom.errors import PhantomError

_N_WAVES = 6


@dataclass(frozen=True)
class BreathingParams:
    """Breathing of one fraction (mm, s, rad)."""

    amplitude_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)
    period_s: float = 4.0
    n: int = 2
    phase_rad: float = 0.0
    drift_mm_per_s: tuple[float, float, float] = (0.0, 0.0, 0.0)
    irregularity: float = 0.0
    irregularity_seed: int = 0

    def __post_init__(self) -> None:
        if not self.period_s > 0:
            raise PhantomError(f"breathing period must be positive (s), got {self.period_s}")
        if int(self.n) < 1:
            raise PhantomError(f"Lujan exponent n must be >= 1, got {self.n}")
        if not 0.0 <= self.irregularity <= 0.3:
            raise PhantomError(f"breathing irregularity must be within 0..0.3, got {self.irregularity}")

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}


def _waves(seed: int, f_lo: float, f_hi: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng([int(seed), 99])
    return rng.uniform(f_lo, f_hi, _N_WAVES), rng.uniform(0.0, 2.0 * np.pi, _N_WAVES)


def _process(t: np.ndarray, freqs: np.ndarray, phases: np.ndarray) -> np.ndarray:
    """Unit-variance smooth random process: sqrt(2/K) * sum sin(2 pi f t + phase)."""
    return np.sqrt(2.0 / len(freqs)) * np.sin(2.0 * np.pi * freqs[None, :] * t[:, None] + phases[None, :]).sum(axis=1)


def breathing_phase_angle(params: BreathingParams, t_s) -> np.ndarray:
    """theta(t) in radians (monotone in t)."""
    t = np.atleast_1d(np.asarray(t_s, dtype=float))
    theta = np.pi * t / params.period_s - params.phase_rad
    if params.irregularity > 0:
        # slow phase wobble; its rate stays well below the mean rate, so theta keeps increasing
        f, ph = _waves(params.irregularity_seed, 0.1 / params.period_s, 0.25 / params.period_s)
        theta = theta + params.irregularity * 0.3 * np.pi * _process(t, f, ph)
    return theta


def breathing_displacement_mm(params: BreathingParams, t_s) -> np.ndarray:
    """(N, 3) breathing displacement in LPS mm at times ``t_s`` (s) relative to end-exhale."""
    t = np.atleast_1d(np.asarray(t_s, dtype=float))
    c = np.cos(breathing_phase_angle(params, t)) ** (2 * int(params.n))
    amp = np.ones_like(t)
    if params.irregularity > 0:
        f, ph = _waves(params.irregularity_seed + 1, 0.2 / params.period_s, 0.6 / params.period_s)
        amp = np.maximum(1.0 + params.irregularity * _process(t, f, ph), 0.0)
    a = np.asarray(params.amplitude_mm, float)
    return (amp * c)[:, None] * a[None, :] + t[:, None] * np.asarray(params.drift_mm_per_s, float)[None, :]


def displacement_at_phase_mm(params: BreathingParams, phase) -> np.ndarray:
    """(N, 3) displacement of a regular cycle at phase(s) in [0, 1) (0 = end-inhale, 0.5 = end-exhale)."""
    p = np.atleast_1d(np.asarray(phase, dtype=float))
    if np.any(~np.isfinite(p)):
        raise PhantomError("breathing phase must be finite (0 = end-inhale, 0.5 = end-exhale)")
    c = np.cos(np.pi * p) ** (2 * int(params.n))
    return c[:, None] * np.asarray(params.amplitude_mm, float)[None, :]
