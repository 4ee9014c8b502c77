"""Population statistics and margins on hand-computed data (numbers worked out in the comments)."""

from __future__ import annotations

import numpy as np
import pytest

from igrt.analysis import (
    CohortError,
    margin_report,
    population_statistics,
    read_cohort_csv,
    stroom_margin,
    van_herk_margin,
    van_herk_penumbra_margin,
)

# Three patients, three fractions each (mm):
#   x: A (1, 2, 3)    mean 2, SD 1 | B (4, 6, 8)  mean 6, SD 2 | C (-2, -2, -2) mean -2, SD 0
#   y: A (0, 2, 4)    mean 2, SD 2 | B (-1,-1,-1) mean -1, SD 0 | C (3, 3, 6)   mean 4, SD sqrt(3)
#   z: all zero.
# x: M = 2; Sigma = SD(2, 6, -2) = sqrt((0 + 16 + 16) / 2) = 4; sigma = sqrt((1 + 4 + 0) / 3) = sqrt(5/3) = 1.290994
# y: M = 5/3 = 1.666667; Sigma = sqrt(((1/3)^2 + (8/3)^2 + (7/3)^2) / 2) = sqrt(19/3) = 2.516611;
#    sigma = sqrt((4 + 0 + 3) / 3) = sqrt(7/3) = 1.527525
ROWS = [
    ("A", 1, 1.0, 0.0, 0.0), ("A", 2, 2.0, 2.0, 0.0), ("A", 3, 3.0, 4.0, 0.0),
    ("B", 1, 4.0, -1.0, 0.0), ("B", 2, 6.0, -1.0, 0.0), ("B", 3, 8.0, -1.0, 0.0),
    ("C", 1, -2.0, 3.0, 0.0), ("C", 2, -2.0, 3.0, 0.0), ("C", 3, -2.0, 6.0, 0.0),
]


def _stats():
    return population_statistics([r[0] for r in ROWS], [r[2:] for r in ROWS])


def test_statistics_hand_computed():
    s = _stats()
    assert s.patients == ("A", "B", "C")
    assert list(s.n_fractions) == [3, 3, 3]
    assert np.allclose(s.patient_mean_mm, [[2, 2, 0], [6, -1, 0], [-2, 4, 0]])
    assert np.allclose(s.patient_sd_mm, [[1, 2, 0], [2, 0, 0], [0, np.sqrt(3), 0]])
    assert s.M_mm == pytest.approx([2.0, 1.666667, 0.0], abs=1e-6)
    assert s.Sigma_mm == pytest.approx([4.0, 2.516611, 0.0], abs=1e-6)
    assert s.sigma_mm == pytest.approx([1.290994, 1.527525, 0.0], abs=1e-6)


def test_margins_hand_computed():
    r = margin_report(_stats())
    # x: van Herk 2.5*4 + 0.7*1.290994 = 10.903696; Stroom 2*4 + 0.903696 = 8.903696;
    #    penumbra 10 + 1.64 (sqrt(5/3 + 3.2^2) - 3.2) = 10 + 1.64 (3.450604 - 3.2) = 10.410990
    # y: van Herk 6.291529 + 1.069268 = 7.360797; Stroom 5.033223 + 1.069268 = 6.102491;
    #    penumbra 6.291529 + 1.64 (sqrt(7/3 + 10.24) - 3.2) = 6.291529 + 1.64 * 0.345889 = 6.858787
    assert r.van_herk_mm == pytest.approx([10.903696, 7.360797, 0.0], abs=1e-6)
    assert r.stroom_mm == pytest.approx([8.903696, 6.102491, 0.0], abs=1e-6)
    assert r.van_herk_penumbra_mm == pytest.approx([10.410990, 6.858787, 0.0], abs=1e-6)
    assert r.to_dict()["van_herk_mm"][0] == pytest.approx(10.903696, abs=1e-6)


def test_intrafraction_in_quadrature():
    # sigma_intra 1 mm: x sigma_total = sqrt(5/3 + 1) = sqrt(8/3) = 1.632993 -> van Herk 10 + 1.143095 = 11.143095
    r = margin_report(_stats(), sigma_intra_mm=1.0)
    assert r.sigma_mm[0] == pytest.approx(1.632993, abs=1e-6)
    assert r.van_herk_mm[0] == pytest.approx(11.143095, abs=1e-6)
    # Sigma_intra 3 mm on Sigma 4: 5 mm -> Stroom 10 + 0.7 sigma
    r = margin_report(4.0, 0.0, Sigma_intra_mm=3.0)
    assert r.Sigma_mm[0] == pytest.approx(5.0) and r.stroom_mm[0] == pytest.approx(10.0)


