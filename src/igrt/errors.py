"""Typed errors shared by the whole package.

Every error says what is wrong and what the user can do about it; the CLI
prints the message as one line and exits non-zero.
"""


class IgrtError(Exception):
    """Base class of every error igrt raises on purpose (user-facing)."""


class GeometryError(IgrtError):
    """Inconsistent or unsupported geometry (grids, transforms, orientations)."""
