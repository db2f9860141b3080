"""Built-in mappers over lines and files: lines, words, wordfreq, grep, sha256, size.

On a files input, `lines`, `words`, `wordfreq` and `grep` read every file of the chunk
(.gz decompressed); `sha256` and `size` only make sense there. A file that cannot be
read fails its chunk with an error that names the file.
"""

from __future__ import annotations

import collections
import hashlib
import os
import re

from . import _lines
from ._model import ItemError

# Words for wordfreq: runs of letters, digits and underscores, lowercased.
WORD = re.compile(r"\w+")

# Bytes hashed per read: the file is never held whole.
HASH_BLOCK = 1 << 20


def _each_file(paths, fn):
    for i, path in enumerate(paths):
        try:
            yield fn(path)
        except OSError as exc:
            raise ItemError(i, path, exc.strerror or str(exc), whole=True) from None


def lines_of(paths):
    """Every line of every file, in order, read as they are needed."""
    for i, path in enumerate(paths):
        try:
            yield from _lines.file_lines(path)
        except OSError as exc:
            raise ItemError(i, path, exc.strerror or str(exc), whole=True) from None


def count_lines(lines) -> int:
    return sum(1 for _ in lines)


def count_words(lines) -> int:
    return sum(len(line.split()) for line in lines)


def word_counts(lines) -> dict:
    counts = collections.Counter()
    for line in lines:
        counts.update(WORD.findall(line.lower()))
    return dict(counts)


def top_words(counts: dict, k: int) -> dict:
    """The k most frequent words (all if k is 0), ties in alphabetical order."""
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return dict(ranked[:k] if k else ranked)


def grep_lines(regex: re.Pattern):
    def body(lines):
        return [(i, line) for i, line in enumerate(lines) if regex.search(line)]
    return body


def grep_files(regex: re.Pattern):
    def one(path):
        return [(path, n, line) for n, line in enumerate(_lines.file_lines(path), 1)
                if regex.search(line)]

    def body(paths):
        return [m for matches in _each_file(paths, one) for m in matches]
    return body


def relocate_matches(matches, offset: int):
    """A chunk's line numbers made positions in the whole input."""
    return [(i + offset, line) for i, line in matches] if offset else matches


def sha256_files(paths):
    def one(path):
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(HASH_BLOCK), b""):
                h.update(block)
        return (h.hexdigest(), path)
    return list(_each_file(paths, one))


def size_files(paths):
    return list(_each_file(paths, lambda p: (os.path.getsize(p), p)))
