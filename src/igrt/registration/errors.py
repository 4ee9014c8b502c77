"""Typed registration errors (user-facing; the CLI prints them as one line)."""

from igrt.errors import IgrtError


class RegistrationError(IgrtError):
    """Registration inputs are unusable (bad arguments, missing structure, unknown metric...)."""
