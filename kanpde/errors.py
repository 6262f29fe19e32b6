"""One-line reports of errors that come from elsewhere (torch, compilers, files): the first line only."""

from __future__ import annotations


def first_line(error: Exception) -> str:
    """The first line of an error's message (a compiler's or a loader's can run to pages), or its type."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


__all__ = ["first_line"]
