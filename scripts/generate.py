"""Generate text with a trained character LSTM (a run directory of scripts/train_textgen.py).

    .venv/bin/python scripts/generate.py --run=results/textgen/grimm --prompt="Sleeping beauty is" --length=300
    .venv/bin/python scripts/generate.py --run=results/textgen/grimm --temperature=0.5 --num_samples=3 --seed=1
    .venv/bin/python scripts/generate.py --run=results/textgen/grimm --temperature=0    # greedy

Temperature sampling draws from softmax(logits / temperature); 0 means greedy (argmax), and so does
any temperature below 1e-3 (jaxseq.train.sampling.GREEDY_BELOW); inf, nan and negative values are
refused. The classic assignment's τ in softmax(τ·x) is 1 / temperature. Without --prompt each sample starts
from a random letter of the vocabulary (chosen from --seed). Same --seed, same text.
"""

import jax
import numpy as np
from absl import flags

from jaxseq import cli
from jaxseq.models.charlm import make_char_lstm
from jaxseq.files.guard import expand
from jaxseq.train.sampling import GREEDY_BELOW, check_fits_in_memory, check_sampling_args, complete, is_greedy
from jaxseq.files.text_runs import load_run, load_run_config, load_vocab

_RUN = flags.DEFINE_string("run", "results/textgen/grimm", "run directory written by train_textgen.py")
_CHECKPOINT = flags.DEFINE_string("checkpoint", None, "a checkpoint file (default: the run's newest that verifies)")
_CONFIG = cli.define_config(None, "config to rebuild the model (default: the run's config.json)",
                            takes="configs/textgen.py")
_PROMPT = flags.DEFINE_string("prompt", "", "text to complete (default: a random first letter per sample)")
_LENGTH = flags.DEFINE_integer("length", 300, "characters to generate after the prompt")
_NUM_SAMPLES = flags.DEFINE_integer("num_samples", 1, "samples generated together")
_SEED = flags.DEFINE_integer("seed", 0, "random seed (samples and random first letters)", lower_bound=0,
                             upper_bound=2**31 - 2)
_TEMPERATURE = flags.DEFINE_float(
    "temperature", 1.0, f"softmax(logits / temperature), finite and >= 0; 0 (or below {GREEDY_BELOW:g}) = greedy"
)


def main(argv):
    del argv
    check_sampling_args(_TEMPERATURE.value, _LENGTH.value, _NUM_SAMPLES.value)
    run = expand(_RUN.value)
    shape = make_char_lstm((_CONFIG.value or load_run_config(run)).model, load_vocab(run).size)
    check_fits_in_memory(shape, _NUM_SAMPLES.value, len(_PROMPT.value) or 1, _LENGTH.value)  # before anything loads
    model, params, vocab, step = load_run(run, _CONFIG.value, expand(_CHECKPOINT.value))
    if _PROMPT.value:
        prompts = [_PROMPT.value] * _NUM_SAMPLES.value
    else:
        letters = [c for c in vocab.chars if c.isalpha()] or list(vocab.chars)
        picks = np.asarray(jax.random.randint(jax.random.key(_SEED.value + 1), (_NUM_SAMPLES.value,), 0, len(letters)))
        prompts = [letters[i] for i in picks]
    texts = complete(model, params, vocab, prompts, _LENGTH.value, _TEMPERATURE.value, _SEED.value)
    mode = "greedy" if is_greedy(_TEMPERATURE.value) else f"temperature {_TEMPERATURE.value}"
    for i, text in enumerate(texts):
        print(f"--- sample {i + 1} ({mode}, checkpoint step {step}, seed {_SEED.value}) ---")
        print(text)


if __name__ == "__main__":
    cli.run_main(main)
