"""Load experiment configs (``configs/<name>.py[:variant]``) outside of absl scripts.

Scripts define their config flag with :func:`jaxseq.cli.define_config` (``--config=configs/palindrome.py:quick``
with ``--config.optim.lr=3e-3`` overrides); tests and notebooks use :func:`load_config`. Every
config is checked by :func:`validate_config` before a script builds anything from it.
"""

import fnmatch
import importlib.util
import math
import pathlib
from typing import Any, Callable, Optional

import ml_collections

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent


def packaged_dir(kind: str) -> pathlib.Path:
    """The folder of jaxseq's ``configs`` or ``scripts``: the installed wheel's copy
    (``jaxseq/_configs``), else the checkout's own (``configs/`` beside ``jaxseq/``)."""
    installed = pathlib.Path(__file__).resolve().parent / f"_{kind}"
    return installed if installed.is_dir() else REPO_ROOT / kind


def find_config(path_str: str) -> Optional[pathlib.Path]:
    """The config file ``path_str`` names: the path itself (from the current directory), else the
    same path in the repository, else jaxseq's own config of that name (``palindrome``,
    ``palindrome.py`` and ``configs/palindrome.py`` all name ``configs/palindrome.py``); None if none."""
    path = pathlib.Path(path_str).expanduser()
    name = path.name if path.suffix == ".py" else path.name + ".py"
    candidates = [path] if path.is_absolute() else [path, REPO_ROOT / path, packaged_dir("configs") / name]
    return next((p for p in candidates if p.is_file()), None)


def load_config(spec: str) -> ml_collections.ConfigDict:
    """Build the config named by ``spec``.

    Args:
      spec: ``"path/to/config.py"`` or ``"path/to/config.py:variant"``; a relative path is
        looked up from the current directory, then from the repository root, then by name among
        jaxseq's configs (:func:`find_config`: ``"palindrome:quick"`` works from any directory).
    Returns:
      The locked ``ConfigDict`` returned by the file's ``get_config(variant)``; assigning an
      unknown key to it raises, so typos in overrides are errors.
    """
    path_str, _, arg = spec.partition(":")
    path = find_config(path_str)
    if path is None:
        raise FileNotFoundError(f"config file {path_str!r} not found (looked in ., {REPO_ROOT} and "
                                f"{packaged_dir('configs')})")
    module_spec = importlib.util.spec_from_file_location(f"_jaxseq_config_{path.stem}", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    config = module.get_config(arg or None)
    config.lock()
    return config


# the fields of the ``runner`` section: how a run executes on a machine (jaxseq.runner), never what it computes
RUNNER_FIELDS = ("seed_strategy", "batch_shards", "stall_timeout_s")
# the runner's fields as the train section held them (the config.json of older results, older
# commands) -> where each is
TRAIN_SECTION_NAMES = {f"train.{name}": f"runner.{name}" for name in RUNNER_FIELDS}


# ---------------------------------------------------------------------------------------------------
# Validation: every numeric field of every config in configs/, checked before anything is built.
# ---------------------------------------------------------------------------------------------------


def _count(minimum: int) -> tuple[str, Callable[[Any], bool]]:
    """A whole number (not a bool) of at least ``minimum``."""
    return f"a whole number >= {minimum}", lambda v: _is_int(v) and v >= minimum


def _real(low: float, high: float, closed_low: bool = True, closed_high: bool = True, what: str = ""):
    """A finite number in the interval from ``low`` to ``high`` (open or closed at either end)."""
    left, right = "[" if closed_low else "(", "]" if closed_high else ")"
    span = what or f"a finite number in {left}{low:g}, {high:g}{right}"

    def ok(value):
        if not _is_number(value) or not math.isfinite(value):
            return False
        above = value >= low if closed_low else value > low
        below = value <= high if closed_high else value < high
        return above and below

    return span, ok


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_INF = math.inf
COUNT_0, COUNT_1, COUNT_2 = _count(0), _count(1), _count(2)
POSITIVE = _real(0.0, _INF, closed_low=False, closed_high=False, what="a finite number > 0")
NON_NEGATIVE = _real(0.0, _INF, closed_high=False, what="a finite number >= 0")
FINITE = _real(-_INF, _INF, False, False, what="a finite number")
UNIT_OPEN_RIGHT = _real(0.0, 1.0, closed_high=False)  # [0, 1)
UNIT_OPEN_LEFT = _real(0.0, 1.0, closed_low=False)  # (0, 1]
UNIT = _real(0.0, 1.0)  # [0, 1]

# field -> (what it must be, test); a cell's own fields are checked by the cell, when it is built
# (jaxseq.models.fields). A key matches a dotted path equal to it or ending in ".<key>"
# (so frontier's ``variants.<name>.model.hidden_size`` is checked as ``model.hidden_size``); a
# ``*`` matches one name (``compare.lr.*``: every optimiser's learning rate).
FIELD_RULES: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "seed": COUNT_0,
    "model.hidden_size": COUNT_1,
    "model.embed_dim": COUNT_1,
    "model.num_layers": COUNT_1,
    "model.num_heads": COUNT_1,
    "model.output_heads": COUNT_1,
    "model.dropout": UNIT_OPEN_RIGHT,
    "model.attention_dropout": UNIT_OPEN_RIGHT,
    "model.negative_slope": NON_NEGATIVE,
    "optim.lr": POSITIVE,
    "optim.clip_norm": NON_NEGATIVE,  # 0 switches clipping off
    "optim.momentum": UNIT_OPEN_RIGHT,
    "optim.final_lr_fraction": UNIT,
    "optim.l2": NON_NEGATIVE,
    "data.length": COUNT_2,
    "data.batch_size": COUNT_1,
    "data.eval_batch_size": COUNT_1,
    "data.seq_len": COUNT_1,
    "data.val_fraction": UNIT_OPEN_RIGHT,
    # the memory tasks' parameters (data.<task>.*; jaxseq.data.sequences.task_params)
    "data.*.num_tokens": COUNT_1,
    "data.*.num_symbols": COUNT_1,
    "data.*.num_pairs": COUNT_1,
    "data.*.num_keys": COUNT_1,
    "data.*.num_values": COUNT_1,
    "data.*.num_queries": COUNT_1,
    "data.train_fraction": UNIT_OPEN_LEFT,
    "train.num_steps": COUNT_1,
    "train.num_epochs": COUNT_1,
    "train.num_seeds": COUNT_1,
    "train.seed": COUNT_0,
    "train.chunk_steps": COUNT_1,
    "train.steps_per_call": COUNT_1,
    "train.window": COUNT_1,
    "train.patience": COUNT_0,  # 0 switches the loss-patience rule off (palindrome)
    "train.stop_accuracy": POSITIVE,  # above 1 never stops
    "train.log_every": COUNT_1,
    "train.eval_every": COUNT_1,
    "train.checkpoint_every": COUNT_1,
    "train.keep_checkpoints": COUNT_1,
    "train.num_samples": COUNT_1,
    "train.sample_length": COUNT_1,
    # below a second, ordinary compile and scheduling pauses read as stalls; past a week a stall goes unnoticed
    "runner.stall_timeout_s": _real(1.0, 604800.0, what="seconds in [1, 604800] (one second to one week)"),
    "runner.batch_shards": ("auto or a positive integer", lambda v: v == "auto" or COUNT_1[1](int(v) if str(v).isdigit() else v)),
    "frontier.threshold": UNIT_OPEN_LEFT,
    "frontier.min_seeds": COUNT_1,
    "atlas.min_length": COUNT_2,
    "atlas.max_length": COUNT_2,
    "atlas.threshold": UNIT_OPEN_LEFT,
    "probe.batch_size": COUNT_1,
    "probe.seed": COUNT_0,
    "dynamics.k": COUNT_0,  # 0: every exponent
    "dynamics.top": COUNT_1,
    "dynamics.batch_size": COUNT_1,
    "dynamics.steps": COUNT_2,
    "dynamics.warmup": COUNT_0,
    "dynamics.reortho_every": COUNT_1,
    "compare.lr.*": POSITIVE,
    "ravine.lr.*": POSITIVE,
    "ravine.condition": POSITIVE,
    "ravine.num_steps": COUNT_1,
    "ravine.start": ("two finite numbers", lambda v: isinstance(v, (tuple, list)) and len(v) == 2 and all(FINITE[1](x) for x in v)),
}


