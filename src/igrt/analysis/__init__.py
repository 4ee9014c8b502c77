"""Analysis: population statistics of setup errors and CTV-to-PTV margin recipes."""

from igrt.analysis.margins import MarginReport, combine_errors, margin_report, stroom_margin, van_herk_margin, van_herk_penumbra_margin
from igrt.analysis.population import CohortError, PopulationStats, population_statistics, read_cohort_csv

__all__ = [
    "CohortError",
    "MarginReport",
    "PopulationStats",
    "combine_errors",
    "margin_report",
    "population_statistics",
    "read_cohort_csv",
    "stroom_margin",
    "van_herk_margin",
    "van_herk_penumbra_margin",
]
