"""Errors that reach the user as one line (the CLI prints them without a traceback)."""

from diffusionkit.modality import MediaError


class UsageError(ValueError):
    """A wrong option, a missing file or an input the command cannot use; one line, with the fix."""


#: every exception type the CLI reports as a single line.
USER_ERRORS = (UsageError, MediaError)
