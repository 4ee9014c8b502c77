"""`igrt demo --quick`: whole fractions end to end, checked against the phantom's truth."""

import io

import numpy as np
import pytest
from rich.console import Console

from igrt.demo import run_demo


@pytest.fixture(scope="module")
def report():
    return run_demo(quick=True, console=Console(file=io.StringIO(), width=200))


def test_every_fraction_is_measured_within_1_mm_of_the_truth(report):
    for site, outcomes in report.outcomes.items():
        assert len(outcomes) >= 5
        for o in outcomes:
            assert o.registration.success, f"{site} fx {o.fraction_number}: {o.registration.failure_reason}"
            err = np.abs(o.measurement_error_mm)
            assert err.max() <= 1.0, f"{site} fx {o.fraction_number}: measured - true = {o.measurement_error_mm}"


def test_online_corrections_move_the_patient_against_the_error(report):
    for o in report.outcomes["lung"]:
        assert o.treated
        assert np.linalg.norm(o.residual_target_mm) < 1.0
        if o.couch_move is None:  # within the no-action band
            assert o.decision.status.value == "NO_ACTION"
            continue
        # The couch move, seen as a motion of LPS points about the isocentre, must oppose the error
        # on every axis where the error is clearly non-zero.
        iso = o.couch_move.isocentre_mm
        move_lps = o.couch_move.as_lps_transform().translation_mm(iso)
        true = np.asarray(o.true_translation_mm)
        big = np.abs(true) > 1.0
        assert np.all(np.sign(move_lps[big]) == -np.sign(true[big])), (o.fraction_number, move_lps, true)


def test_offline_shift_opposes_the_systematic_error(report):
    outcomes = report.outcomes["pelvis"]
    shifted = [o for o in outcomes if any(o.offline_shift_mm)]
    assert shifted, "eNAL should apply its correction after the first imaged fractions"
    true_mean = np.mean([o.true_translation_mm for o in outcomes[:3]], axis=0)
    shift = np.asarray(shifted[0].offline_shift_mm)
    big = np.abs(true_mean) > 1.0
    assert np.all(np.sign(shift[big]) == -np.sign(true_mean[big]))
    np.testing.assert_allclose(shift, -true_mean, atol=1.0)


def test_population_statistics_come_from_the_measurements(report):
    n = sum(len(v) for v in report.outcomes.values())
    assert report.statistics is not None and report.margins is not None
    np.testing.assert_allclose(report.margins.van_herk_mm, 2.5 * report.statistics.Sigma_mm + 0.7 * report.statistics.sigma_mm)
    assert n >= 10


def test_planning_sets_read_back_with_their_structures(report):
    for site, summary in report.planning_summaries.items():
        assert "PTV" in summary["structures"] and summary["structures"]["PTV"] > 0
        assert summary["isocentre_mm"] is not None
