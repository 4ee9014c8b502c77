"""Typed errors of the phantom package."""

from igrt.errors import IgrtError


class PhantomError(IgrtError):
    """Bad phantom or course-simulation input (site, grid, knobs)."""
