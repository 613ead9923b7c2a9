"""The entry point of scripts/ and benchmarks/: flags parsed with one-line errors, configs validated,
exit codes a shell can use.

A script defines its config flag with :func:`define_config` and ends with ``run_main(main)``::

    _CONFIG = cli.define_config("configs/palindrome.py", "experiment config")
    ...
    if __name__ == "__main__":
        cli.run_main(main)

Exit codes (the same for every script):

    0    the run finished
    1    the run failed (a non-finite loss, a stalled run, another runtime error)
    2    a usage error: a bad flag or config value, an unknown name, a path that cannot be used
    130  interrupted (Ctrl-C) after saving what had finished

Each error is one line on stderr, starting with ``error:``; set ``JAXSEQ_TRACEBACK=1`` to see the
traceback instead.
"""

import difflib
import os
import pathlib
import re
import signal
import sys
from typing import Any, Callable, NoReturn, Optional, Sequence

from absl import app, flags
from ml_collections import config_flags

from jaxseq import report
from jaxseq.config import flat_fields, load_config, validate_config
from jaxseq.cpu_devices import request_cpu_devices
from jaxseq.train.seeds import StalledRunError

# errors that say the command line asked for something that cannot be done as asked
USAGE_ERRORS = (ValueError, KeyError, FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError,
                PermissionError, app.UsageError, flags.Error)
# errors that say a well-formed run did not succeed (jaxseq.train.seeds.StalledRunError is a RuntimeError)
RUN_ERRORS = (RuntimeError, FloatingPointError, OSError)
EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130
HELP_FLAGS = {"--help", "-help", "-h", "-?", "--helpshort", "--helpfull", "--helpxml"}

# argv the config flags read their overrides from: filled in by parse_flags, so a config is built
# from the command line being parsed (never from whatever sys.argv held when the script was imported)
_ARGV: list[str] = []
_CONFIG_DEFAULTS: dict[str, str] = {}


class UsageError(ValueError):
    """A usage error raised by jaxseq itself (exit code 2)."""


def define_config(default: str, help_text: str, name: str = "config") -> flags.FlagHolder:
    """``--config=path.py[:variant]`` with ``--config.a.b=value`` overrides of a locked config.

    Like ``config_flags.DEFINE_config_file``, but overrides are read when :func:`run_main` parses
    the command line, so a misspelt key or a bad variant is a one-line error, not a traceback at import.
    """
    _CONFIG_DEFAULTS[name] = default
    return config_flags.DEFINE_config_file(name, default, help_text, lock_config=True, sys_argv=_ARGV)


def _config_flags() -> dict[str, str]:
    """``{flag name: default spec}`` of the config flags :func:`define_config` defined that still exist."""
    return {name: default for name, default in _CONFIG_DEFAULTS.items() if name in flags.FLAGS}


def _given(argv: Sequence[str], name: str) -> Optional[str]:
    """The value of the last ``--name=value`` (or ``--name value``) in ``argv`` (absl keeps the last), None if absent."""
    value = None
    for i, arg in enumerate(argv):
        match = re.match(rf"^--?{re.escape(name)}(=(.*))?$", arg)
        if match:
            value = match.group(2) if match.group(1) else (argv[i + 1] if i + 1 < len(argv) else "")
    return value


def _with_configs(argv: Sequence[str]) -> list[str]:
    """``argv`` with each config flag given explicitly, first, so its overrides apply to a fresh config."""
    argv = list(argv)
    for name, default in _config_flags().items():
        spec = _given(argv, name)
        if spec is None:
            argv.insert(1, f"--{name}={default}")
            spec = default
        path = spec.split(":", 1)[0]
        if not pathlib.Path(path).is_file():
            raise UsageError(f"--{name}={spec}: no config file {path!r} (run from the repository root, or give its path)")
    return argv


def _root_cause(error: BaseException) -> BaseException:
    """The innermost exception ``error`` was raised while handling."""
    while error.__cause__ is not None or error.__context__ is not None:
        error = error.__cause__ or error.__context__
    return error


def _flag_error_message(error: flags.Error) -> str:
    """One line from an absl flag error (config errors arrive with a traceback in their text)."""
    lines = str(error).strip().splitlines()
    if len(lines) == 1:
        return lines[0]
    return f"{lines[0].split(': ', 1)[0]}: {_root_cause(error)}"


def _unknown_keys_message(argv: Sequence[str]) -> str:
    """Name each ``--config.<key>`` override that the config lacks, with the closest valid keys."""
    problems = []
    for name in _config_flags():
        config = load_config(_given(argv, name))
        fields = list(flat_fields(config))
        sections = {f.rsplit(".", i)[0] for f in fields for i in range(1, f.count(".") + 1)}
        for arg in argv:
            match = re.match(rf"^--?(?:no)?{re.escape(name)}\.([^=]+)", arg)
            if match and match.group(1) not in fields and match.group(1) not in sections:
                key = match.group(1)
                close = difflib.get_close_matches(key, fields, n=3, cutoff=0.5)
                hint = f"; did you mean {' or '.join(close)}?" if close else f"; valid keys: {', '.join(fields)}"
                problems.append(f"--{name}.{key}: the config has no key {key!r}{hint}")
    return " ".join(problems) or "a --config override names a key the config does not have"