def flat_fields(config: ml_collections.ConfigDict) -> dict[str, Any]:
    """``{"optim.lr": 0.001, ...}``: every leaf of a (nested) config under its dotted path."""
    fields = {}
    for name, value in config.items():
        if isinstance(value, ml_collections.ConfigDict):
            fields.update({f"{name}.{k}": v for k, v in flat_fields(value).items()})
        else:
            fields[name] = value
    return fields


def field_rule(path: str) -> Optional[tuple[str, Callable[[Any], bool]]]:
    """The rule of :data:`FIELD_RULES` that checks the dotted ``path`` (None if there is none)."""
    for key, rule in FIELD_RULES.items():
        if fnmatch.fnmatchcase(path, key) or fnmatch.fnmatchcase(path, "*." + key):
            return rule
    return None


def runner_field_now(path: str) -> Optional[str]:
    """Where the runner field that the dotted ``path`` names in the train section is
    (:data:`TRAIN_SECTION_NAMES`): ``"runner.seed_strategy"`` for ``"train.seed_strategy"``, in the same
    enclosing section (``variants.<name>.train.seed_strategy`` -> ``variants.<name>.runner.seed_strategy``);
    None for any other path."""
    for before, now in TRAIN_SECTION_NAMES.items():
        if path == before or path.endswith("." + before):
            return path[: len(path) - len(before)] + now
    return None


def validate_config(config: ml_collections.ConfigDict) -> None:
    """Check every numeric field of ``config`` against :data:`FIELD_RULES`, before anything runs.

    Counts must be whole and positive (lengths >= 2), learning rates finite and > 0, rates in
    range (dropout in [0, 1), train_fraction in (0, 1]). Names (models, tasks, optimisers) are
    left to the registries that look them up, which list the valid ones.

    Raises:
      ValueError: naming the first bad field, what it must be and the value it has, or a runner field
        set in the train section and where it belongs (:func:`runner_field_now`).
    """
    for path, value in flat_fields(config).items():
        if runner_field_now(path) is not None:
            raise ValueError(f"config.{path} is now config.{runner_field_now(path)}; set it there")
        rule = field_rule(path)
        if rule is not None and not rule[1](value):
            raise ValueError(f"config.{path} must be {rule[0]}, got {value!r}")
