"""Character-level text corpora: load a book, build a vocabulary, sample batches on device.

A corpus is a UTF-8 text file. :func:`load_corpus` reads it, strips a byte-order mark, turns
``\\r\\n`` and ``\\r`` into ``\\n``, optionally cuts the Project Gutenberg licence header and
footer, builds a sorted character vocabulary and holds out the *last* ``val_fraction`` of the
text for validation (the end of a book, never seen in training). For data-size studies,
``train_fraction`` keeps only the last share of the training split (the part next to the
validation text); the vocabulary is always built from the whole text.

Batches are cut from the encoded ``int32`` array on device: :func:`sample_batch` draws ``B``
random offsets and gathers ``[B, T + 1]`` windows in one indexing operation; the inputs are
``window[:, :-1]`` and the targets (the next character at every position) ``window[:, 1:]``.

Books are found by :func:`find_book`: a file or directory the user names (``--data`` or the
``JAXSEQ_DATA`` environment variable), then ``../shared/data`` beside the repository.

Checksums follow the one rule of every jaxseq loader (:mod:`jaxseq.data.checksums`): a book the
project knows (``book_EN_grimms_fairy_tails.txt``, ``book_EN_democracy_in_the_US.txt``, recognised
by file name) is always checked against the SHA-256 jaxseq ships, wherever it is and whether or not
a ``SHA256SUMS`` sits beside it, so an edited copy is refused with one line naming it. A
``SHA256SUMS`` above a file that lists it is checked too. A user's own text file
(``--data=path/to/my.txt``) is accepted as it is, and :func:`load_corpus` says so once on stderr.
"""

import dataclasses
import functools
import os
import pathlib
import re
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from jaxseq.config import REPO_ROOT
from jaxseq.data.checksums import read_verified
from jaxseq.lookup import lookup
from jaxseq.report import note

# book name -> path relative to a data directory (the layout of ../shared/data)
BOOKS = {
    "grimm": "books/book_EN_grimms_fairy_tails.txt",
    "democracy": "books/book_EN_democracy_in_the_US.txt",
}
DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "data"
DATA_ENV = "JAXSEQ_DATA"

_NOTED_UNCHECKED: set[pathlib.Path] = set()  # user's own files already announced in this process

_GUTENBERG_START = re.compile(r"^\*\*\* ?START OF (THIS|THE) PROJECT GUTENBERG.*$", re.MULTILINE)
_GUTENBERG_END = re.compile(r"^\*\*\* ?END OF (THIS|THE) PROJECT GUTENBERG.*$", re.MULTILINE)


def _data_dirs(data: Optional[str]) -> list[pathlib.Path]:
    candidates = [data, os.environ.get(DATA_ENV), DEFAULT_DATA_DIR]
    return [pathlib.Path(c).expanduser() for c in candidates if c]


def find_book(book: str, data: Optional[str] = None) -> pathlib.Path:
    """The text file to train on.

    Args:
      book: a known book name (one of :data:`BOOKS`) or a path to any UTF-8 text file.
      data: a file (used as is) or a directory to look in first; then ``$JAXSEQ_DATA``, then
        ``../shared/data`` beside the repository.
    Returns:
      The path of an existing file.
    Raises:
      FileNotFoundError: ``data`` or a set ``$JAXSEQ_DATA`` does not exist, or no place searched
        holds the book (naming every place that was searched).
    """
    if data and not pathlib.Path(data).expanduser().exists():
        raise FileNotFoundError(f"--data {data!r} not found; pass an existing text file or data directory")
    env = os.environ.get(DATA_ENV)
    if not data and env and not pathlib.Path(env).expanduser().exists():
        raise FileNotFoundError(f"{DATA_ENV}={env} does not exist; set it to a text file or the folder holding "
                                f"books/, or unset it (then {DEFAULT_DATA_DIR} is used)")
    for candidate in _data_dirs(data):
        if candidate.is_file():
            return candidate
    if pathlib.Path(book).expanduser().is_file():
        return pathlib.Path(book).expanduser()
    relative = BOOKS.get(book)
    if relative is None and pathlib.Path(book).suffix:
        raise FileNotFoundError(f"text file {book!r} not found; pass an existing file with --data")
    relative = lookup(BOOKS, book, "book")
    searched = []
    for directory in _data_dirs(data):
        path = directory / relative
        searched.append(str(path))
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"book {book!r} not found (looked for {', '.join(searched)}); pass --data=DIR_OR_FILE or set {DATA_ENV}"
    )


