"""Real text that installs offline: words of several languages from ``wordfreq``.

``wordfreq`` ships frequency-ranked word lists for many languages inside its
wheel (Speer et al., built from Wikipedia, subtitles, news, books, web text
and social media). :func:`load_word_languages` turns them into a small
classification task, *which language is this word?*, for the character-level
text CNN of notebook 01 (Kim 2014's sentence CNN applied to the characters of
a word). Words that occur in the lists of two or more of the chosen languages
("in", "die", "a") are dropped, because they have no single correct answer.

:class:`CharVocabulary` maps characters to indices (0 pads, 1 stands for a
character never seen in training) and encodes words as a ``LongTensor``
``(N, max_len)``.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from course_utils.data.cache import DatasetNotFoundError

__all__ = ["DEFAULT_LANGUAGES", "WordLanguages", "load_word_languages", "CharVocabulary"]

#: Six languages written in the Latin alphabet with many shared letters: the
#: task needs letter *combinations*, not single letters.
DEFAULT_LANGUAGES: tuple[str, ...] = ("en", "de", "fr", "es", "it", "nl")

_WORDFREQ_HINT = "Install it with `pip install wordfreq` (a core dependency of course_utils: `pip install -e .`)."


@dataclass(frozen=True)
class WordLanguages:
    """Words and their language, split by word (a word is in one split only).

    Attributes:
        words_train, words_test: the words (lower case, NFC-normalised).
        y_train, y_test: language indices, ``int64`` arrays.
        languages: language codes; index ``i`` is ``languages[i]``.
        dropped_shared: how many words were dropped because several languages list them.
    """

    words_train: tuple[str, ...]
    y_train: np.ndarray
    words_test: tuple[str, ...]
    y_test: np.ndarray
    languages: tuple[str, ...]
    dropped_shared: int

    def __repr__(self) -> str:
        return (f"WordLanguages({len(self.words_train)} train / {len(self.words_test)} test words, "
                f"languages={list(self.languages)}, dropped_shared={self.dropped_shared})")


def _clean(word: str) -> str:
    return unicodedata.normalize("NFC", word.strip().lower())


def load_word_languages(
    languages: Sequence[str] = DEFAULT_LANGUAGES,
    *,
    n_per_language: int = 5000,
    min_length: int = 3,
    test_fraction: float = 0.25,
    seed: int = 0,
) -> WordLanguages:
    """The ``n_per_language`` most frequent words of each language, unambiguous ones only.

    Args:
        languages: ``wordfreq`` language codes.
        n_per_language: how far down each frequency list to read (before
            dropping shared and short words, so the classes end up slightly
            unequal; the counts are in the result).
        min_length: shorter words are dropped (too little evidence).
        test_fraction: share of each language's words held out.
        seed: the split's seed.

    Raises:
        DatasetNotFoundError: ``wordfreq`` is not installed, or a language is unknown.
    """
    try:
        import wordfreq
    except ImportError as err:  # a core dependency; the message says how to get it
        raise DatasetNotFoundError(f"The word lists come from the wordfreq package. {_WORDFREQ_HINT}") from err
    known = set(wordfreq.available_languages())
    unknown = [lang for lang in languages if lang not in known]
    if unknown:
        raise DatasetNotFoundError(f"wordfreq has no word list for {unknown}; it knows {sorted(known)}.")
    lists = {}
    for lang in languages:
        words = (_clean(w) for w in wordfreq.top_n_list(lang, n_per_language))
        lists[lang] = list(dict.fromkeys(w for w in words if len(w) >= min_length and w.isalpha()))
    counts = Counter(w for ws in lists.values() for w in ws)
    shared = {w for w, c in counts.items() if c > 1}
    rng = np.random.default_rng(seed)
    train, test = [], []
    for index, lang in enumerate(languages):
        words = [w for w in lists[lang] if w not in shared]
        order = rng.permutation(len(words))
        n_test = int(round(test_fraction * len(words)))
        test += [(words[i], index) for i in order[:n_test]]
        train += [(words[i], index) for i in order[n_test:]]

    def unpack(pairs: list[tuple[str, int]]) -> tuple[tuple[str, ...], np.ndarray]:
        return tuple(w for w, _ in pairs), np.array([y for _, y in pairs], dtype=np.int64)

    words_train, y_train = unpack(train)
    words_test, y_test = unpack(test)
    return WordLanguages(words_train, y_train, words_test, y_test, tuple(languages), len(shared))


class CharVocabulary:
    """Characters to indices: 0 is padding, 1 an unknown character, then one index per known character.

    Example::

        vocab = CharVocabulary.fit(data.words_train)
        x = vocab.encode(["hello", "welt"], max_len=16)   # (2, 16) int64
    """

    PAD, UNKNOWN = 0, 1

    def __init__(self, alphabet: Sequence[str]) -> None:
        self.alphabet = tuple(alphabet)
        self.index = {ch: i + 2 for i, ch in enumerate(self.alphabet)}

    @classmethod
    def fit(cls, words: Sequence[str], *, min_count: int = 1) -> CharVocabulary:
        """The characters seen at least ``min_count`` times in ``words``, most frequent first."""
        counts = Counter(ch for w in words for ch in w)
        return cls([ch for ch, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if c >= min_count])

    def __len__(self) -> int:
        return len(self.alphabet) + 2

    def encode(self, words: Sequence[str], *, max_len: int) -> torch.Tensor:
        """``(N, max_len)`` indices, left-aligned, zero-padded, cut after ``max_len`` characters."""
        out = torch.zeros(len(words), max_len, dtype=torch.long)
        for row, word in enumerate(words):
            ids = [self.index.get(ch, self.UNKNOWN) for ch in word[:max_len]]
            out[row, :len(ids)] = torch.tensor(ids, dtype=torch.long)
        return out

    def decode(self, ids: torch.Tensor | Sequence[int]) -> str:
        """The characters of one encoded row (padding dropped, unknown shown as ``?``)."""
        chars = {i: ch for ch, i in self.index.items()}
        return "".join(chars.get(int(i), "?") for i in ids if int(i) != self.PAD)
