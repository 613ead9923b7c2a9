"""Where a sweep's settings train: one after another in this process (the default), or as Ray tasks.

A study script plans its settings, each a :class:`Setting` (a label, the setting's full config, the
columns that name it in every row, its trainer), and hands them to :func:`run_settings` in
*chains*: the settings of a chain run in order, and each may be skipped in the light of the rows
before it (a frontier's lengths of one variant); a plain sweep gives every setting its own chain::

    _LAUNCH = runner.define_flags()          # --cluster, --ray_address, --ray_cpus_per_task, ...
    ...
    launch = runner.from_flags(_LAUNCH)      # in main, before anything trains
    runner.run_settings([[s] for s in settings], run_dir, launch, log_every, after_each=save_config)

``--cluster=local`` (the default) trains each setting here with
:func:`jaxseq.runner.record.train_setting`, with a progress bar over steps, and never imports Ray.
``--cluster=ray`` makes each setting one Ray task (:mod:`jaxseq.runner.ray_tasks`): its seeds still
train as one compiled program on the worker, which sends back the per-step and per-seed metrics;
the script's process stays the only writer of the run directory, so resume, ``--plot_only`` and
the one-config-per-directory rule work as in-process, and the rows are the same up to float rounding.

Models and trainers never import this package: it only decides where their pure runs execute.
"""

import dataclasses
from typing import Any, Callable, NamedTuple, Optional, Sequence

import ml_collections
from absl import flags
from tqdm import tqdm

from jaxseq.report import progress
from jaxseq.runner.record import train_setting
from jaxseq.files.results import RunDir

CLUSTERS = ("local", "ray")
CLUSTER_EXTRA = "pip install -e '.[cluster]'"


class Setting(NamedTuple):
    """One setting of a sweep: what trains and how its rows are named.

    Attributes:
      label: names the setting in printed lines (``"lstm T=10"``).
      config: the setting's full, locked config (:func:`jaxseq.train.sweep.setting_config`).
      columns: the columns that name the setting, first in every row (model, length, ...).
      trainer: ``make_train(config)`` when it was built already (in this process only).
      extra: ``results -> {column: value}``, columns added to every per-seed row once the setting
        has trained (:func:`jaxseq.runner.record.train_setting`); called in this process.
    """

    label: str
    config: ml_collections.ConfigDict
    columns: dict
    trainer: Any = None
    extra: Optional[Callable[[Any], dict]] = None


@dataclasses.dataclass(frozen=True)
class Launch:
    """Where settings train.

    Attributes:
      cluster: ``"local"`` (this process, one setting after another) or ``"ray"`` (one Ray task each).
      address: a running Ray cluster to join (``ray start --head`` prints it); None starts a local
        Ray instance on this machine for the sweep and stops it at the end.
      cpus_per_task: CPUs Ray reserves for each task (a task also takes one GPU where the cluster has GPUs).
      workers: how many tasks a local Ray instance runs at once (None: as many as this machine's
        cores allow at ``cpus_per_task`` each); a joined cluster's size is set where it was started.
      retries: how many times a task whose worker died or raised is run again before its setting is
        reported missing.
    """

    cluster: str = "local"
    address: Optional[str] = None
    cpus_per_task: int = 1
    workers: Optional[int] = None
    retries: int = 2


def define_flags() -> dict[str, flags.FlagHolder]:
    """Define ``--cluster``, ``--ray_address``, ``--ray_cpus_per_task``, ``--ray_workers`` and
    ``--ray_retries`` for a script (once, at import); read them with :func:`from_flags`."""
    return {
        "cluster": flags.DEFINE_enum(
            "cluster", "local", CLUSTERS,
            f"where settings train: local (this process, one after another) or ray (one Ray task each; {CLUSTER_EXTRA})",
        ),
        "address": flags.DEFINE_string(
            "ray_address", None, "join this running Ray cluster (default: start a local Ray instance for the sweep)"
        ),
        "cpus_per_task": flags.DEFINE_integer("ray_cpus_per_task", 1, "CPUs reserved for each Ray task", lower_bound=1),
        "workers": flags.DEFINE_integer(
            "ray_workers", None, "tasks at once on a local Ray instance (default: cores / ray_cpus_per_task)", lower_bound=1
        ),
        "retries": flags.DEFINE_integer(
            "ray_retries", 2, "reruns of a Ray task whose worker died or raised, before its setting is given up", lower_bound=0
        ),
    }


def from_flags(holders: dict[str, flags.FlagHolder]) -> Launch:
    """The :class:`Launch` the flags of :func:`define_flags` describe, checked before anything trains.

    Raises:
      UsageError: a Ray flag without ``--cluster=ray``, ``--ray_workers`` with ``--ray_address``, or
        ``--cluster=ray`` where Ray is not installed (naming the extra that installs it).
    """
    from jaxseq.cli import UsageError  # (jaxseq.cli imports this package's cpu_devices and seeds)

    launch = Launch(**{name: holder.value for name, holder in holders.items()})
    given = [f"--{holder.name}" for name, holder in holders.items() if name != "cluster" and holder.present]
    if launch.cluster == "local":
        if given:
            raise UsageError(f"{', '.join(given)} {'needs' if len(given) == 1 else 'need'} --cluster=ray")
        return launch
    if launch.address and launch.workers:
        raise UsageError("--ray_workers sizes a local Ray instance; a cluster joined with --ray_address "
                         "has the workers its `ray start` commands gave it")
    try:
        import ray  # noqa: F401
    except ImportError:
        raise UsageError(f"--cluster=ray needs Ray, which is not installed here: {CLUSTER_EXTRA}") from None
    return launch


def run_settings(
    chains: Sequence[Sequence[Setting]],
    run_dir: RunDir,
    launch: Launch,
    log_every: int,
    after_each: Callable[[Setting], None] = lambda setting: None,
    skip: Callable[[Setting], Optional[str]] = lambda setting: None,
) -> None:
    """Train every setting of ``chains`` and write its rows into ``run_dir`` as it finishes.

    Args:
      chains: settings in chains; a chain's settings run in order, different chains may run at
        once (with Ray). In this process chains run one after another.
      run_dir: receives each setting's rows (:func:`jaxseq.runner.record.record_results`).
      launch: where the settings train (:func:`from_flags`).
      log_every: per-step metrics are written every this many steps (and the last).
      after_each: called in this process once a setting's rows are written (the scripts save
        ``config.json`` there).
      skip: called just before a setting starts, after the settings before it in its chain
        finished: None trains it, a string skips it (and is printed unless empty).
    Raises:
      RuntimeError: with Ray, settings whose tasks failed after their retries (each was also
        reported in one line when it failed); the rest finished and were written.
      KeyboardInterrupt: on Ctrl-C; what finished is written, Ray tasks still out are cancelled.
    """
    if launch.cluster == "ray":
        from jaxseq.runner.ray_tasks import run_on_ray

        run_on_ray(chains, run_dir, launch, log_every, after_each, skip)
        return
    total = sum(setting.config.train.num_steps for chain in chains for setting in chain)
    with progress(total) as bar:
        for chain in chains:
            for setting in chain:
                reason = skip(setting)
                if reason is not None:
                    if reason:
                        tqdm.write(reason)
                    bar.update(setting.config.train.num_steps)
                    continue
                cfg = setting.config
                train_setting(cfg, run_dir, bar, log_every, setting.label, setting.trainer, setting.extra,
                              **setting.columns)
                after_each(setting)