def test_formula_functions_direct():
    assert van_herk_margin(2.0, 3.0) == pytest.approx(7.1)  # 5 + 2.1
    assert stroom_margin(2.0, 3.0) == pytest.approx(6.1)  # 4 + 2.1
    # sigma 0: the penumbra term vanishes; sigma_p 0: 1.64 sigma
    assert van_herk_penumbra_margin(2.0, 0.0) == pytest.approx(5.0)
    assert van_herk_penumbra_margin(0.0, 3.0, sigma_p_mm=0.0) == pytest.approx(4.92)
    with pytest.raises(CohortError, match=">= 0"):
        van_herk_margin(-1.0, 1.0)


def test_unequal_fractions_and_single_fraction_patient():
    ids = ["A", "A", "B", "B", "B", "B", "C"]
    e = np.zeros((7, 3))
    e[:, 0] = [1, 3, 0, 0, 4, 4, 5]  # A mean 2 SD sqrt(2); B mean 2 SD sqrt(16/3); C mean 5 (no SD)
    s = population_statistics(ids, e)
    assert s.M_mm[0] == pytest.approx(3.0)  # mean of patient means (2, 2, 5), not of rows
    assert s.Sigma_mm[0] == pytest.approx(np.sqrt(3.0))  # deviations (-1, -1, 2): (1 + 1 + 4) / 2 = 3
    assert s.sigma_mm[0] == pytest.approx(np.sqrt((2 + 16 / 3) / 2))  # C left out of sigma
    assert np.isnan(s.patient_sd_mm[2, 0]) and "single fraction" in s.notes[0]


def test_bad_cohorts(tmp_path):
    with pytest.raises(CohortError, match="at least 2 patients"):
        population_statistics(["A", "A"], np.zeros((2, 3)))
    with pytest.raises(CohortError, match="no patient has 2"):
        population_statistics(["A", "B"], np.zeros((2, 3)))
    with pytest.raises(CohortError, match="NaN"):
        population_statistics(["A", "B", "B"], [[0, 0, np.nan], [0, 0, 0], [1, 1, 1]])
    f = tmp_path / "c.csv"
    f.write_text("patient,fraction,x,y\nA,1,0,0\n")
    with pytest.raises(CohortError, match="missing column 'z'"):
        read_cohort_csv(f)
    f.write_text("patient,fraction,x,y,z\nA,1,0,abc,0\n")
    with pytest.raises(CohortError, match="line 2"):
        read_cohort_csv(f)
    with pytest.raises(CohortError, match="not found"):
        read_cohort_csv(tmp_path / "none.csv")


def test_csv_round_trip(tmp_path):
    f = tmp_path / "cohort.csv"
    f.write_text("Patient,Fraction,x_mm,y_mm,z_mm\n" + "\n".join(",".join(str(v) for v in r) for r in ROWS) + "\n")
    ids, fr, e = read_cohort_csv(f)
    assert ids[:3] == ["A", "A", "A"] and fr[2] == 3 and e.shape == (9, 3)
    s = population_statistics(ids, e)
    assert s.Sigma_mm[0] == pytest.approx(4.0)


def test_large_population_recovers_parameters():
    rng = np.random.default_rng(3)
    P, F = 3000, 20
    e = rng.normal(0, 2.0, (P, 1, 3)) + rng.normal(0, 3.0, (P, F, 3)) + np.array([0.5, -1.0, 0.0])
    s = population_statistics(np.repeat(np.arange(P), F), e.reshape(-1, 3))
    # Sigma of the means includes sigma/sqrt(F): sqrt(4 + 9/20) = 2.1095
    assert s.Sigma_mm == pytest.approx([2.1095] * 3, rel=0.04)
    assert s.sigma_mm == pytest.approx([3.0] * 3, rel=0.02)
    assert s.M_mm == pytest.approx([0.5, -1.0, 0.0], abs=0.15)
