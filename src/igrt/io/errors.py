"""Typed errors of `igrt.io` (all subclass `IgrtError`; messages name the file and a fix)."""

from igrt.errors import IgrtError


class ImageIOError(IgrtError):
    """An image file or folder could not be read or written."""
