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

``--help`` lists the script's own flags (those of jaxseq's modules it uses included; absl's are
under ``--helpfull``); ``--print_config`` prints the config the command line resolves, one field a
line with what it means (:mod:`jaxseq.config_docs`), and exits.
"""

import ast
import difflib
import os
import pathlib
import re
import signal
import sys
from typing import Any, Callable, NoReturn, Optional, Sequence

from absl import app, flags
from ml_collections import config_flags

from jaxseq import report, tracking
from jaxseq.config import REPO_ROOT, find_config, flat_fields, load_config, packaged_dir, runner_field_now, validate_config
from jaxseq.config_docs import describe_config
from jaxseq.runner.cpu_devices import request_cpu_devices
from jaxseq.runner.seeds import StalledRunError

# errors that say the command line asked for something that cannot be done as asked
USAGE_ERRORS = (ValueError, KeyError, FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError,
                PermissionError, app.UsageError, flags.Error)
# errors that say a well-formed run did not succeed (jaxseq.runner.seeds.StalledRunError is a RuntimeError)
RUN_ERRORS = (RuntimeError, FloatingPointError, OSError)
EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130
HELP_FLAGS = {"--help", "-help", "-h", "-?", "--helpshort", "--helpfull", "--helpxml"}

# argv the config flags read their overrides from: filled in by parse_flags, so a config is built
# from the command line being parsed (never from whatever sys.argv held when the script was imported)
_ARGV: list[str] = []
_CONFIG_DEFAULTS: dict[str, Optional[str]] = {}
_CONFIG_TAKES: dict[str, Optional[str]] = {}


class UsageError(ValueError):
    """A usage error raised by jaxseq itself (exit code 2)."""


def define_config(default: Optional[str], help_text: str, name: str = "config", takes: Optional[str] = None
                  ) -> flags.FlagHolder:
    """``--config=path.py[:variant]`` with ``--config.a.b=value`` overrides of a locked config.

    Like ``config_flags.DEFINE_config_file``, but overrides are read when :func:`run_main` parses
    the command line, so a misspelt key or a bad variant is a one-line error, not a traceback at import.

    Args:
      default: the config used when the flag is not given (None: no config unless given).
      help_text: what the config is for.
      name: the flag's name.
      takes: the config the script is written for (default: ``default``); a config given on the
        command line must have all its fields (a config of another experiment is refused by name).
    """
    _CONFIG_DEFAULTS[name] = default
    _CONFIG_TAKES[name] = takes or default
    if "print_config" not in flags.FLAGS:
        flags.DEFINE_bool("print_config", False, "print the resolved config (variant and overrides applied), one "
                          "field a line with what it means, and exit")
    help_text += f" (path[:variant]; override a field with --{name}.<field>=value; --print_config lists them)"
    return config_flags.DEFINE_config_file(name, default, help_text, lock_config=True, sys_argv=_ARGV)


def _config_flags() -> dict[str, Optional[str]]:
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


def _config_file(name: str, spec: str) -> pathlib.Path:
    """The Python config file that ``--name=spec`` names (:func:`jaxseq.config.find_config`).

    Raises:
      UsageError: no such file, or a file that is not a Python config (no ``get_config``), named.
    """
    path_str = spec.split(":", 1)[0]
    path = find_config(path_str)
    if path is None:
        raise UsageError(f"--{name}={spec}: no config file {path_str!r} (give a path, or a name of jaxseq's "
                         f"configs: {', '.join(sorted(p.stem for p in packaged_dir('configs').glob('*.py')))})")
    try:
        tree = ast.parse(path.read_bytes(), str(path))
    except (SyntaxError, ValueError) as error:
        line = f" (line {error.lineno}: {error.msg})" if isinstance(error, SyntaxError) else ""
        raise UsageError(f"--{name}={spec}: {path} is not a Python config file{line}; "
                         "give configs/<experiment>.py[:variant]") from None
    if not any(isinstance(node, ast.FunctionDef) and node.name == "get_config" for node in tree.body):
        raise UsageError(f"--{name}={spec}: {path} defines no get_config(arg); give configs/<experiment>.py[:variant]")
    return path


def _with_configs(argv: Sequence[str]) -> list[str]:
    """``argv`` with each config flag given explicitly, first, so its overrides apply to a fresh config;
    a config found by name (not a file from here) is given as the path of its file."""
    argv = list(argv)
    for name, default in _config_flags().items():
        spec = _given(argv, name)
        if spec is None and default is None:
            overrides = [a for a in argv if re.match(rf"^--?(no)?{re.escape(name)}\.", a)]
            if overrides:
                raise UsageError(f"{overrides[0]}: give the config it overrides first (--{name}=path.py[:variant])")
            continue
        if spec is None:
            argv.insert(1, f"--{name}={default}")
            spec = default
        path_str, colon, variant = spec.partition(":")
        path = _config_file(name, spec)
        if not pathlib.Path(path_str).is_file():
            resolved = f"{path}{colon}{variant}"
            for i, arg in enumerate(argv):
                if re.match(rf"^--?{re.escape(name)}=", arg):
                    argv[i] = f"--{name}={resolved}"
                elif re.match(rf"^--?{re.escape(name)}$", arg) and i + 1 < len(argv):
                    argv[i + 1] = resolved
    return argv


def _check_config_kind(name: str, script: str) -> None:
    """Refuse a config of another experiment: it lacks fields the script's own config has.

    Raises:
      UsageError: naming the missing fields, the script the config's docstring is written for, and
        the config this script takes.
    """
    takes, spec = _CONFIG_TAKES.get(name), _given(_ARGV, name)
    if takes is None or spec is None:
        return
    config, own = flags.FLAGS[name].value, load_config(takes)
    missing = [f"{section}.{key}" if key else section for section, key in _top_fields(own)
               if section not in config or (key and key not in config[section])]
    if not missing:
        return
    path = find_config(spec.split(":", 1)[0])
    meant = re.search(r"scripts/(\w+\.py)", ast.get_docstring(ast.parse(path.read_text())) or "")
    author = f"is a config for {meant.group(1)}" if meant else "is not a config for this script"
    raise UsageError(f"--{name}={spec} {author} (it has no {', '.join(missing[:3])}); {script} takes "
                     f"{takes.replace(str(REPO_ROOT) + '/', '')}[:variant] or a config with its fields")


def _top_fields(config) -> list[tuple[str, str]]:
    """``(section, key)`` of each top-level field and each field of a top-level section (key "" for a
    top-level field); deeper ones (a section of named variants) are left out."""
    fields = []
    for section, value in config.items():
        if hasattr(value, "items"):
            fields += [(section, key) for key, inner in value.items() if not hasattr(inner, "items")]
        else:
            fields.append((section, ""))
    return fields


def check_backend() -> None:
    """Refuse a ``JAX_PLATFORMS`` that names a backend this machine lacks (jax itself fails with a bare
    AssertionError), before anything runs.

    Raises:
      UsageError: naming the variable and the two ways out.
    """
    platforms = os.environ.get("JAX_PLATFORMS", "")
    if not platforms or platforms == "cpu":
        return
    import jax  # noqa: PLC0415 - only when a backend was asked for: importing jaxseq starts none

    try:
        jax.devices()
    except Exception:  # noqa: BLE001 - jax says AssertionError or RuntimeError, depending on the plugin
        raise UsageError(f"JAX_PLATFORMS={platforms}: jax has no such backend on this machine (no GPU, or jax's "
                         "CUDA plugin is not installed: pip install 'jaxseq[cuda12]'); unset JAX_PLATFORMS "
                         "(or set it to cpu) to run on the CPU") from None


def _root_cause(error: BaseException) -> BaseException:
    """The innermost exception ``error`` was raised while handling."""
    while error.__cause__ is not None or error.__context__ is not None:
        error = error.__cause__ or error.__context__
    return error


def _flag_error_message(error: flags.Error) -> str:
    """One line from an absl flag error (config errors arrive with a traceback in their text)."""
    lines = str(error).strip().splitlines()
    given, cause = lines[0].split(": ", 1)[0], lines[0].split(": ", 1)[-1] if len(lines) == 1 else _root_cause(error)
    number = re.match(r"(could not convert string to float|invalid literal for int\(\) with base 10): (.*)", str(cause))
    field = re.match(r"flag --\w+\.([^=]+)=", given)
    if number and field:  # a config field's override that is not a number
        kind = "a whole number" if number.group(1).startswith("invalid") else "a number"
        return f"{given.removeprefix('flag ')}: {field.group(1)} takes {kind}, got {number.group(2)}"
    return lines[0] if len(lines) == 1 else f"{given}: {cause}"


def _unknown_keys_message(argv: Sequence[str]) -> str:
    """Name each ``--config.<key>`` override that the config lacks, with the closest valid keys (or,
    for a runner field given in the train section, where it is: :func:`jaxseq.config.runner_field_now`)."""
    problems = []
    for name in _config_flags():
        if _given(argv, name) is None:
            continue
        config = load_config(_given(argv, name))
        fields = list(flat_fields(config))
        sections = {f.rsplit(".", i)[0] for f in fields for i in range(1, f.count(".") + 1)}
        for arg in argv:
            match = re.match(rf"^--?(?:no)?{re.escape(name)}\.([^=]+)", arg)
            if match and match.group(1) not in fields and match.group(1) not in sections:
                key = match.group(1)
                now = runner_field_now(key)
                if now is not None:
                    given = arg.replace(f"{name}.{key}", f"{name}.{now}", 1)
                    problems.append(f"--{name}.{key}: {name}.{key} is now {name}.{now} ({given})")
                    continue
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
        if flags.FLAGS[name].value is not None:
            # before the kind check, so a config that sets a runner field in its train section is told where it goes
            validate_config(flags.FLAGS[name].value)
            _check_config_kind(name, pathlib.Path(argv[0]).stem + ".py")
    check_backend()
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


def define_tracking() -> None:
    """``--tensorboard`` and ``--wandb=PROJECT`` for a script that writes ``metrics.jsonl``: its rows also go
    to TensorBoard event files or Weights & Biases (:mod:`jaxseq.tracking`), started by :func:`run_main`."""
    flags.DEFINE_bool("tensorboard", False, "also write metrics.jsonl's scalars as TensorBoard event files under "
                      "OUT/tensorboard/ (pip install 'jaxseq[tensorboard]')")
    flags.DEFINE_string("wandb", None, "also log metrics.jsonl's scalars to this Weights & Biases project "
                        "(pip install 'jaxseq[wandb]'; WANDB_MODE=offline keeps them under OUT/wandb/)")


def _start_tracking() -> None:
    """Start the trackers ``--tensorboard`` / ``--wandb`` ask for (:func:`define_tracking`)."""
    if "tensorboard" in flags.FLAGS and "wandb" in flags.FLAGS:
        tracking.start(flags.FLAGS.tensorboard, flags.FLAGS.wandb)


def print_configs() -> None:
    """Print each config flag's resolved config with the meaning of every field (``--print_config``)."""
    for name in _config_flags():
        spec = _given(_ARGV, name)
        if spec is None:
            continue
        print(describe_config(flags.FLAGS[name].value, pathlib.Path(spec.split(":", 1)[0]), f"--{name}={spec}"))


def show_own_flags_in_help(main_module: str) -> None:
    """Make every flag that is not absl's own a key flag of ``main_module``, so that ``--help`` (absl's
    short help: the main module's key flags) lists ``--config``, ``--overwrite``, ``--cluster``... that a
    script defines through jaxseq's modules, and leaves absl's own to ``--helpfull``."""
    for module, defined in flags.FLAGS.flags_by_module_dict().items():
        if module.split(".")[0] != "absl":
            for flag in defined:
                flags.FLAGS.register_key_flag_for_module(main_module, flag)


def _report_usage_errors(main: Callable[[list[str]], Any]) -> Callable[[list[str]], Any]:
    """``main`` with absl's UsageError turned into ours (absl would print the whole help text), and
    ``--print_config`` answered instead of running."""

    def wrapped(argv):
        try:
            if "print_config" in flags.FLAGS and flags.FLAGS.print_config:
                return print_configs()
            _start_tracking()
            try:
                return main(argv)
            finally:
                tracking.close()
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
    show_own_flags_in_help(sys.argv[0])  # the module absl's --help describes
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
    """Ask jax for one CPU device per core (:func:`jaxseq.runner.cpu_devices.request_cpu_devices`) before
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
