"""A character LM's run directory: training with checkpoints and resume, its files, loading it back.

:func:`fit` trains a :class:`jaxseq.models.charlm.CharLSTM` chunk by chunk with the step of
:mod:`jaxseq.train.textgen`, writing into a run directory (:class:`jaxseq.files.results.RunDir`)
``config.json``, ``vocab.json`` (the characters and the SHA-256 of the encoded text),
``metrics.jsonl``, ``samples.txt`` and verified checkpoints (:mod:`jaxseq.files.checkpoints`);
``--resume`` continues from the newest checkpoint that verifies, after checking the config, the
text and the vocabulary. :func:`load_run` reads a finished run back for evaluation and generation.
"""

import dataclasses
import fnmatch
import hashlib
import json
import math
import os
import pathlib
import re
import time
from typing import Any, Callable, Optional

import jax
import ml_collections
import numpy as np
from flax import traverse_util

from jaxseq.data.text import CharVocab, TextCorpus
from jaxseq.models.charlm import CharLSTM, make_char_lstm
from jaxseq.report import note
from jaxseq.runner.batch_shards import BatchShards, resolve_batch_shards
from jaxseq.files.checkpoints import (
    checkpoint_meta,
    interrupts_deferred,
    latest_checkpoint,
    restore_checkpoint,
    restore_newest_verified,
    save_checkpoint,
)
from jaxseq.train.checks import check_bounded, check_finite
from jaxseq.train.optim import make_schedule
from jaxseq.train.periodic import is_time
from jaxseq.files.results import NEVER_CHANGE_RESULTS, RunDir, write_json_atomic
from jaxseq.runner.seeds import SHARD_WORKAROUND, StallWatch
from jaxseq.train.state import TrainState, count_params
from jaxseq.train.textgen import DIVERGED_FACTOR, ShardedTextSteps, create_train_state, make_train

SAMPLE_FRACTIONS = (1 / 3, 2 / 3, 1.0)
SAMPLES_FILE = "samples.txt"
SUMMARY_FILE = "results.csv"  # one row written by scripts/train_textgen.py once the run has finished
_SAMPLES_HEADER = re.compile(r"^=== step (\d+) of ")


@dataclasses.dataclass
class Callbacks:
    """Optional hooks called between compiled chunks.

    Attributes:
      on_chunk: ``(step, row)`` after every chunk; ``row`` holds the chunk means, chars/s and,
        when due, the validation metrics (``val_loss``, ``val_bpc``, ``val_accuracy``).
      on_sample: ``(step, state)`` at 1/3, 2/3 and 3/3 of the run.
      on_start: ``(step)`` once before training: 0, or the step a resumed run starts from.
    """

    on_chunk: Optional[Callable[[int, dict[str, Any]], None]] = None
    on_sample: Optional[Callable[[int, TrainState], None]] = None
    on_start: Optional[Callable[[int], None]] = None


def _due(every: int, first: int, last: int, total: int) -> bool:
    """Whether a periodic action fell due at any step in ``first..last`` (inclusive)."""
    return any(is_time(s, every, total) for s in range(first, last + 1))


def sample_steps(total: int) -> list[int]:
    """The steps at 1/3, 2/3 and 3/3 of a run of ``total`` steps."""
    return sorted({max(1, round(total * f)) for f in SAMPLE_FRACTIONS})


def data_sha256(corpus: TextCorpus) -> str:
    """SHA-256 of the encoded training and validation text: what a resumed run must train on again."""
    digest = hashlib.sha256(np.asarray(corpus.train, np.int32).tobytes())
    digest.update(np.asarray(corpus.val, np.int32).tobytes())
    return digest.hexdigest()


def vocab_sha256(vocab: CharVocab) -> str:
    """SHA-256 of a vocabulary's characters in order (index ``i`` is ``vocab.chars[i]``): what a
    checkpoint was trained with, so generation refuses a ``vocab.json`` edited since."""
    return hashlib.sha256(json.dumps(list(vocab.chars)).encode("utf-8")).hexdigest()


def _read_vocab_file(path: pathlib.Path) -> dict:
    """``vocab.json`` as a dict with a ``chars`` list; ValueError naming the file if it is damaged."""
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(saved, dict) or not isinstance(saved.get("chars"), list):
            raise ValueError("no list of chars")
        if not all(isinstance(c, str) and len(c) == 1 for c in saved["chars"]):
            raise ValueError("its chars are not single characters")
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} cannot be read ({error}); restore it from a copy of the run "
                         "(it must match the checkpoints) or train into another --out") from None
    return saved


