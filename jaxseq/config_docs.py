"""What each config field means, read from the config file's own comments (``--print_config``).

A config file says what a field is for in a comment beside the line that sets it, or in the
comment lines just above it::

    config.train.num_steps = 1500  # budget per seed
    # how seeds share compiled programs: auto | vmap | map ...
    config.runner.seed_strategy = "auto"
    config.train = ml_collections.ConfigDict(dict(steps_per_call=50,  # training steps per compiled call

These comments are the one place a field's meaning is written; :data:`COMMON_MEANINGS` covers the
fields whose name says enough that their config line carries no comment. :func:`describe_config`
prints a resolved config one field a line with its meaning.
"""

import ast
import io
import pathlib
import re
import tokenize
from typing import Optional

import ml_collections

from jaxseq.config import flat_fields

# fields whose config line needs no comment: the name says what it is (matched as a dotted suffix)
COMMON_MEANINGS = {
    "seed": "random seed of the run",
    "model.name": "the model: a name from jaxseq.models.registry.MODELS or a cell as package.module:Class",
    "model.hidden_size": "width of each recurrent or hidden layer",
    "model.embed_dim": "width of the input embedding",
    "model.num_layers": "stacked layers",
    "model.num_heads": "attention heads",
    "model.dropout": "dropout rate while training",
    "model.forget_bias": "initial forget-gate bias of LSTM-family cells",
    "model.kernel_init": "initialiser of the layers' weights",
    "model.recurrent_init": "initialiser of the recurrent weights",
    "optim.name": "optimiser: a name from jaxseq.train.optim.OPTIMIZERS",
    "optim.lr": "learning rate",
    "optim.schedule": "learning-rate schedule: constant | cosine | warmup_cosine | exponential",
    "optim.clip_norm": "clip gradients to this global norm (0: off)",
    "optim.momentum": "momentum of the momentum optimiser",
    "optim.final_lr_fraction": "learning rate at the end of a decaying schedule, as a fraction of lr",
    "data.batch_size": "sequences per training batch",
    "data.eval_batch_size": "sequences per evaluation batch",
    "data.seq_len": "characters per training window",
    "data.name": "dataset name",
    "train.num_seeds": "seeds trained together",
    "train.seed": "random seed of the first seed (the others are split from it)",
    "train.num_steps": "training steps",
    "train.num_epochs": "training epochs",
    "train.window": "steps over which the training accuracy is averaged for stop_accuracy",
    "train.eval_every": "steps between validation evaluations",
    "train.checkpoint_every": "steps between checkpoints",
    "train.keep_checkpoints": "checkpoints kept on disk (the newest)",
    "train.sample_length": "characters of each greedy sample",
    "runner.stall_timeout_s": "a compiled call slower than this many seconds stops the run",
    "model.lru_r_max": "largest initial magnitude of the LRU's eigenvalues (< 1)",
    "model.attention_dropout": "dropout rate of the attention coefficients",
    "model.negative_slope": "slope of the leaky ReLU inside the attention scores",
    "model.output_heads": "attention heads of the output layer (averaged)",
    "optim.l2_scope": "the weights the l2 penalty covers",
    "train.patience": "epochs without improvement before a seed stops",
    "data.book": "the book: grimm | democracy (or --data=PATH)",
    "data.gutenberg": "strip Project Gutenberg's header and licence",
    "data.val_fraction": "the end of the book held out for validation",
    "data.train_fraction": "train on this last share of the training split only",
    "frontier.min_seeds": "seeds that must reach the threshold",
    "frontier.stop_after_failure": "skip a variant's longer lengths once one fails",
    "frontier.variants": "comma-separated variants (names in config.variants, models or cells' import paths)",
    "compare.optimizers": "comma-separated optimisers compared",
    "ravine.num_steps": "steps of each optimiser on the ravine",
    "ravine.start": "the ravine's starting point (x, y)",
    "sweep.models": "comma-separated models, each trained at every length",
    "sweep.lengths": "comma-separated sequence lengths",
    # the memory tasks' parameters (configs/palindrome.py sets them from jaxseq.data.sequences.task_params)
    "copy.num_tokens": "copy: symbols to remember and answer in order",
    "copy.num_symbols": "copy: size of the symbol alphabet (chance 1/num_symbols)",
    "selective_copy.num_tokens": "selective copy: symbols scattered among the blanks, answered in order",
    "selective_copy.num_symbols": "selective copy: size of the symbol alphabet (chance 1/num_symbols)",
    "associative_recall.num_pairs": "associative recall: key-value pairs shown first",
    "associative_recall.num_keys": "associative recall: size of the key alphabet",
    "associative_recall.num_values": "associative recall: size of the value alphabet (chance 1/num_values)",
    "associative_recall.num_queries": "associative recall: keys asked after the pairs, each answered",
}