def read_book_bytes(path: os.PathLike) -> bytes:
    """The bytes of a text file, checked by the rule of :mod:`jaxseq.data.checksums`.

    A known book (by file name) is checked against the SHA-256 jaxseq ships, and any file a
    ``SHA256SUMS`` above it lists against that; a user's own file is read as it is, with a
    one-line note on stderr (once per file and process).

    Raises:
      ChecksumError: the file differs from a checksum that names it (an edited or corrupt copy).
    """
    data, checked = read_verified(path)
    resolved = pathlib.Path(path).resolve()
    if not checked and resolved not in _NOTED_UNCHECKED:
        _NOTED_UNCHECKED.add(resolved)
        note(f"{path} is not a book jaxseq knows and no SHA256SUMS lists it; using it as it is")
    return data


def normalize_text(text: str) -> str:
    """Strip a leading byte-order mark and turn ``\\r\\n`` / ``\\r`` line endings into ``\\n``."""
    return text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def strip_gutenberg(text: str) -> str:
    """The text between Project Gutenberg's ``*** START OF ...`` and ``*** END OF ...`` lines.

    Text without those markers is returned unchanged.
    """
    start = _GUTENBERG_START.search(text)
    end = _GUTENBERG_END.search(text)
    begin = start.end() if start else 0
    finish = end.start() if end and end.start() > begin else len(text)
    return text[begin:finish].strip("\n") + "\n"


@dataclasses.dataclass(frozen=True)
class CharVocab:
    """A sorted character vocabulary: id ``i`` is ``chars[i]``."""

    chars: tuple[str, ...]

    @classmethod
    def from_text(cls, text: str) -> "CharVocab":
        """The sorted set of characters in ``text``."""
        return cls(tuple(sorted(set(text))))

    @property
    def size(self) -> int:
        """The number of characters ``V`` (ids run from 0 to ``V - 1``)."""
        return len(self.chars)

    @functools.cached_property
    def _index(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.chars)}

    def unknown(self, text: str) -> list[str]:
        """The distinct characters of ``text`` that are not in the vocabulary, in order of appearance."""
        return list(dict.fromkeys(c for c in text if c not in self._index))

    def encode(self, text: str) -> np.ndarray:
        """``str -> int32 [len(text)]``.

        Raises:
          ValueError: naming the characters that are not in the vocabulary.
        """
        missing = self.unknown(text)
        if missing:
            raise ValueError(
                f"characters not in the vocabulary: {', '.join(repr(c) for c in missing)}; "
                "use only characters of the training text"
            )
        return np.fromiter((self._index[c] for c in text), dtype=np.int32, count=len(text))

    def decode(self, ids) -> str:
        """``int [n] -> str``."""
        return "".join(self.chars[int(i)] for i in np.asarray(ids).reshape(-1))


class TextCorpus(NamedTuple):
    """An encoded book: ``train`` and ``val`` are ``int32`` arrays of character ids."""

    vocab: CharVocab
    train: np.ndarray
    val: np.ndarray
    source: str


def check_length(ids, seq_len: int, what: str = "corpus") -> None:
    """Raise unless ``ids`` holds at least one window of ``seq_len + 1`` characters."""
    if seq_len < 1:
        raise ValueError(f"sequence length must be >= 1, got {seq_len}")
    if len(ids) < seq_len + 1:
        raise ValueError(
            f"{what} has {len(ids)} characters, fewer than seq_len + 1 = {seq_len + 1}; "
            "use a longer text or a shorter data.seq_len"
        )


