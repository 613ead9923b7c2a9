"""Generate text from a :class:`jaxseq.models.charlm.CharLSTM`: greedy or temperature sampling.

Temperature sampling draws each next character from ``softmax(logits / temperature)``:
``temperature = 1`` samples the model's own distribution, smaller values sharpen it, larger
values flatten it, and ``temperature = 0`` means greedy decoding (``argmax``, deterministic).
Temperatures below :data:`GREEDY_BELOW` (``1e-3``) are greedy too: there ``logits / temperature``
would overflow float32 into ``inf - inf = nan`` (``1e-45`` printed garbage), and the
distribution is already all but an ``argmax``. Negative and non-finite temperatures (``inf``
would sample uniformly, ``nan`` nothing sensible) are refused.
The classic assignment writes the distribution as ``softmax(τ · logits)``; its ``τ`` is
``1 / temperature`` (τ = 2 is temperature 0.5).

Generation is one jitted ``lax.scan`` over characters: the prompt is fed through the model in one
call, then each step samples a character from the last logits and feeds it back through
:meth:`CharLSTM.step`, carrying the LSTM states, so any length works (far beyond the training
window). All sequences of a batch are generated at once; the same seed gives the same text.
"""

import functools
import math
import os
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from jaxseq.data.text import CharVocab
from jaxseq.models.charlm import CharLSTM


GREEDY_BELOW = 1e-3  # temperatures below this decode greedily


def check_temperature(temperature: float) -> None:
    """Raise ValueError unless ``temperature`` is finite and ``>= 0`` (below :data:`GREEDY_BELOW` is greedy)."""
    if not (math.isfinite(temperature) and temperature >= 0):
        raise ValueError(f"temperature must be a finite number >= 0 (0 means greedy), got {temperature}")


def check_sampling_args(temperature: float, length: int, num_samples: int = 1) -> None:
    """Raise ValueError naming the first of ``temperature`` (see :func:`check_temperature`),
    ``length`` (characters to generate) and ``num_samples`` that is out of range."""
    check_temperature(temperature)
    for name, value in (("length", length), ("num_samples", num_samples)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")


def sample_bytes(model: CharLSTM, prompt_length: int, length: int) -> int:
    """Memory one sample needs while generated, as an upper estimate in bytes: the prompt's pass
    (embeddings, every layer's gates and states, logits: float32 ``[P, ...]``), one step of the scan,
    its ``int32 [length]`` characters, and the decoded text; twice that for XLA's temporaries."""
    per_step = model.embed_dim + 6 * model.num_layers * model.hidden_size + model.vocab_size  # floats
    device = 4 * (prompt_length * per_step + per_step + 2 * length)
    host = 4 * length + 2 * (prompt_length + length) + 150  # the characters, their text, a Python string
    return 2 * (device + host)


def available_memory() -> int:
    """Bytes of memory available to this process now (Linux's MemAvailable, else the free pages)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def check_fits_in_memory(model: CharLSTM, num_samples: int, prompt_length: int, length: int,
                         free: Optional[int] = None) -> None:
    """Refuse ``num_samples`` samples that would not fit in ``free`` bytes (default: the memory available
    now; :func:`sample_bytes` each).

    Raises:
      ValueError: saying how much they need and how many samples fit.
    """
    each, free = sample_bytes(model, prompt_length, length), available_memory() if free is None else free
    if num_samples * each > free:
        raise ValueError(f"--num_samples={num_samples} of {prompt_length} + {length} characters need about "
                         f"{num_samples * each / 1e9:,.1f} GB; about {free // each:,} fit in the {free / 1e9:,.1f} GB "
                         "free here (generate fewer at a time, with another --seed for more)")


def is_greedy(temperature: float) -> bool:
    """Whether ``temperature`` decodes greedily (``argmax``): it is below :data:`GREEDY_BELOW`."""
    return temperature < GREEDY_BELOW


@functools.partial(jax.jit, static_argnames=("model", "length", "greedy"))
def _generate(model, params, prompt_ids, key, temperature, length: int, greedy: bool):
    carries, logits = model.apply({"params": params}, prompt_ids)

    def next_char(carry, t):
        carries, logits = carry
        if greedy:
            chars = jnp.argmax(logits, axis=-1)
        else:
            chars = jax.random.categorical(jax.random.fold_in(key, t), logits / temperature, axis=-1)
        carries, logits = model.apply({"params": params}, carries, chars, method=CharLSTM.step)
        return (carries, logits), chars

    _, chars = jax.lax.scan(next_char, (carries, logits[:, -1]), jnp.arange(length))
    return chars.T


def generate(
    model: CharLSTM, params, prompt_ids, length: int, key: jax.Array, temperature: float = 0.0
) -> jax.Array:
    """Continue each prompt by ``length`` characters.

    Args:
      model, params: a trained :class:`CharLSTM` and its parameters.
      prompt_ids: ``int [batch, P]`` with ``P >= 1``: the characters fed in before sampling.
      length: number of characters to generate after the prompt.
      key: PRNG key (unused when greedy).
      temperature: ``softmax(logits / temperature)``; below :data:`GREEDY_BELOW` (e.g. 0) greedy.
    Returns:
      ``int32 [batch, length]``: the generated characters (the prompt not included).
    """
    check_sampling_args(temperature, length)
    prompt_ids = jnp.asarray(prompt_ids, jnp.int32)
    if prompt_ids.ndim != 2 or prompt_ids.shape[1] < 1:
        raise ValueError(f"prompt_ids must be [batch, P] with P >= 1, got shape {prompt_ids.shape}")
    greedy = is_greedy(temperature)
    return _generate(model, params, prompt_ids, key, jnp.float32(1.0 if greedy else temperature), length, greedy)


def complete(
    model: CharLSTM,
    params,
    vocab: CharVocab,
    prompts: list[str],
    length: int,
    temperature: float = 0.0,
    seed: int = 0,
) -> list[str]:
    """Each prompt followed by ``length`` generated characters.

    Args:
      prompts: strings of one common length (use the same prompt several times for several
        samples of it), made only of vocabulary characters.
    Raises:
      ValueError: an empty prompt, prompts of different lengths, characters outside the
        vocabulary (named), or a negative or non-finite temperature.
    """
    check_temperature(temperature)
    if not prompts or any(len(p) == 0 for p in prompts):
        raise ValueError("every prompt needs at least one character; give --prompt or a random first character")
    if len({len(p) for p in prompts}) > 1:
        raise ValueError(f"prompts must have one length to be generated together, got lengths {sorted({len(p) for p in prompts})}")
    prompt_ids = np.stack([vocab.encode(p) for p in prompts])
    chars = np.asarray(generate(model, params, prompt_ids, length, jax.random.key(seed), temperature))
    return [p + vocab.decode(c) for p, c in zip(prompts, chars)]


def random_first_chars(key: jax.Array, ids, vocab: CharVocab, num: int) -> list[str]:
    """``num`` characters read at random positions of ``ids`` (so frequent characters come up often)."""
    positions = np.asarray(jax.random.randint(key, (num,), 0, len(ids)))
    return [vocab.decode(np.asarray(ids)[p : p + 1]) for p in positions]