def _save_vocab(run: RunDir, corpus: TextCorpus, resume: bool) -> None:
    path = run.file("vocab.json")
    digest = data_sha256(corpus)
    if resume:
        _check_resumed_data(run, corpus)
    write_json_atomic(path, {"chars": list(corpus.vocab.chars), "data_sha256": digest})


def _check_resumed_data(run: RunDir, corpus: TextCorpus) -> None:
    """Refuse to resume on another text: the saved vocabulary and (when saved) the data's SHA-256 must match."""
    path = run.file("vocab.json")
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found, so the run's text cannot be checked; "
                                "restore it or train into another --out")
    saved = _read_vocab_file(path)
    if tuple(saved["chars"]) != corpus.vocab.chars:
        raise ValueError(f"the corpus vocabulary differs from {path}; resume with the same --data")
    if saved.get("data_sha256", data_sha256(corpus)) != data_sha256(corpus):
        raise ValueError(f"the text differs from the one {run.path} was trained on (its SHA-256 is in {path}); "
                         "resume with the same --data and data settings")


def load_vocab(run_path: os.PathLike) -> CharVocab:
    """The vocabulary saved in a run directory."""
    path = pathlib.Path(run_path) / "vocab.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; is {run_path} a train_textgen.py run directory?")
    return CharVocab(tuple(_read_vocab_file(path)["chars"]))


# settings a resumed run may change (fnmatch patterns): bookkeeping, and the runner section: the stall
# bound and how a step's batch is spread over threads (the same step up to float rounding; with
# dropout, other masks of the same rate)
_BOOKKEEPING = ("train.eval_every", "train.checkpoint_every", "train.keep_checkpoints", "train.num_samples",
                "train.sample_length", *NEVER_CHANGE_RESULTS)
# settings added after runs were saved, with the value that reproduces those runs
_ADDED_LATER = {"data.train_fraction": 1.0}


def _check_same_training(run: RunDir, config: ml_collections.ConfigDict) -> None:
    """Raise ValueError if ``config`` trains differently from the run's saved ``config.json``, or the
    directory holds another tool's files (see :meth:`jaxseq.files.results.RunDir.saved_config`)."""
    path = run.file("config.json")
    run.config_differences(config, ("*",))  # only whose the files are: another tool's, or none says whose
    if not path.is_file():
        return
    saved = traverse_util.flatten_dict(load_run_config(run.path).to_dict(), sep=".")
    now = traverse_util.flatten_dict(config.to_dict(), sep=".")
    changed = sorted(k for k in saved.keys() | now.keys()
                     if saved.get(k) != now.get(k) and not any(fnmatch.fnmatchcase(k, p) for p in _BOOKKEEPING))
    if changed:
        shown = ", ".join(f"{k} {saved.get(k)!r} -> {now.get(k)!r}" for k in changed)
        raise ValueError(f"{run.path} holds a run of a config that trains differently ({shown}); "
                         "use the run's settings (see its config.json) or choose another --out")


