"""Treatment course workflow: one fraction from setup to a decided couch correction."""

from igrt.course.workflow import (
    FractionOutcome,
    SitePolicy,
    SITE_POLICIES,
    run_course,
    run_fraction,
)

__all__ = ["FractionOutcome", "SITE_POLICIES", "SitePolicy", "run_course", "run_fraction"]
