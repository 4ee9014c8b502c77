"""CTV-to-PTV margin recipes from population setup statistics (mm, per axis).

* van Herk et al. 2000 (IJROBP 47:1121): ``2.5 Sigma + 0.7 sigma``
  (90 % of patients get at least 95 % of the dose in the CTV).
* van Herk with the beam penumbra: ``2.5 Sigma + 1.64 (sqrt(sigma^2 + sigma_p^2) - sigma_p)``,
  ``sigma_p`` the SD of a Gaussian fitted to the penumbra (3.2 mm for lung
  tissue in the paper, the default here).
* Stroom et al. 1999 (IJROBP 43:905): ``2 Sigma + 0.7 sigma``.

Intrafraction motion adds in quadrature: ``sigma_total = sqrt(sigma^2 +
sigma_intra^2)`` (and ``Sigma_total = sqrt(Sigma^2 + Sigma_intra^2)`` when a
systematic intrafraction component, e.g. a mean drift, is given).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from igrt.analysis.population import CohortError, PopulationStats

DEFAULT_PENUMBRA_SIGMA_MM = 3.2


def _arr(v, name: str) -> np.ndarray:
    a = np.asarray(v, dtype=float)
    if np.any(~np.isfinite(a)) or np.any(a < 0):
        raise CohortError(f"{name} must be finite and >= 0 (mm), got {v}")
    return a


def van_herk_margin(Sigma_mm, sigma_mm) -> np.ndarray:
    """2.5 Sigma + 0.7 sigma (mm)."""
    return 2.5 * _arr(Sigma_mm, "Sigma") + 0.7 * _arr(sigma_mm, "sigma")


def van_herk_penumbra_margin(Sigma_mm, sigma_mm, sigma_p_mm: float = DEFAULT_PENUMBRA_SIGMA_MM) -> np.ndarray:
    """2.5 Sigma + 1.64 (sqrt(sigma^2 + sigma_p^2) - sigma_p) (mm)."""
    s = _arr(sigma_mm, "sigma")
    sp = float(_arr(sigma_p_mm, "sigma_p"))
    return 2.5 * _arr(Sigma_mm, "Sigma") + 1.64 * (np.sqrt(s**2 + sp**2) - sp)


def stroom_margin(Sigma_mm, sigma_mm) -> np.ndarray:
    """2 Sigma + 0.7 sigma (mm)."""
    return 2.0 * _arr(Sigma_mm, "Sigma") + 0.7 * _arr(sigma_mm, "sigma")


def combine_errors(Sigma_mm, sigma_mm, Sigma_intra_mm=0.0, sigma_intra_mm=0.0) -> tuple[np.ndarray, np.ndarray]:
    """Add intrafraction components in quadrature: (Sigma_total, sigma_total) in mm."""
    S = np.sqrt(_arr(Sigma_mm, "Sigma") ** 2 + _arr(Sigma_intra_mm, "Sigma_intra") ** 2)
    s = np.sqrt(_arr(sigma_mm, "sigma") ** 2 + _arr(sigma_intra_mm, "sigma_intra") ** 2)
    return S, s


@dataclass(frozen=True, eq=False)
class MarginReport:
    """Margins per axis (mm) from the (combined) Sigma and sigma."""

    Sigma_mm: np.ndarray
    sigma_mm: np.ndarray
    van_herk_mm: np.ndarray
    van_herk_penumbra_mm: np.ndarray
    stroom_mm: np.ndarray
    sigma_p_mm: float
    Sigma_intra_mm: np.ndarray
    sigma_intra_mm: np.ndarray
    axes: tuple[str, str, str] = ("x", "y", "z")

    def to_dict(self) -> dict:
        def vec(a):
            return [float(v) for v in np.broadcast_to(a, (3,))]

        return {
            "schema": "igrt.analysis.margins/1",
            "axes": list(self.axes),
            "Sigma_total_mm": vec(self.Sigma_mm),
            "sigma_total_mm": vec(self.sigma_mm),
            "Sigma_intra_mm": vec(self.Sigma_intra_mm),
            "sigma_intra_mm": vec(self.sigma_intra_mm),
            "sigma_p_mm": float(self.sigma_p_mm),
            "van_herk_mm": vec(self.van_herk_mm),
            "van_herk_penumbra_mm": vec(self.van_herk_penumbra_mm),
            "stroom_mm": vec(self.stroom_mm),
            "formulas": {
                "van_herk": "2.5 Sigma + 0.7 sigma",
                "van_herk_penumbra": "2.5 Sigma + 1.64 (sqrt(sigma^2 + sigma_p^2) - sigma_p)",
                "stroom": "2 Sigma + 0.7 sigma",
                "intrafraction": "added in quadrature to Sigma and sigma",
            },
        }


def margin_report(
    stats_or_Sigma,
    sigma_mm=None,
    *,
    Sigma_intra_mm=0.0,
    sigma_intra_mm=0.0,
    sigma_p_mm: float = DEFAULT_PENUMBRA_SIGMA_MM,
) -> MarginReport:
    """All three recipes from a `PopulationStats` (or from Sigma and sigma given directly)."""
    if isinstance(stats_or_Sigma, PopulationStats):
        Sigma, sigma, axes = stats_or_Sigma.Sigma_mm, stats_or_Sigma.sigma_mm, stats_or_Sigma.axes
    else:
        if sigma_mm is None:
            raise CohortError("give a PopulationStats, or both Sigma_mm and sigma_mm")
        Sigma, sigma, axes = stats_or_Sigma, sigma_mm, ("x", "y", "z")
    S, s = combine_errors(Sigma, sigma, Sigma_intra_mm, sigma_intra_mm)
    S = np.broadcast_to(S, (3,)).astype(float)
    s = np.broadcast_to(s, (3,)).astype(float)
    return MarginReport(
        Sigma_mm=S,
        sigma_mm=s,
        van_herk_mm=van_herk_margin(S, s),
        van_herk_penumbra_mm=van_herk_penumbra_margin(S, s, sigma_p_mm),
        stroom_mm=stroom_margin(S, s),
        sigma_p_mm=float(sigma_p_mm),
        Sigma_intra_mm=np.broadcast_to(np.asarray(Sigma_intra_mm, dtype=float), (3,)),
        sigma_intra_mm=np.broadcast_to(np.asarray(sigma_intra_mm, dtype=float), (3,)),
        axes=tuple(axes),  # type: ignore[arg-type]
    )
