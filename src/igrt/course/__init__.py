"""Treatment course workflow: one fraction from setup to a decided couch correction."""

from igrt.course.workflow import (
    FractionOutcome,
    SitePolicy,
    SITE_POLICIES,
    registration_roi,
    run_course,
    run_fraction,
)

__all__ = ["FractionOutcome", "SITE_POLICIES", "SitePolicy", "registration_roi", "run_course", "run_fraction"]
