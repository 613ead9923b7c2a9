"""SHA-256 checksums: the values the project ships for the data files it knows, and ``SHA256SUMS`` files.

One rule for every loader (:mod:`jaxseq.data.text`, :mod:`jaxseq.data.graphs`):

- A file the project knows (the Planetoid files, the Gutenberg books in :data:`KNOWN_SHA256`) is
  always checked against the SHA-256 shipped here, wherever it is read from and whether or not its
  directory holds a ``SHA256SUMS``; an edited or truncated copy is refused with one line naming it.
- A ``SHA256SUMS`` beside the data (the ``sha256sum -c`` format) is checked too, for every file it
  lists.
- Any other file (a user's own book) is accepted as it is, and the loader says so once.
"""

import hashlib
import os
import pathlib
import re
from typing import Optional

# path relative to a data directory (the layout of ../shared/data) -> SHA-256 of the file as distributed
KNOWN_SHA256 = {
    "books/book_EN_democracy_in_the_US.txt": "1ba23c5acbb00b0ffbfe48be30273f5b965eaedca5e8dfce55253e6bb24f2ca5",
    "books/book_EN_grimms_fairy_tails.txt": "e6439bd511820742e842e21b75e89b394d3809eec82ca56b506c39ff39d4a7d6",
    "planetoid/ind.citeseer.allx": "2ac30345d95c9ec933a817ee0bdd6a5f077f8c184a20e696910192d534414668",
    "planetoid/ind.citeseer.ally": "f704b2d986dde6c2669934de1f3ae5696a6cf9455c0f6b2646a2d135ea0a1c95",
    "planetoid/ind.citeseer.graph": "d79a4ef9d3e7169aee8946145f6b7306e35bc79bffad26346cfb94e10e9912a7",
    "planetoid/ind.citeseer.test.index": "2af990671580b6b2df5d158d1038f8292e30c9cd821b5453f399659b25b723d4",
    "planetoid/ind.citeseer.tx": "539a8906a2da97628d212f2fdd668c109a8b3f0d36574b59e5d3fd5b5303da21",
    "planetoid/ind.citeseer.ty": "55e5bd1ba1e733a04598753ad1a8d57957f4b8f89e74519f41f4f4938767e4ce",
    "planetoid/ind.citeseer.x": "d20de19150741e555de0ed037195630fc194114ebc7fd72ced62810148aa22f6",
    "planetoid/ind.citeseer.y": "8ba87e515d8e3ee3cf52f6d2c5b86aa73f11ecad825a808455209ec26cd54924",
    "planetoid/ind.cora.allx": "9419ba2f26f5c35243db64aba110e0f35a04851609e0dc5433450676ca6b8543",
    "planetoid/ind.cora.ally": "2b998f5cc7fedc86e7f97ca2498f47a1ffc1462c29e2d578b23bf3f62b6e7d71",
    "planetoid/ind.cora.graph": "58f13302f39dde8852dad6fe6d15b89b077b6d7f837626bce671ef80344b383d",
    "planetoid/ind.cora.test.index": "297ce89af2b51a6a194181c7dbe1796c6a1cf9cd9349a88383b1b1e227867875",
    "planetoid/ind.cora.tx": "b9afbaa4a400df991f6f02ef677e1e44da55ffc04801fd02f9e673987829226a",
    "planetoid/ind.cora.ty": "41f5ac76596a1699cc33f53084a2419e92961c42bb75f36fc38e616d348532ad",
    "planetoid/ind.cora.x": "23cfa55d91c6f624233f5eb7b6e3f141f1bd2b2ae39608a63cf5d084bb27baab",
    "planetoid/ind.cora.y": "94465c14eb53e04ca262198dcbb2521ee8af60fb3f3d546cd6ca24a511b0e7d1",
}

_SUMS_LINE = re.compile(r"^([0-9a-fA-F]{64}) [ *](.+)$")


class ChecksumError(ValueError):
    """A data file's SHA-256 differs from the one the project ships or ``SHA256SUMS`` lists."""


def known_sha256(path: os.PathLike) -> Optional[str]:
    """The shipped SHA-256 of a file the project knows, found by its file name, or None."""
    name = pathlib.PurePath(path).name
    return next((digest for known, digest in KNOWN_SHA256.items() if pathlib.PurePath(known).name == name), None)


def read_sha256sums(path: os.PathLike) -> dict[str, str]:
    """A ``SHA256SUMS`` file as ``{normalised relative path: lower-case hex digest}``.

    Accepts what ``sha256sum`` writes and ``sha256sum -c`` reads: ``<64 hex digits>  <name>`` or
    ``<64 hex digits> *<name>`` (binary marker), blank lines and ``#`` comment lines.

    Raises:
      ValueError: any other line, naming the file and the line number.
    """
    path = pathlib.Path(path)
    sums = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _SUMS_LINE.match(line.rstrip())
        if match is None:
            raise ValueError(f"{path} line {number} is not '<sha256>  <file>' (as sha256sum writes it): {line.strip()[:60]!r}")
        sums[os.path.normpath(match.group(2))] = match.group(1).lower()
    return sums


def listed_sha256(path: os.PathLike) -> Optional[tuple[str, pathlib.Path]]:
    """``(digest, SHA256SUMS path)`` from the nearest ``SHA256SUMS`` above ``path`` that lists it, or None.

    Names in ``SHA256SUMS`` are relative to its directory. Raises ValueError on a malformed line.
    """
    path = pathlib.Path(path).resolve()
    for directory in path.parents:
        sums = directory / "SHA256SUMS"
        if sums.is_file():
            digest = read_sha256sums(sums).get(os.path.normpath(path.relative_to(directory)))
            if digest is not None:
                return digest, sums
    return None


def expected_sha256(path: os.PathLike) -> list[tuple[str, str]]:
    """Every checksum that names ``path``, as ``[(hex digest, where it comes from)]``.

    The one jaxseq ships (for a file it knows, by name) and the one of the nearest ``SHA256SUMS``
    that lists it. Empty for a user's own file.
    """
    expected = []
    shipped = known_sha256(path)
    if shipped is not None:
        expected.append((shipped, "jaxseq (jaxseq/data/checksums.py)"))
    listed = listed_sha256(path)
    if listed is not None:
        expected.append((listed[0], str(listed[1])))
    return expected


def read_verified(path: os.PathLike) -> tuple[bytes, bool]:
    """The bytes of ``path`` after checking them against every checksum that names it.

    Returns:
      ``(data, checked)``: ``checked`` is False when no checksum names the file (a user's own file).
    Raises:
      FileNotFoundError: the file is missing.
      ChecksumError: a checksum differs, naming the file and where the expected value comes from.
      ValueError: a malformed ``SHA256SUMS`` line (see :func:`read_sha256sums`).
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found")
    expected = expected_sha256(path)
    data = path.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    for digest, source in expected:
        if actual != digest:
            raise ChecksumError(
                f"{path} has SHA-256 {actual}, {source} expects {digest}: the file is corrupt or was edited; "
                "fetch a fresh copy"
            )
    return data, bool(expected)
