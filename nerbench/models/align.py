"""Word <-> sub-token alignment for token classification, with overlapping windows.

Words are tokenized one sentence at a time with the fast tokenizer's `is_split_into_words`, so a
sub-token never spans two words; byte-level BPE tokenizers get each word with its leading space
(`tokenize_words`), so the sub-tokens are those of the running text. A sentence longer than the
model window is cut, at word boundaries, into windows that overlap by about half a window; every
word is *owned* by exactly one window, the one where it has the most context on both sides (a real
sentence edge counts as unlimited context), so nothing is truncated and nothing is predicted twice.

A word that tokenizes to zero sub-tokens (zero-width or control characters, lone combining marks)
has nothing to predict from: it is tagged `O` (`EMPTY_WORD_TAG`) and counted, never dropped.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace

from nerbench.recipes import LabelPolicy

IGNORE = -100  # the label id torch's cross-entropy skips
EMPTY_WORD_TAG = "O"


def words_with_spaces(words: Sequence[str]) -> list[str]:
    """Words as they appear in running text: a space before every word but the first.

    A byte-level BPE tokenizer (SmolLM2's, Llama-3's, GPT-2's) marks a word start by its
    leading space, and with `is_split_into_words=True` it adds none (`add_prefix_space` has no
    effect), so the bare words would be split as if glued together. Feeding these pieces to
    `tokenizer(..., is_split_into_words=True)` gives the sub-tokens of the space-joined sentence
    while `word_ids()` still maps each sub-token to its word.
    """
    return [w if i == 0 else " " + w for i, w in enumerate(words)]


_PROBE = ["hello", "world"]


def needs_leading_spaces(tokenizer) -> bool:
    """Whether words split with `is_split_into_words` must carry their leading space.

    True when the bare words tokenize differently from the running text and the spaced words
    tokenize like it (byte-level BPE). False for WordPiece (BERT), where both agree, and for
    SentencePiece-style tokenizers that add their own word marker, where a space would add one
    more.
    """
    kw = {"add_special_tokens": False}
    joined = tokenizer(" ".join(_PROBE), **kw)["input_ids"]
    bare = tokenizer([_PROBE], is_split_into_words=True, **kw)["input_ids"][0]
    spaced = tokenizer([words_with_spaces(_PROBE)], is_split_into_words=True, **kw)["input_ids"][0]
    return bare != joined and spaced == joined


def tokenize_words(tokenizer, sentences: Sequence[Sequence[str]], **kwargs):
    """`tokenizer` over word-tokenized sentences so that the sub-tokens are those of the running
    text: words get their leading space where the tokenizer needs it (`needs_leading_spaces`)."""
    pieces = words_with_spaces if needs_leading_spaces(tokenizer) else list
    return tokenizer([pieces(s) for s in sentences], is_split_into_words=True, **kwargs)


@dataclass(frozen=True)
class Window:
    """One model input: special tokens included, plus the words this window owns."""

    sentence: int  # index of the sentence in the encoded batch
    input_ids: tuple[int, ...]
    owned: tuple[tuple[int, tuple[int, ...]], ...]  # (word index, positions of its sub-tokens)


@dataclass(frozen=True)
class Encoded:
    windows: tuple[Window, ...]
    n_words: tuple[int, ...]  # per sentence
    empty_words: tuple[tuple[int, int], ...]  # (sentence, word) with no sub-token: tagged O
    clipped_words: tuple[tuple[int, int], ...]  # words longer than a whole window: first part kept

    @property
    def n_windows(self) -> int:
        return len(self.windows)


def special_tokens(tokenizer) -> tuple[list[int], list[int]]:
    """The ids a tokenizer puts before and after one sequence (e.g. [CLS] ... [SEP])."""
    enc = tokenizer([["a"]], is_split_into_words=True, add_special_tokens=True)
    ids, word_ids = enc["input_ids"][0], enc.word_ids(0)
    inner = [i for i, w in enumerate(word_ids) if w is not None]
    return list(ids[: inner[0]]), list(ids[inner[-1] + 1 :])


def _window_spans(counts: Sequence[int], budget: int, overlap: int) -> list[tuple[int, int]]:
    """Word ranges [start, end) whose sub-tokens fit `budget`, consecutive ones overlapping."""
    n = len(counts)
    spans: list[tuple[int, int]] = []
    start = 0
    while True:
        end, used = start, 0
        while end < n and used + counts[end] <= budget:
            used += counts[end]
            end += 1
        if end == start:  # a single word longer than the window (its sub-tokens were clipped)
            end = start + 1
        spans.append((start, end))
        if end >= n:
            return spans
        # Step back from `end` while the shared part stays within `overlap` sub-tokens and
        # leaves room for the next word, so every window reaches further than the last.
        limit = min(overlap, budget - counts[end])
        nxt, shared = end, 0
        while nxt - 1 > start and shared + counts[nxt - 1] <= limit:
            nxt -= 1
            shared += counts[nxt]
        start = nxt


def _owners(spans: list[tuple[int, int]], counts: Sequence[int], n_words: int) -> list[int]:
    """For each word, the window where its distance to a cut window edge is largest."""
    prefix = [0]
    for c in counts:
        prefix.append(prefix[-1] + c)
    owner = [0] * n_words
    best = [-1.0] * n_words
    for k, (ws, we) in enumerate(spans):
        for w in range(ws, we):
            left = float("inf") if ws == 0 else prefix[w] - prefix[ws]
            right = float("inf") if we == n_words else prefix[we] - prefix[w + 1]
            context = min(left, right)
            if context > best[w]:  # ties: the earlier window
                best[w], owner[w] = context, k
    return owner


def encode(
    sentences: Sequence[Sequence[str]],
    tokenizer,
    max_length: int,
    overlap: int | None = None,
) -> Encoded:
    """Model inputs for word-tokenized sentences, never truncating a sentence.

    `max_length` counts special tokens; `overlap` (sub-tokens shared by consecutive windows)
    defaults to half the room left after them.
    """
    prefix, suffix = special_tokens(tokenizer)
    budget = max_length - len(prefix) - len(suffix)
    if budget < 2:
        raise ValueError(f"max_length {max_length} leaves no room for words")
    overlap = budget // 2 if overlap is None else overlap
    if not 0 <= overlap < budget:
        raise ValueError(f"overlap {overlap} must be in [0, {budget})")

    windows: list[Window] = []
    empty: list[tuple[int, int]] = []
    clipped: list[tuple[int, int]] = []
    n_words = tuple(len(s) for s in sentences)
    nonempty = [i for i, s in enumerate(sentences) if len(s)]
    # Byte-level BPE tokenizers (Llama-3, SmolLM2) need each word's leading space to split it as
    # in running text; WordPiece and SentencePiece tokenizers get the bare words, as before.
    if nonempty:
        enc = tokenize_words(tokenizer, [list(sentences[i]) for i in nonempty], add_special_tokens=False)
    for j, s in enumerate(nonempty):
        ids = enc["input_ids"][j]
        pieces: list[list[int]] = [[] for _ in range(n_words[s])]
        for token_id, w in zip(ids, enc.word_ids(j)):
            pieces[w].append(token_id)
        for w, p in enumerate(pieces):
            if not p:
                empty.append((s, w))
            elif len(p) > budget:
                clipped.append((s, w))
                del p[budget:]
        counts = [len(p) for p in pieces]
        spans = _window_spans(counts, budget, overlap)
        owner = _owners(spans, counts, n_words[s])
        for k, (ws, we) in enumerate(spans):
            input_ids = list(prefix)
            owned = []
            for w in range(ws, we):
                pos = tuple(range(len(input_ids), len(input_ids) + counts[w]))
                input_ids.extend(pieces[w])
                if owner[w] == k and counts[w]:
                    owned.append((w, pos))
            input_ids.extend(suffix)
            windows.append(Window(s, tuple(input_ids), tuple(owned)))
    return Encoded(tuple(windows), n_words, tuple(empty), tuple(clipped))


def per_sentence(encoded: Encoded) -> list[Encoded]:
    """The encoding of each sentence on its own (sentence index 0), to be joined into batches."""
    windows: dict[int, list[Window]] = defaultdict(list)
    for window in encoded.windows:
        windows[window.sentence].append(replace(window, sentence=0))
    empty: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for s, word in encoded.empty_words:
        empty[s].append((0, word))
    clipped: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for s, word in encoded.clipped_words:
        clipped[s].append((0, word))
    return [Encoded(tuple(windows[s]), (n,), tuple(empty[s]), tuple(clipped[s])) for s, n in enumerate(encoded.n_words)]


def join(parts: Sequence[Encoded]) -> Encoded:
    """One batch's encoding from single-sentence encodings (`per_sentence`), in the given order."""
    return Encoded(
        tuple(replace(w, sentence=i) for i, part in enumerate(parts) for w in part.windows),
        tuple(n for part in parts for n in part.n_words),
        tuple((i, w) for i, part in enumerate(parts) for _, w in part.empty_words),
        tuple((i, w) for i, part in enumerate(parts) for _, w in part.clipped_words),
    )


def training_labels(window: Window, tag_ids: Sequence[int], policy: LabelPolicy) -> list[int]:
    """Per-position label ids: the word's tag on its first sub-token (or on all, for "majority")."""
    labels = [IGNORE] * len(window.input_ids)
    for w, positions in window.owned:
        for p in positions if policy == "majority" else positions[:1]:
            labels[p] = tag_ids[w]
    return labels


def decode(
    encoded: Encoded,
    window_predictions: Sequence[Sequence[int]],
    id2label: Sequence[str],
    policy: LabelPolicy,
) -> list[list[str]]:
    """Word tags from per-position predicted label ids (one sequence per window).

    "first": the prediction on the word's first sub-token. "majority": the most frequent
    prediction over its sub-tokens, ties going to the label seen first (the first sub-token's
    when it is among the tied ones), as the paper's `Counter.most_common` does.
    """
    tags = [[EMPTY_WORD_TAG] * n for n in encoded.n_words]
    for window, preds in zip(encoded.windows, window_predictions, strict=True):
        row = tags[window.sentence]
        for w, positions in window.owned:
            if policy == "first":
                row[w] = id2label[preds[positions[0]]]
            else:
                label_id = Counter(preds[p] for p in positions).most_common(1)[0][0]
                row[w] = id2label[label_id]
    return tags
