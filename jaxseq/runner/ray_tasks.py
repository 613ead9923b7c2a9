"""A sweep's settings as Ray tasks: one task per setting, its seeds one compiled program on the worker.

Imported only with ``--cluster=ray`` (:func:`jaxseq.runner.run_settings`). The task
(:func:`train_seeds`) builds the setting's trainer from its config, trains its seeds with
:class:`jaxseq.runner.multiseed.MultiSeedRunner` exactly as in-process training does, and returns the
:class:`SeedResults` without the trained parameters. This process writes the rows as each task
finishes and submits the next setting of its chain. A task takes ``cpus_per_task`` CPUs, and one
GPU where the cluster has GPUs.

Faults: a task whose worker died or raised runs again up to ``retries`` times (Ray's own task
retries); after that its setting is reported in one ``error:`` line, the rest of its chain is not
run, the other chains go on, and :class:`RuntimeError` at the end names every missing setting (a
rerun of the same command trains just those). Ctrl-C cancels the tasks still out, and a Ray
instance started here is shut down, so none of its processes outlive the script.
"""

import dataclasses
import os
import pathlib
import warnings
from typing import Callable, Sequence

import jax
import ml_collections
import ray
from tqdm import tqdm

import jaxseq
from jaxseq.runner.cpu_devices import ENV as CPU_DEVICES_ENV
from jaxseq.runner.cpu_devices import available_cores, request_cpu_devices
from jaxseq.report import progress
from jaxseq.runner.multiseed import MultiSeedRunner, SeedResults
from jaxseq.runner.record import record_results
from jaxseq.files.results import RunDir
from jaxseq.train.sequence_trainer import make_train

# how often the wait for finished tasks returns to Python, so Ctrl-C is seen at once
WAIT_S = 0.5


def train_seeds(config: ml_collections.ConfigDict) -> SeedResults:
    """One setting's seeds trained together (the body of a Ray task); ``run`` is dropped (not sent back)."""
    request_cpu_devices()  # the worker's own jax backend: one CPU device per CPU of the task
    trainer = make_train(config)
    results = MultiSeedRunner(trainer, config.get("runner")).run(jax.random.key(config.train.seed), config.train.num_seeds)
    return dataclasses.replace(results, run=None)


def connect(launch) -> None:
    """Join ``launch.address``, or start a local Ray instance on this machine."""
    options = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
    if not launch.address:
        workers = launch.workers or max(1, available_cores() // launch.cpus_per_task)
        options["num_cpus"] = workers * launch.cpus_per_task
    with warnings.catch_warnings():
        # Ray starts its processes with subprocess (fork, then exec at once): jax's warning about
        # forking a multithreaded process is about a child that keeps running Python, not this one
        warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
        ray.init(address=launch.address, **options)


def task_options(launch) -> dict:
    """Ray options of every task: resources, retries, and an environment that finds this jaxseq."""
    gpus = ray.cluster_resources().get("GPU", 0)
    # this jaxseq's checkout first on the worker's path (the same path on every node of a shared
    # file system; elsewhere the nodes' installed jaxseq), and the cwd, for cells named by import path
    root = str(pathlib.Path(jaxseq.__file__).resolve().parent.parent)
    path = os.pathsep.join(dict.fromkeys([root, os.getcwd(), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]))
    return dict(
        num_cpus=launch.cpus_per_task,
        num_gpus=1 if gpus >= 1 else 0,
        max_retries=launch.retries,
        retry_exceptions=True,
        runtime_env={"env_vars": {"PYTHONPATH": path, CPU_DEVICES_ENV: str(launch.cpus_per_task)}},
    )


def slots(options: dict) -> int:
    """How many tasks with ``options`` the cluster can run at once."""
    resources = ray.cluster_resources()
    if options["num_gpus"]:
        return max(1, int(resources.get("GPU", 0)))
    return max(1, int(resources.get("CPU", 0) // options["num_cpus"]))


def one_line(error: BaseException) -> str:
    """A task's failure in one line: the exception the task raised, or why its worker died."""
    cause = getattr(error, "cause", None)
    if isinstance(error, ray.exceptions.RayTaskError) and cause is not None:
        return f"{type(cause).__name__}: {' '.join(str(cause).split())}"
    first = next((line for line in str(error).splitlines() if line.strip()), type(error).__name__)
    return " ".join(first.split())


def run_on_ray(
    chains: Sequence[Sequence],
    run_dir: RunDir,
    launch,
    log_every: int,
    after_each: Callable,
    skip: Callable,
    task: Callable[[ml_collections.ConfigDict], SeedResults] = train_seeds,
) -> None:
    """:func:`jaxseq.runner.run_settings` with each setting one Ray task (``task(config)``).

    One progress bar counts settings: finished (and skipped) as its position, running and queued
    beside it (running: as many of the submitted tasks as the cluster has room for).
    """
    started = not ray.is_initialized()  # a Ray the caller started is left running
    try:
        if started:
            connect(launch)
        options = task_options(launch)
        remote = ray.remote(task).options(**options)
        room = slots(options)
        cursors = [iter(chain) for chain in chains]
        pending: dict = {}  # task reference -> (chain index, setting)
        missing: list = []
        total = sum(len(chain) for chain in chains)
        with progress(total, unit="setting") as bar:

            def submit_next(index: int) -> None:
                for setting in cursors[index]:
                    reason = skip(setting)
                    if reason is None:
                        pending[remote.remote(setting.config)] = (index, setting)
                        return
                    if reason:
                        tqdm.write(reason)
                    bar.update(1)

            def show() -> None:
                running = min(len(pending), room)
                bar.set_postfix_str(f"running {running} queued {len(pending) - running}")

            try:
                for index in range(len(chains)):
                    submit_next(index)
                show()
                while pending:
                    done, _ = ray.wait(list(pending), num_returns=1, timeout=WAIT_S)
                    if not done:
                        continue
                    index, setting = pending.pop(done[0])
                    try:
                        results = ray.get(done[0])
                    except ray.exceptions.RayError as error:
                        rest = list(cursors[index])
                        missing += [setting, *rest]
                        tries = launch.retries + 1
                        tqdm.write(f"error: {setting.label}: {one_line(error)} "
                                   f"(failed {tries} time{'s' if tries > 1 else ''}; the next run trains it again)")
                        bar.update(1 + len(rest))
                    else:
                        record_results(results, run_dir, log_every, setting.label, setting.extra, **setting.columns)
                        after_each(setting)
                        bar.update(1)
                        submit_next(index)
                    show()
            except KeyboardInterrupt:
                for reference in pending:
                    ray.cancel(reference, force=True)
                raise
    finally:
        if started:
            ray.shutdown()
    if missing:
        raise RuntimeError(f"{len(missing)} setting(s) did not finish: {', '.join(s.label for s in missing)}; "
                           "run the same command again to train them")

