"""User-facing errors.

An ``AbawError`` is a problem with the user's input or environment. The CLI prints its message as
one line and exits with ``code`` (2 by default): never a traceback. Messages should name the
file, line and field at fault.
"""

from __future__ import annotations


class AbawError(Exception):
    """A clear, one-line problem the user can fix (bad input, missing upstream stage, ...)."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def where(path: object, line: int | None = None, field: str | None = None) -> str:
    """Format a location as ``file:line [field]`` for error messages."""
    loc = str(path)
    if line is not None:
        loc += f":{line}"
    if field:
        loc += f" [{field}]"
    return loc


def first_line(exc: BaseException | str, limit: int = 200) -> str:
    """The first non-empty line of an exception's message (libraries write paragraphs), for one-line errors."""
    line = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), "")
    line = line or (type(exc).__name__ if isinstance(exc, BaseException) else "no details")
    if len(line) > limit:  # end at a sentence or word, and say that it was cut
        cut = line[:limit]
        line = (cut[:cut.rfind(". ") + 1] if ". " in cut else cut.rsplit(" ", 1)[0]) + " …"
    return line
