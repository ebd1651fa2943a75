"""How a failure reads in the kit: a plugin's exception as its root cause on one line, and
:class:`Blocked` for checks that cannot run because something they need already failed."""

from __future__ import annotations

import re

#: how Hydra's InstantiationException names the class whose constructor raised.
HYDRA_TARGET = re.compile(r"Error in call to target '([^']+)'")


class Blocked(Exception):
    """A check needs something (the modality, a dataset) whose failure was already reported; the
    check is skipped rather than repeating that failure.

    Args:
        what: what the check needs, e.g. ``the modality (modality=x data=y)``.
        cause: why that cannot be built, as :func:`describe_error` puts it.
    """

    def __init__(self, what: str, cause: str, unavailable: bool = False) -> None:
        reason = "whose data is not on this machine" if unavailable else "which cannot be built"
        super().__init__(f"not run: it needs {what}, {reason}: {cause}")
        self.what, self.cause, self.unavailable = what, cause, unavailable

    @property
    def after_report(self) -> str:
        """The reason in a list of findings where the failure itself came first (data missing
        from this machine is no failure: its reason is given in full)."""
        if self.unavailable:
            return str(self)
        return f"not run: it needs {self.what}, which cannot be built (the failure above)"


def error_chain(err: BaseException) -> list[BaseException]:
    """``err`` and the exceptions beneath it (``raise ... from``, or raised while handling), outermost first."""
    chain = [err]
    while True:
        below = chain[-1].__cause__ or (None if chain[-1].__suppress_context__ else chain[-1].__context__)
        if below is None or any(below is seen for seen in chain):
            return chain
        chain.append(below)


def one_line(text: str) -> str:
    """Every non-blank line of ``text``, stripped and joined by spaces."""
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def describe_error(err: BaseException) -> str:
    """The root cause of ``err`` in full on one line: the innermost exception's type and message,
    and, when Hydra was building a class, which one (``pkg.Cls(...) raised ValueError: ...``)."""
    chain = error_chain(err)
    cause, message = chain[-1], one_line(str(chain[-1]))
    text = f"{type(cause).__name__}: {message}" if message else type(cause).__name__
    targets = [match.group(1) for e in chain if (match := HYDRA_TARGET.search(str(e)))]
    return f"{targets[-1]}(...) raised {text}" if targets else text