def _dotted(node: ast.AST) -> Optional[str]:
    """``"a.b"`` for the expression ``config.a.b`` (None for anything else)."""
    names = []
    while isinstance(node, ast.Attribute):
        names.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name) and node.id == "config" and names:
        return ".".join(reversed(names))
    return None


def _keywords(value: ast.AST) -> list[ast.keyword]:
    """The keywords of the ``dict(...)`` calls inside ``value`` (``ConfigDict(dict(a=1, b=2))``)."""
    return [kw for node in ast.walk(value) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id == "dict" for kw in node.keywords if kw.arg]


def _comments(source: str) -> tuple[dict[int, str], dict[int, str]]:
    """``(trailing, whole_line)``: the comment text ending each line of code, and each comment-only line."""
    trailing, whole = {}, {}
    lines = source.splitlines()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            row, col = token.start
            text = token.string.lstrip("#").strip()
            (whole if not lines[row - 1][:col].strip() else trailing)[row] = text
    return trailing, whole


def field_comments(path: pathlib.Path) -> dict[str, str]:
    """``{"train.num_steps": "budget per seed", ...}``: the comment of each field a config file sets.

    The comment on the line that sets the field, else the comment lines just above it; the first
    line in the file that sets a field with a comment gives its meaning.
    """
    source = pathlib.Path(path).read_text()
    trailing, whole = _comments(source)

    def comment(first: int, last: int) -> str:
        if last in trailing:
            return trailing[last]
        above, row = [], first - 1
        while row in whole:
            above.insert(0, whole[row])
            row -= 1
        return " ".join(above)

    found: dict[str, str] = {}
    # the fields set directly in a function's body (what a variant's branch changes is no definition)
    statements = [s for f in ast.walk(ast.parse(source)) if isinstance(f, ast.FunctionDef) for s in f.body]
    for node in statements:
        if not isinstance(node, ast.Assign) or len(node.targets) != 1:
            continue
        name = _dotted(node.targets[0])
        if name is None:
            continue
        entries = [(name, node.lineno, node.end_lineno)]
        entries += [(f"{name}.{kw.arg}", kw.lineno, kw.value.end_lineno) for kw in _keywords(node.value)]
        for field, first, last in entries:
            text = _first_sentence(comment(first, last))
            if text and field not in found:
                found[field] = text
    return found


def _first_sentence(text: str) -> str:
    """``text`` up to the end of its first sentence (a block comment may say more than one line should)."""
    end = re.search(r"\.\s+(?=[A-Z])", text)
    return text if end is None else text[: end.start() + 1]


def field_meanings(path: pathlib.Path) -> dict[str, str]:
    """The comments of ``path`` and of the config files beside it that it names (a config may build
    on another, as frontier.py does on palindrome.py), ``path``'s own first."""
    path = pathlib.Path(path)
    text = path.read_text()
    meanings: dict[str, str] = {}
    for source in [path, *sorted(p for p in path.parent.glob("*.py") if p != path and p.name in text)]:
        for field, text in field_comments(source).items():
            meanings.setdefault(field, text)
    return meanings


def meaning(field: str, meanings: dict[str, str]) -> str:
    """The meaning of the dotted ``field``: its own comment, else that of the longest dotted suffix
    of at least two names that has one (``variants.lstm_fb1.model.forget_bias`` -> ``model.forget_bias``), else
    :data:`COMMON_MEANINGS`; "" if none."""
    parts = field.split(".")
    for table in (meanings, COMMON_MEANINGS):
        for i in range(max(len(parts) - 1, 1)):  # the whole field, else a section.field at its end
            suffix = ".".join(parts[i:])
            if suffix in table:
                return table[suffix]
    return ""


def describe_config(config: ml_collections.ConfigDict, path: pathlib.Path, title: str) -> str:
    """The resolved ``config`` as text: a ``# title`` line, then ``field = value  # meaning`` per field.

    Args:
      config: the config as the command line resolved it (variant and overrides applied).
      path: the config file, whose comments give the meanings.
      title: the first line (e.g. the flag and file the config came from).
    """
    meanings = field_meanings(path)
    fields = flat_fields(config)
    width = max((len(f"{k} = {v!r}") for k, v in fields.items()), default=0)
    lines = [f"# {title}"]
    for field, value in fields.items():
        text = meaning(field, meanings)
        line = f"{field} = {value!r}"
        lines.append(f"{line:<{width}}  # {text}" if text else line)
    return "\n".join(lines)