def _replace_text(path: pathlib.Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _drop_metrics_after(run: RunDir, step: int) -> None:
    """Forget logged rows after ``step``: the restored checkpoint has not seen them (they will be redone)."""
    rows = [r for r in run.read_metrics() if r.get("step", 0) <= step]
    _replace_text(run.file("metrics.jsonl"), "".join(json.dumps(r) + "\n" for r in rows))


def append_samples(run: RunDir, step: int, total: int, texts: list[str]) -> None:
    """Append one block to ``samples.txt``: a header line naming ``step`` of ``total``, then ``repr(text)`` per line."""
    with open(run.file(SAMPLES_FILE), "a") as f:
        f.write(f"=== step {step} of {total} (greedy, random first character) ===\n")
        f.writelines(repr(t) + "\n" for t in texts)


def _drop_samples_after(run: RunDir, step: int) -> None:
    """Forget sample blocks written after ``step`` (a resumed run writes them again), so that
    ``samples.txt`` never holds a block twice however often a run is killed and resumed."""
    path = run.file(SAMPLES_FILE)
    if not path.is_file():
        return
    kept, keep = [], True
    for line in path.read_text().splitlines(keepends=True):
        if header := _SAMPLES_HEADER.match(line):
            keep = int(header.group(1)) <= step
        if keep:
            kept.append(line)
    _replace_text(path, "".join(kept))


def fit(
    config: ml_collections.ConfigDict,
    corpus: TextCorpus,
    run: Optional[RunDir] = None,
    resume: bool = False,
    callbacks: Optional[Callbacks] = None,
) -> tuple[TrainState, list[dict[str, Any]]]:
    """Train for ``config.train.num_steps`` steps (from the latest checkpoint of ``run`` if ``resume``).

    Writes ``config.json``, ``vocab.json``, ``metrics.jsonl`` and ``checkpoints/`` into ``run`` (when
    given; the first two once the first chunk has trained without error, so a run that fails at once
    changes no file). Ctrl-C saves a checkpoint of the last finished chunk (a second Ctrl-C waits
for it), then re-raises; before any chunk finished it saves nothing and says so.

    Crash safety: a chunk's metrics row and samples are written before its checkpoint, and a
    resumed run drops the rows and ``samples.txt`` blocks after the step it restores (they are
    redone), so a kill at any point followed by ``resume`` leaves every row and block exactly once
    and the parameters bit-identical to an uninterrupted run. ``resume`` restores the newest
    checkpoint that verifies (:func:`jaxseq.files.checkpoints.restore_newest_verified`), saying so
    on stderr when it skips a corrupt or truncated one, and says on stderr from which step it
    continues. Once the first chunk has trained, a ``results.csv`` summary of the run's end is
    dropped (the end is trained again; the script writes the one summary row when it is reached).
    Every checkpoint carries the SHA-256 of the vocabulary (:func:`vocab_sha256`), which
    :func:`load_run` checks ``vocab.json`` against.

    Returns:
      ``(state, rows)``: the final state and the logged rows (one per chunk) of this call.
    Raises:
      FloatingPointError: a non-finite loss, or one past ``DIVERGED_FACTOR`` times that of a uniform
        guess (a diverged run), naming the step.
      FileExistsError: ``run`` already holds checkpoints and ``resume`` is False.
      CheckpointError: ``resume`` and no checkpoint of the run verifies (naming them).
      ValueError: a config that trains differently from the run's ``config.json`` (logging and
        checkpoint intervals may change), a directory of another tool or with files but no
        ``config.json``, or ``resume`` on another text (vocabulary or data SHA-256 differ from
        ``vocab.json``). ``resume`` without a checkpoint says so on stderr and trains from scratch.
    """
    callbacks = callbacks or Callbacks()
    cfg = config.train
    batch_size, seq_len, total = config.data.batch_size, config.data.seq_len, cfg.num_steps
    trainer = make_train(config, corpus)
    text_run = trainer.init(jax.random.key(config.seed))
    state = text_run.state
    if run is not None:
        _check_same_training(run, config)
        if not resume and latest_checkpoint(run.path) is not None:
            raise FileExistsError(f"{run.path} already holds checkpoints; pass --resume to continue it or choose another --out")
        if resume and latest_checkpoint(run.path) is not None:
            _check_resumed_data(run, corpus)
            state, path = restore_newest_verified(run.path, state)
            text_run = text_run.replace(state=state)
            note(f"resuming {run.path} from step {int(state.step)} of {total} ({path.name})")
        elif resume:
            note(f"nothing to resume in {run.path} (no checkpoint); training from scratch, replacing its "
                 "metrics, samples and summary")

    def prepare_run_dir():
        # only once the first chunk trained without error: a run that fails at once changes no file
        run.write_config(config)
        _save_vocab(run, corpus, resume and restored_step > 0)
        _drop_metrics_after(run, restored_step)  # from scratch: rows of an earlier run are dropped too
        _drop_samples_after(run, restored_step)
        # the summary of the run's end, which is trained again (a fallback past a corrupt last checkpoint)
        run.file(SUMMARY_FILE).unlink(missing_ok=True)

    options = config.get("runner", {})  # how the run executes here (jaxseq.runner)
    shards = resolve_batch_shards(options.get("batch_shards", 1), 1, batch_size, seq_len, count_params(state.params))
    sharded, watch = None, None
    if shards > 1:
        sharded = BatchShards(shards, ShardedTextSteps(trainer.model, batch_size, seq_len), per_seed=False)
        watch = StallWatch(options.get("stall_timeout_s", None), f"{shards} batch shards on {sharded.mode}", f"{SHARD_WORKAROUND} --resume")
    restored_step = int(state.step)
    meta = {"vocab_sha256": vocab_sha256(corpus.vocab)}
    schedule = make_schedule(config.optim, total)
    rows = []
    step = int(state.step)
    recorded = state  # the newest state whose metrics and samples are all written
    if callbacks.on_start:
        callbacks.on_start(step)
    try:
        while step < total:
            num_steps = min(cfg.steps_per_call, total - step)
            start = time.perf_counter()
            if sharded is None:
                new_run, metrics = trainer.run_chunk(text_run, num_steps)
            else:
                what = f"steps {step + 1}-{step + num_steps}"
                new_state, metrics = sharded(state, watch, what, steps=num_steps, args=(trainer.data, text_run.rng))
                new_run = text_run.replace(state=new_state)
            metrics = jax.device_get(metrics)
            seconds = time.perf_counter() - start
            check_finite(metrics["loss"], first_step=step + 1)
            check_bounded(metrics["loss"], DIVERGED_FACTOR * max(math.log(corpus.vocab.size), 1.0), step + 1)
            if run is not None and step == restored_step:
                prepare_run_dir()
            text_run, state, first, step = new_run, new_run.state, step + 1, step + num_steps
            row = {"step": step, **{k: float(np.mean(v)) for k, v in metrics.items()}}
            row.update(lr=float(schedule(step - 1)), chars_per_s=num_steps * batch_size * seq_len / seconds)
            if trainer.val_windows is not None and _due(cfg.eval_every, first, step, total):
                row.update({f"val_{k}": float(v) for k, v in trainer.evaluate(text_run).items()})
            rows.append(row)
            if run is not None:
                run.append_metrics([row])
            if callbacks.on_sample and any(first <= s <= step for s in sample_steps(total)):
                callbacks.on_sample(step, state)
            recorded = state
            if run is not None and _due(cfg.checkpoint_every, first, step, total):
                save_checkpoint(run.path, state, cfg.keep_checkpoints, meta)
            if callbacks.on_chunk:
                callbacks.on_chunk(step, row)
    except KeyboardInterrupt:
        if run is not None and step == restored_step:
            kept = f"; its latest checkpoint is still step {step}" if step else ""
            raise KeyboardInterrupt(f"no step had finished, so nothing was saved in {run.path}{kept}") from None
        if run is not None:
            with interrupts_deferred("saving a checkpoint"):
                path = save_checkpoint(run.path, recorded, cfg.keep_checkpoints, meta)
            raise KeyboardInterrupt(f"saved {path}; continue with --resume") from None
        raise
    finally:
        if sharded is not None:
            sharded.close()
    return state, rows


def load_run_config(run_path: os.PathLike) -> ml_collections.ConfigDict:
    """The config a run was trained with (its ``config.json``); FileNotFoundError if there is none.

    Settings added after the run was saved get the value that reproduces it (``_ADDED_LATER``).
    """
    config_file = pathlib.Path(run_path) / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"{config_file} not found; is {run_path} a train_textgen.py run directory?")
    try:
        saved = traverse_util.flatten_dict(json.loads(config_file.read_text()), sep=".")
    except (ValueError, UnicodeDecodeError, AssertionError) as error:  # AssertionError: JSON but not an object
        raise ValueError(f"{config_file} cannot be read ({error}); restore it from a copy of the run") from None
    return ml_collections.ConfigDict(traverse_util.unflatten_dict({**_ADDED_LATER, **saved}, sep="."))


