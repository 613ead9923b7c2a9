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
from ml_collections import config_flags

from jaxseq import cli
from jaxseq.train.guard import expand
from jaxseq.train.sampling import GREEDY_BELOW, check_sampling_args, complete, is_greedy
from jaxseq.train.text_runs import load_run

_RUN = flags.DEFINE_string("run", "results/textgen/grimm", "run directory written by train_textgen.py")
_CHECKPOINT = flags.DEFINE_string("checkpoint", None, "a checkpoint file (default: the run's newest that verifies)")
_CONFIG = config_flags.DEFINE_config_file("config", None, "config to rebuild the model (default: the run's config.json)")
_PROMPT = flags.DEFINE_string("prompt", "", "text to complete (default: a random first letter per sample)")
_LENGTH = flags.DEFINE_integer("length", 300, "characters to generate after the prompt")
_NUM_SAMPLES = flags.DEFINE_integer("num_samples", 1, "samples generated together")
_SEED = flags.DEFINE_integer("seed", 0, "random seed (samples and random first letters)")
_TEMPERATURE = flags.DEFINE_float(
    "temperature", 1.0, f"softmax(logits / temperature), finite and >= 0; 0 (or below {GREEDY_BELOW:g}) = greedy"
)


def main(argv):
    del argv
    check_sampling_args(_TEMPERATURE.value, _LENGTH.value, _NUM_SAMPLES.value)
    model, params, vocab, step = load_run(expand(_RUN.value), _CONFIG.value, expand(_CHECKPOINT.value))
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
