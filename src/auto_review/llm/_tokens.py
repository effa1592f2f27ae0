"""Token estimation without a tokenizer: nothing is downloaded or loaded at run time.

The estimate mimics how the byte-pair tokenizers of the GPT family (cl100k/o200k), and the
similar ones of open models, first split text into pieces, then charges each piece what such
vocabularies typically spend on it:

- a run of ASCII letters: one token per started 7 letters (common words are one token, long
  identifiers split);
- a run of digits: one token per started 3 digits (the pre-tokenizers split numbers so);
- a run of ASCII punctuation: one token per started 3 characters (``()``, ``->``, ``):`` merge);
- whitespace: a single space is free (it is glued to the next word), any other run costs 1
  (a newline plus indentation is typically one token);
- a Latin letter with a diacritic: one token, and it splits the word around it;
- anything else (CJK, emoji, symbols): one token per started 3 UTF-8 bytes.

Calibration: ``tests/data/llm/token_sample.json`` holds English and German prose, Python, Go,
a unified diff, JSON, Markdown, Chinese and two of our own modules, with reference counts from
the cl100k_base tokenizer. Each estimate is within ``TOKEN_ESTIMATE_TOLERANCE`` (±25%) of its
reference and the sample total within ±10%; code tends to be overestimated, which is the safe
side for budgets. Use ``fits`` to keep that margin when packing a prompt.
"""

from __future__ import annotations

__all__ = ["TOKEN_ESTIMATE_TOLERANCE", "estimate_tokens", "fits"]

TOKEN_ESTIMATE_TOLERANCE = 0.25  # per text, against a real BPE tokenizer; see module docstring

_LETTERS_PER_TOKEN = 7
_DIGITS_PER_TOKEN = 3
_PUNCT_PER_TOKEN = 3
_BYTES_PER_TOKEN_OTHER = 3

_LETTER, _DIGIT, _PUNCT, _SPACE, _ACCENTED, _OTHER = range(6)


def estimate_tokens(text: str) -> int:
    """An estimate of the tokens ``text`` costs a GPT-style BPE tokenizer (see module doc)."""
    tokens = 0
    run_kind = -1
    run_size = 0  # characters, or UTF-8 bytes for _OTHER
    run_is_one_space = False
    for char in text:
        kind = _kind(char)
        if kind == run_kind and kind != _ACCENTED:
            run_size += len(char.encode()) if kind == _OTHER else 1
            run_is_one_space = False
            continue
        tokens += _cost(run_kind, run_size, run_is_one_space)
        run_kind = kind
        run_size = len(char.encode()) if kind == _OTHER else 1
        run_is_one_space = char == " "
    return tokens + _cost(run_kind, run_size, run_is_one_space)


def fits(estimated_tokens: int, budget: int, *, margin: float = TOKEN_ESTIMATE_TOLERANCE) -> bool:
    """Whether ``estimated_tokens`` fits ``budget`` even if the estimate is ``margin`` low."""
    return estimated_tokens * (1 + margin) <= budget


def _kind(char: str) -> int:
    if char.isascii():
        if char.isalpha():
            return _LETTER
        if char.isdigit():
            return _DIGIT
        if char.isspace():
            return _SPACE
        return _PUNCT
    if char.isspace():
        return _SPACE
    if char.isalpha() and ord(char) < 0x0370:  # Latin-1 and Latin Extended letters
        return _ACCENTED
    return _OTHER


def _cost(kind: int, size: int, one_space: bool) -> int:
    if size == 0:
        return 0
    if kind == _LETTER:
        return -(-size // _LETTERS_PER_TOKEN)
    if kind == _DIGIT:
        return -(-size // _DIGITS_PER_TOKEN)
    if kind == _PUNCT:
        return -(-size // _PUNCT_PER_TOKEN)
    if kind == _SPACE:
        return 0 if one_space else 1
    if kind == _ACCENTED:
        return size
    return -(-size // _BYTES_PER_TOKEN_OTHER)