def corpus_from_text(
    text: str, val_fraction: float = 0.05, seq_len: int = 1, source: str = "<text>", train_fraction: float = 1.0
) -> TextCorpus:
    """Encode ``text`` and split off the last ``val_fraction`` of it for validation.

    ``train_fraction`` < 1 keeps only the last ``train_fraction`` of the rest for training (the
    characters right before the validation split); the vocabulary still covers the whole text.

    Raises:
      ValueError: empty text, a fraction outside its range, or a split shorter than ``seq_len + 1``.
    """
    if not text.strip():
        raise ValueError(f"{source} is empty; give a text file with some characters in it")
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    if not 0.0 < train_fraction <= 1.0:
        raise ValueError(f"train_fraction must be in (0, 1], got {train_fraction}")
    vocab = CharVocab.from_text(text)
    ids = vocab.encode(text)
    num_val = int(round(len(ids) * val_fraction))
    train, val = ids[: len(ids) - num_val], ids[len(ids) - num_val :]
    train = train[len(train) - int(round(len(train) * train_fraction)) :]
    check_length(train, seq_len, f"the training split of {source}")
    if num_val:
        check_length(val, seq_len, f"the validation split of {source}")
    return TextCorpus(vocab, train, val, source)


def load_corpus(
    path: os.PathLike, val_fraction: float = 0.05, seq_len: int = 1, gutenberg: bool = True,
    train_fraction: float = 1.0,
) -> TextCorpus:
    """Read a UTF-8 text file into a :class:`TextCorpus` (see :func:`corpus_from_text`).

    Args:
      path: the file; checked first by :func:`read_book_bytes`.
      val_fraction: the share at the end of the text held out for validation.
      seq_len: ``T``; each split must hold at least ``T + 1`` characters.
      gutenberg: cut the Project Gutenberg header and footer when present.
      train_fraction: the share of the training split kept (its end), for data-size studies.
    Raises:
      FileNotFoundError, ValueError: with a one-line message naming the file and the fix.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"text file {str(path)!r} not found; pass an existing file with --data")
    try:
        text = normalize_text(read_book_bytes(path).decode("utf-8"))
    except UnicodeDecodeError as err:
        raise ValueError(f"{path} is not UTF-8 ({err.reason} at byte {err.start}); convert it to UTF-8") from None
    if gutenberg:
        text = strip_gutenberg(text)
    return corpus_from_text(text, val_fraction, seq_len, source=str(path), train_fraction=train_fraction)


def corpus_for_config(path: os.PathLike, data) -> TextCorpus:
    """:func:`load_corpus` with the settings of a textgen config's ``data`` block
    (``book`` aside: ``path`` is the book's file)."""
    return load_corpus(path, data.val_fraction, data.seq_len, data.gutenberg, data.train_fraction)


@functools.partial(jax.jit, static_argnames=("batch_size", "seq_len"))
def sample_batch(key: jax.Array, data: jax.Array, batch_size: int, seq_len: int) -> tuple[jax.Array, jax.Array]:
    """``B`` windows at random offsets of ``data: int32 [N]``.

    Returns:
      ``(inputs, targets)``, each ``int32 [batch, seq_len]``, with ``targets[:, t] == inputs[:, t + 1]``
      and ``targets[:, -1]`` the character after the window.
    """
    offsets = jax.random.randint(key, (batch_size,), 0, data.shape[0] - seq_len)
    windows = data[offsets[:, None] + jnp.arange(seq_len + 1)]
    return windows[:, :-1], windows[:, 1:]


def sequential_windows(data, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Cut ``data`` into consecutive windows so every character but the first is a target once.

    Returns:
      ``(inputs, targets)``, each ``[num_windows, seq_len]`` (a remainder shorter than a window is dropped).
    """
    data = np.asarray(data)
    check_length(data, seq_len, "the evaluation split")
    num = (len(data) - 1) // seq_len
    inputs = data[: num * seq_len].reshape(num, seq_len)
    targets = data[1 : num * seq_len + 1].reshape(num, seq_len)
    return inputs, targets
