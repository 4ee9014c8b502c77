"""Population statistics of setup errors (van Herk 2004 definitions).

For each patient p with fractions i: the systematic error is the mean
``m_p = mean_i e_pi`` and the random error the sample SD ``s_p = SD_i e_pi``
(ddof=1), per axis. Over the population: ``M`` = mean of the patient means
(each patient weighs the same), ``Sigma`` = SD of the patient means (ddof=1),
``sigma`` = root mean square of the patient SDs. Axes are whatever the
errors are given in (LPS x, y, z in mm unless stated otherwise).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from igrt.errors import IgrtError


class CohortError(IgrtError):
    """A cohort of setup errors cannot be analysed (bad file, too few patients or fractions)."""


@dataclass(frozen=True, eq=False)
class PopulationStats:
    """Per-patient and population statistics of setup errors (mm)."""

    patients: tuple[str, ...]
    n_fractions: np.ndarray  # (P,)
    patient_mean_mm: np.ndarray  # (P, 3) systematic error per patient
    patient_sd_mm: np.ndarray  # (P, 3) random error per patient (NaN for a single fraction)
    M_mm: np.ndarray  # (3,) population mean
    Sigma_mm: np.ndarray  # (3,) SD of the patient means
    sigma_mm: np.ndarray  # (3,) RMS of the patient SDs
    axes: tuple[str, str, str] = ("x", "y", "z")
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        """JSON-ready dict (schema ``igrt.analysis.population/1``)."""

        def vec(a):
            return [None if not np.isfinite(v) else float(v) for v in a]

        return {
            "schema": "igrt.analysis.population/1",
            "axes": list(self.axes),
            "n_patients": len(self.patients),
            "n_fractions": int(np.sum(self.n_fractions)),
            "M_mm": vec(self.M_mm),
            "Sigma_mm": vec(self.Sigma_mm),
            "sigma_mm": vec(self.sigma_mm),
            "patients": [
                {"patient": p, "n_fractions": int(n), "mean_mm": vec(m), "sd_mm": vec(s)}
                for p, n, m, s in zip(self.patients, self.n_fractions, self.patient_mean_mm, self.patient_sd_mm)
            ],
            "notes": list(self.notes),
        }


def population_statistics(patients: Sequence, errors_mm, axes=("x", "y", "z")) -> PopulationStats:
    """Statistics from one row per imaged fraction: ``patients[i]`` and ``errors_mm[i]`` (N, 3) mm.

    Needs at least 2 patients (for Sigma) and at least one patient with 2
    fractions (for sigma); patients with a single fraction count for M and
    Sigma but not for sigma (said in ``notes``).
    """
    e = np.asarray(errors_mm, dtype=float)
    ids = [str(p) for p in patients]
    if e.ndim != 2 or e.shape[1] != 3 or e.shape[0] != len(ids):
        raise CohortError(f"need one patient id per error row and errors of shape (N, 3); got {len(ids)} ids, {e.shape}")
    if not np.all(np.isfinite(e)):
        raise CohortError("setup errors contain NaN or infinite values; remove or fix those rows")
    order: list[str] = list(dict.fromkeys(ids))  # first-seen order
    if len(order) < 2:
        raise CohortError(f"population statistics need at least 2 patients, got {len(order)}")
    index = {p: k for k, p in enumerate(order)}
    lab = np.array([index[p] for p in ids])
    n = np.bincount(lab, minlength=len(order)).astype(float)
    sums = np.stack([np.bincount(lab, weights=e[:, a], minlength=len(order)) for a in range(3)], axis=1)
    means = sums / n[:, None]
    dev2 = (e - means[lab]) ** 2
    ss = np.stack([np.bincount(lab, weights=dev2[:, a], minlength=len(order)) for a in range(3)], axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        sds = np.where(n[:, None] > 1, np.sqrt(ss / (n[:, None] - 1)), np.nan)
    have_sd = n > 1
    if not have_sd.any():
        raise CohortError("no patient has 2 or more fractions, so the random error sigma is undefined")
    notes = []
    if not have_sd.all():
        single = [p for p, ok in zip(order, have_sd) if not ok]
        notes.append(f"{len(single)} patient(s) with a single fraction left out of sigma: {', '.join(single[:10])}")
    return PopulationStats(
        patients=tuple(order),
        n_fractions=n.astype(int),
        patient_mean_mm=means,
        patient_sd_mm=sds,
        M_mm=means.mean(axis=0),
        Sigma_mm=means.std(axis=0, ddof=1),
        sigma_mm=np.sqrt(np.mean(sds[have_sd] ** 2, axis=0)),
        axes=tuple(axes),  # type: ignore[arg-type]
        notes=tuple(notes),
    )


_AXIS_COLUMNS = (("x", "x_mm"), ("y", "y_mm"), ("z", "z_mm"))


def read_cohort_csv(path: str | Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Read a cohort CSV with columns patient, fraction, x, y, z (mm; ``x_mm`` etc. also accepted).

    Returns (patient ids, fraction numbers (N,), errors (N, 3) mm).
    """
    p = Path(path)
    if not p.is_file():
        raise CohortError(f"cohort file {p} not found; give a CSV with columns patient, fraction, x, y, z")
    with p.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames:
            raise CohortError(f"{p}: empty file; expected a header row patient, fraction, x, y, z")
        names = {f.strip().lower(): f for f in reader.fieldnames if f}
        cols = []
        for options in (("patient", "patient_id"), ("fraction",), *_AXIS_COLUMNS):
            found = next((names[o] for o in options if o in names), None)
            if found is None:
                raise CohortError(f"{p}: missing column {options[0]!r}; the header must name patient, fraction, x, y, z (mm)")
            cols.append(found)
        ids: list[str] = []
        fr: list[float] = []
        rows: list[list[float]] = []
        for line, row in enumerate(reader, start=2):
            try:
                pid = (row[cols[0]] or "").strip()
                if not pid:
                    raise ValueError("empty patient id")
                fr.append(float(row[cols[1]]))
                rows.append([float(row[c]) for c in cols[2:]])
                ids.append(pid)
            except (TypeError, ValueError) as exc:
                raise CohortError(f"{p}, line {line}: {exc}; every row needs a patient id and numeric fraction, x, y, z") from None
    if not rows:
        raise CohortError(f"{p}: no data rows")
    e = np.array(rows)
    if not np.all(np.isfinite(e)):
        raise CohortError(f"{p}: non-finite setup errors; fix or remove those rows")
    return ids, np.array(fr), e
