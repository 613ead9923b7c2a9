"""How library code tells the user something: Python logging on the ``jaxseq`` logger.

Library modules never print. They call :func:`warn` (something the user should know: a skipped
file, a torn row) or :func:`note` (what a run is doing: where it writes, that there was nothing to
resume), and return values for everything else. A library user sees the warnings through Python's
last-resort handler and configures ``logging.getLogger("jaxseq")`` like any other logger; the
scripts call :func:`to_stderr` (in :func:`jaxseq.cli.run_main`), which writes each record as one
line on stderr, ``warning: ...`` or ``note: ...``.

Progress over steps goes through :func:`progress`: a tqdm bar redrawn in place on a terminal, and
plain periodic lines when stderr is a file or a pipe (a log holds lines, not thousands of
carriage-return redraws).
"""

import logging
import sys
import time
from typing import Optional, TextIO

from tqdm import tqdm

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


# seconds between two progress lines when stderr is not a terminal
LINE_INTERVAL_S = 30.0
_LINE_FORMAT = "{desc}{percentage:3.0f}% {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}{postfix}]"


class _ProgressLines(tqdm):
    """A tqdm bar that writes its state as one plain line every ``mininterval`` seconds and once at
    the end, never a carriage return (for stderr redirected to a file)."""

    def __init__(self, *args, **kwargs):
        self._last_line, self._line_n = -float("inf"), None
        super().__init__(*args, bar_format=_LINE_FORMAT, **kwargs)

    def display(self, msg: Optional[str] = None, pos: Optional[int] = None) -> bool:
        if msg == "":  # tqdm clearing its line: nothing to clear
            return False
        self.fp.write(f"{(msg or str(self)).strip()}\n")
        self.fp.flush()
        self._last_line, self._line_n = time.monotonic(), self.n
        return True

    def clear(self, nolock: bool = False) -> None:
        """Nothing to clear: earlier lines stay as they are."""

    def refresh(self, nolock: bool = False, lock_args=None) -> bool:
        # tqdm refreshes after every tqdm.write; a line is due only once the interval has passed
        if not self.disable and time.monotonic() - self._last_line >= self.mininterval:
            self.display()
        return True

    def close(self) -> None:
        if not self.disable and self.n != self._line_n:
            self.display()  # the final state, once
        self.leave = False  # tqdm's own closing would write another line or a carriage return
        super().close()


def progress(total: int, unit: str = "step", initial: int = 0, file: Optional[TextIO] = None) -> tqdm:
    """A progress bar over ``total`` units on ``file`` (default ``sys.stderr``).

    Args:
      total: the units (steps, settings) the bar counts to.
      unit: what one unit is called in the bar.
      initial: units already done (a resumed run).
      file: where the bar goes; a terminal gets tqdm's bar redrawn in place, anything else plain
        lines (one every :data:`LINE_INTERVAL_S` seconds and one at the end).
    Returns:
      A ``tqdm`` (``update``, ``set_postfix``, ``write``, ``close``; usable in ``with``).
    """
    file = sys.stderr if file is None else file
    if getattr(file, "isatty", lambda: False)():
        return tqdm(total=total, initial=initial, unit=unit, dynamic_ncols=True, file=file)
    return _ProgressLines(total=total, initial=initial, unit=unit, file=file, mininterval=LINE_INTERVAL_S)
