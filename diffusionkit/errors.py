"""Errors that reach the user as one line (the CLI prints them without a traceback)."""

from diffusionkit.modality import MediaError


class UsageError(ValueError):
    """A wrong option, a missing file or an input the command cannot use; one line, with the fix."""


#: every exception type the CLI reports as a single line.
USER_ERRORS = (UsageError, MediaError)


def first_line(err: BaseException) -> str:
    """The first line of an exception's message, or its type's name when it has none."""
    return next(iter(str(err).splitlines()), type(err).__name__)
