"""How library code tells the user something: Python logging on the ``jaxseq`` logger.

Library modules never print. They call :func:`warn` (something the user should know: a skipped
file, a torn row) or :func:`note` (what a run is doing: where it writes, that there was nothing to
resume), and return values for everything else. A library user sees the warnings through Python's
last-resort handler and configures ``logging.getLogger("jaxseq")`` like any other logger; the
scripts call :func:`to_stderr` (in :func:`jaxseq.cli.run_main`), which writes each record as one
line on stderr, ``warning: ...`` or ``note: ...``.
"""

import logging
import sys

LOGGER = logging.getLogger("jaxseq")


def warn(message: str) -> None:
    """Report something the user should know about (a ``warning:`` line from a script)."""
    LOGGER.warning(message)


def note(message: str) -> None:
    """Report what a run is doing (a ``note:`` line from a script; hidden by default elsewhere)."""
    LOGGER.info(message)


class _StderrLines(logging.Handler):
    """``warning: message`` / ``note: message``, one line each, on whatever ``sys.stderr`` is now."""

    def emit(self, record: logging.LogRecord) -> None:
        kind = "warning" if record.levelno >= logging.WARNING else "note"
        sys.stderr.write(f"{kind}: {record.getMessage()}\n")
        sys.stderr.flush()


def to_stderr() -> None:
    """Send jaxseq's warnings and notes to stderr as one line each (what the scripts show); idempotent."""
    if not any(isinstance(handler, _StderrLines) for handler in LOGGER.handlers):
        LOGGER.addHandler(_StderrLines())
    LOGGER.setLevel(logging.INFO)
    LOGGER.propagate = False  # absl's handler on the root logger would print each line again