def load_run(
    run_path: os.PathLike,
    config: Optional[ml_collections.ConfigDict] = None,
    checkpoint: Optional[os.PathLike] = None,
) -> tuple[CharLSTM, Any, CharVocab, int]:
    """Model, parameters, vocabulary and step of a trained run, for generation.

    Args:
      run_path: a directory written by :func:`fit`.
      config: the config to rebuild the model from (default: the run's ``config.json``).
      checkpoint: a checkpoint file (default: the run's newest checkpoint that verifies).
    Raises:
      FileNotFoundError: no run files, no checkpoint, or ``checkpoint file <checkpoint> does not exist``.
      CheckpointError: the checkpoint (or, by default, every checkpoint) fails its SHA-256 check.
      ValueError: the checkpoint does not match the config (see :func:`restore_checkpoint`), or
        ``vocab.json`` differs from the vocabulary the checkpoint was trained with (checked where the
        checkpoint carries its SHA-256, :func:`vocab_sha256`), naming the file.
    """
    run_path = pathlib.Path(run_path)
    vocab = load_vocab(run_path)
    config = config or load_run_config(run_path)
    model = make_char_lstm(config.model, vocab.size)
    template = create_train_state(model, config, jax.random.key(0))
    if checkpoint is not None:
        state = restore_checkpoint(checkpoint, template)
    else:
        state, checkpoint = restore_newest_verified(run_path, template)
    trained_with = checkpoint_meta(checkpoint).get("vocab_sha256")
    if trained_with is not None and trained_with != vocab_sha256(vocab):
        raise ValueError(f"{run_path / 'vocab.json'} differs from the vocabulary {checkpoint} was trained with "
                         "(its characters or their order changed); restore vocab.json from a copy of the run")
    return model, state.params, vocab, int(state.step)