def parse_flags(argv: Sequence[str]) -> list[str]:
    """Parse ``argv`` into absl's FLAGS (all flags reset first) and validate every config flag.

    Returns:
      The arguments left over (the program name first), as ``app.run`` passes them to ``main``.
    Raises:
      ValueError (:class:`UsageError` or from :func:`validate_config`): a bad flag, flag value, config
        file, config variant, override key or config value.
    """
    argv = _with_configs(argv)
    _ARGV[:] = argv
    flags.FLAGS.unparse_flags()  # a second parse in one process starts from the defaults too
    try:
        rest = flags.FLAGS(argv)
    except flags.Error as error:
        raise UsageError(_flag_error_message(error)) from None
    except (AttributeError, KeyError):  # ml_collections: an override of a key the locked config lacks
        raise UsageError(_unknown_keys_message(argv)) from None
    if "verbosity" in flags.FLAGS and flags.FLAGS["verbosity"].using_default_value:
        flags.FLAGS.verbosity = -1  # warnings and errors only (absl.app would switch on INFO lines from jax)
    for name in _config_flags():
        validate_config(flags.FLAGS[name].value)
    return rest


def exit_code(error: BaseException) -> tuple[int, str]:
    """The exit code for an exception that ended a script, and the one line to print."""
    if isinstance(error, KeyboardInterrupt):
        return EXIT_INTERRUPTED, "interrupted" + (f": {error}" if str(error) else "")
    message = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
    message = " ".join(str(message).split()) or type(error).__name__
    if isinstance(error, USAGE_ERRORS):
        return EXIT_USAGE, f"error: {message}"
    if isinstance(error, RUN_ERRORS):
        return EXIT_FAILED, f"error: {message}"
    return EXIT_FAILED, f"error: {type(error).__name__}: {message} (set JAXSEQ_TRACEBACK=1 for the traceback)"


def _report_usage_errors(main: Callable[[list[str]], Any]) -> Callable[[list[str]], Any]:
    """``main`` with absl's UsageError turned into ours (absl would print the whole help text)."""

    def wrapped(argv):
        try:
            return main(argv)
        except app.UsageError as error:
            raise UsageError(str(error)) from None

    return wrapped


def run_main(main: Callable[[list[str]], Any], argv: Optional[Sequence[str]] = None) -> NoReturn:
    """Run a script's ``main(argv)`` through ``absl.app.run`` with one-line errors and exit codes.

    Args:
      main: the script's main; it receives the arguments left after the flags.
      argv: the command line, program name first (default ``sys.argv``).
    Raises:
      SystemExit: always, with 0 (done), 1 (failed run), 2 (usage error) or 130 (interrupted).
    """
    argv = list(sys.argv if argv is None else argv)
    start_cpu_devices()
    report.to_stderr()
    try:
        app.run(_report_usage_errors(main), argv=argv, flags_parser=parse_flags)
    except SystemExit as done:
        if done.code == 1 and HELP_FLAGS & set(argv[1:]):  # absl exits 1 after printing the help it was asked for
            sys.exit(0)
        raise
    except BaseException as error:  # noqa: BLE001 - every ending becomes one line and an exit code
        if os.environ.get("JAXSEQ_TRACEBACK") and not isinstance(error, KeyboardInterrupt):
            raise
        code, line = exit_code(error)
        sys.stdout.flush()
        if isinstance(error, KeyboardInterrupt):
            previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C changes nothing now
            try:
                print(line, file=sys.stderr)
                exit_now(code)
            finally:  # reached only where exit_now is replaced (in-process tests)
                signal.signal(signal.SIGINT, previous)
        print(line, file=sys.stderr)
        if isinstance(error, StalledRunError):
            exit_now(code)
        sys.exit(code)


def start_cpu_devices() -> None:
    """Ask jax for one CPU device per core (:func:`jaxseq.cpu_devices.request_cpu_devices`) before
    its backend starts, for batch shards; a bad ``JAXSEQ_CPU_DEVICES`` is one warning line and
    jax's default of one device. Scripts do this in :func:`run_main`; importing jaxseq never does."""
    try:
        request_cpu_devices()
    except ValueError as error:
        print(f"warning: {error}; using one CPU device", file=sys.stderr)


def exit_now(code: int) -> NoReturn:
    """End the process at once, skipping interpreter shutdown (everything a run keeps is written and
    closed by then). After a StalledRunError XLA's runtime is deadlocked, and a normal exit waits for
    it forever (seen in benchmarks/stress_hangs.py). After Ctrl-C, XLA work the interrupt abandoned
    still runs on XLA's threads (a compile, a chunk that batch shards wait for from a helper thread),
    and interpreter shutdown under it aborts the process (``terminate called after throwing an
    instance of ''``, exit 134) or crashes it (exit 139)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
