"""Entity-level scoring of IOB2 tag sequences: the one definition every nerbench number uses.

Spans are read the conlleval way: a chunk starts at `B-X`, or at an `I-X` that does not continue a
chunk of type X (an "ill-formed" start, counted). seqeval's default mode reads the same spans.

Schemes (SemEval-2013, as nervaluate 1.2 defines them; the tests prove agreement):
- strict: type and both boundaries match (the primary score);
- exact: both boundaries match, type ignored;
- partial: boundaries match (full credit) or overlap (half credit), type ignored;
- type: the type matches and the spans overlap.
Long-entity F1 is strict F1 restricted to entities of >= 3 tokens: recall over gold entities of
that length, precision over predicted ones. Micro averages throughout; macro F1 is the mean strict
F1 over the entity types seen in gold or predictions (seqeval's "macro avg").

A second length breakdown, scheme "paper-buckets" (`paper_buckets`, `paper_long_f1`), follows the
paper's own code (Obeidat et al., `entity_size`): its buckets are cut from GOLD spans only, and
predictions are read inside those spans; `paper_bucket_segments` defines it exactly. The paper's
long-entity figures are to be set beside `paper-buckets 3+`, not beside nerbench's `3+`.

The work is done on flat numpy arrays (one entry per token of the whole corpus), so a corpus of
half a million tokens scores in tens of milliseconds; per-sentence counts feed the bootstrap.

Resampling units: sentences by default. Given `units` (the document id of each sentence), the
per-sentence counts are summed per document first, so the bootstrap resamples documents and the
randomization test swaps whole documents: sentences of one abstract are not independent, and
treating them as if they were makes intervals too narrow and p-values too small.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from itertools import chain
from typing import Any

import numpy as np

from nerbench.errors import NerbenchError

SCHEMES = ("strict", "exact", "partial", "type")
LENGTH_BUCKETS = ("1", "2", "3+")
LONG_BUCKET = LENGTH_BUCKETS[-1]
# The metric rows of the paper's gold-span buckets (strict matching inside them): this scheme name,
# entity type ALL, length bucket one of LENGTH_BUCKETS.
PAPER_BUCKETS = "paper-buckets"
ALL = "*"  # entity_type / length_bucket of a metric row that covers everything
# The settings every stored interval is computed with, local and submitted alike.
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 0
# How score() draws them (nerbench.record.Bootstrap.draw): "joint", one draw of resamples for every
# interval; "per-metric", a draw of its own per interval from the same seed (what runs stored
# before the joint draw used, reproducible with score(..., draw="per-metric")).
BOOTSTRAP_DRAW = "joint"
DRAWS = ("joint", "per-metric")

_OUTSIDE, _BEGIN, _INSIDE = 0, 1, 2


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class PRF:
    tp: float  # partial scheme: exact matches + half of the partial ones
    n_pred: int
    n_gold: int
    precision: float
    recall: float
    f1: float

    @classmethod
    def from_counts(cls, tp: float, n_pred: int, n_gold: int) -> PRF:
        precision = tp / n_pred if n_pred else 0.0
        recall = tp / n_gold if n_gold else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
        return cls(float(tp), int(n_pred), int(n_gold), precision, recall, f1)


@dataclass(frozen=True)
class MetricRow:
    scheme: str
    entity_type: str
    length_bucket: str
    tp: float
    n_pred: int
    n_gold: int
    precision: float
    recall: float
    f1: float
    ci_low: float | None
    ci_high: float | None


@dataclass(frozen=True)
class Scores:
    strict: PRF
    exact: PRF
    partial: PRF
    type: PRF
    per_type: dict[str, PRF]
    per_length: dict[str, PRF]
    macro_f1: float
    ill_formed: dict[str, int]
    ci95: dict[str, tuple[float, float]]
    ci95_per_type: dict[str, tuple[float, float]]
    ci95_per_length: dict[str, tuple[float, float]]
    n_sentences: int
    n_tokens: int
    bootstrap: dict[str, int | str]  # resamples, seed, unit ("document" or "sentence"), units (their count)
    # The paper's gold-span buckets (see `paper_bucket_segments`), keyed like per_length.
    paper_buckets: dict[str, PRF]
    ci95_paper_buckets: dict[str, tuple[float, float]]

    @property
    def long_f1(self) -> float:
        return self.per_length[LONG_BUCKET].f1

    @property
    def paper_long_f1(self) -> float:
        """Strict F1 of the paper's bucket of gold entities of >= 3 tokens (not nerbench's long-entity F1)."""
        return self.paper_buckets[LONG_BUCKET].f1

    def to_dict(self) -> dict:
        out: dict[str, Any] = {scheme: asdict(getattr(self, scheme)) for scheme in SCHEMES}
        out["per_type"] = {name: asdict(prf) for name, prf in self.per_type.items()}
        out["per_length"] = {name: asdict(prf) for name, prf in self.per_length.items()}
        out["long_f1"] = self.long_f1
        out["paper_buckets"] = {name: asdict(prf) for name, prf in self.paper_buckets.items()}
        out["paper_long_f1"] = self.paper_long_f1
        out["macro_f1"] = self.macro_f1
        out["ill_formed"] = dict(self.ill_formed)
        out["ci95"] = {name: list(bounds) for name, bounds in self.ci95.items()}
        out["ci95_per_type"] = {name: list(b) for name, b in self.ci95_per_type.items()}
        out["ci95_per_length"] = {name: list(b) for name, b in self.ci95_per_length.items()}
        out["ci95_paper_buckets"] = {name: list(b) for name, b in self.ci95_paper_buckets.items()}
        out["n_sentences"] = self.n_sentences
        out["n_tokens"] = self.n_tokens
        out["bootstrap"] = dict(self.bootstrap)
        return out

    def metric_rows(self) -> list[MetricRow]:
        """The flat rows the store keeps: scheme x entity type x length bucket. The paper's buckets
        come last, as scheme PAPER_BUCKETS, entity type ALL, length bucket "1", "2" or "3+"."""

        def row(scheme, entity_type, bucket, prf, ci=None):
            low, high = ci if ci is not None else (None, None)
            return MetricRow(
                scheme,
                entity_type,
                bucket,
                prf.tp,
                prf.n_pred,
                prf.n_gold,
                prf.precision,
                prf.recall,
                prf.f1,
                low,
                high,
            )

        rows = [row("strict", ALL, ALL, self.strict, self.ci95["f1"])]
        rows += [row(s, ALL, ALL, getattr(self, s)) for s in SCHEMES[1:]]
        rows += [row("strict", t, ALL, prf, self.ci95_per_type.get(t)) for t, prf in self.per_type.items()]
        rows += [row("strict", ALL, b, prf, self.ci95_per_length.get(b)) for b, prf in self.per_length.items()]
        rows += [
            row(PAPER_BUCKETS, ALL, b, prf, self.ci95_paper_buckets.get(b)) for b, prf in self.paper_buckets.items()
        ]
        return rows


@dataclass(frozen=True)
class Spans:
    """Entity spans of a corpus as parallel arrays; positions are token offsets in the sentence."""

    types: tuple[str, ...]
    sentence: np.ndarray
    start: np.ndarray
    end: np.ndarray  # exclusive
    type_id: np.ndarray
    ill_formed: int  # chunks opened by an I- tag

    @property
    def length(self) -> np.ndarray:
        return self.end - self.start


@dataclass(frozen=True)
class Comparison:
    """Paired comparison of two predictions of the same gold (strict F1 by default)."""

    f1_a: float
    f1_b: float
    delta: float  # f1_a - f1_b
    ci95: tuple[float, float]  # paired bootstrap interval of delta
    p_value: float  # approximate randomization, two-sided
    resamples: int
    seed: int
    unit: str = "sentence"  # what was resampled and swapped: "document" or "sentence"
    units: int = 0  # how many of them
    seeds_a: int = 1  # seed runs pooled on each side
    seeds_b: int = 1

    @property
    def p_at_floor(self) -> bool:
        """No round was as extreme as observed: p = 1/(rounds + 1) is then a bound, not a measurement."""
        return self.p_value <= (1 + 1e-9) / (self.resamples + 1)

    @property
    def p_text(self) -> str:
        return f"< 1/{self.resamples + 1}" if self.p_at_floor else f"= {self.p_value:.4g}"

    def to_dict(self) -> dict:
        out = asdict(self)
        out["ci95"] = list(self.ci95)
        out["p_at_floor"] = self.p_at_floor
        return out


# --------------------------------------------------------------------------- encoding


class _TagTable(dict):
    """Maps tag strings to codes, each code with a prefix and a type id; shared by gold and
    predictions so that type ids agree. Unseen tags are parsed once, on first lookup."""

    def __init__(self, types: Sequence[str] = ()):
        super().__init__()
        self.types: list[str] = list(types)
        self._type_index = {name: i for i, name in enumerate(self.types)}
        self.prefix: list[int] = []
        self.type_id: list[int] = []

    def __missing__(self, tag: str) -> int:
        if tag == "O":
            prefix, type_id = _OUTSIDE, -1
        else:
            head, sep, name = tag.partition("-")
            if not sep or head not in ("B", "I") or not name or len(name.split()) != 1 or name.strip() != name:
                raise _BadTag(tag)
            prefix = _BEGIN if head == "B" else _INSIDE
            if name not in self._type_index:
                self._type_index[name] = len(self.types)
                self.types.append(name)
            type_id = self._type_index[name]
        code = self[tag] = len(self.prefix)
        self.prefix.append(prefix)
        self.type_id.append(type_id)
        return code

    def encode(self, tag_seqs: Sequence[Sequence[str]], what: str) -> tuple[np.ndarray, np.ndarray]:
        """Flatten one corpus of tags into code arrays; returns (codes, sentence lengths)."""
        try:
            try:  # one byte a code: a bytearray fills faster than numpy converts each Python int
                codes = np.frombuffer(bytearray(map(self.__getitem__, chain.from_iterable(tag_seqs))), dtype=np.uint8)
            except ValueError:  # 256 tags or more
                codes = np.fromiter(map(self.__getitem__, chain.from_iterable(tag_seqs)), dtype=np.int32)
        except (_BadTag, AttributeError, TypeError) as err:
            tag = err.args[0] if isinstance(err, _BadTag) else None
            where = _locate(tag_seqs, tag)
            raise NerbenchError(f"{what}: invalid tag {tag!r} at {where} (expected O, B-TYPE or I-TYPE)") from None
        lengths = np.fromiter(map(len, tag_seqs), dtype=np.int64, count=len(tag_seqs))
        return codes, lengths


class _BadTag(Exception):
    pass


def _locate(tag_seqs: Sequence[Sequence[str]], tag: object) -> str:
    for i, seq in enumerate(tag_seqs):
        for j, value in enumerate(seq):
            if value == tag or (tag is None and not isinstance(value, str)):
                return f"sentence {i + 1}, token {j + 1}"
    return "an unknown position"


def _spans_from_codes(codes: np.ndarray, lengths: np.ndarray, table: _TagTable):
    """Global (start, end, type) arrays of the chunks, plus the count of I- chunk starts."""
    prefix = np.asarray(table.prefix, dtype=np.int8)[codes]
    type_id = np.asarray(table.type_id, dtype=np.int32)[codes]
    first = np.zeros(len(codes), dtype=bool)
    sentence_starts = np.cumsum(lengths) - lengths
    first[sentence_starts[lengths > 0]] = True

    # A token continues the chunk before it when it is I-X right after any tag of type X.
    continues = np.zeros(len(codes), dtype=bool)
    continues[1:] = (prefix[1:] == _INSIDE) & (type_id[1:] == type_id[:-1])
    continues &= ~first
    inside = prefix != _OUTSIDE
    is_start = inside & ~continues
    is_end = inside.copy()
    is_end[:-1] &= ~continues[1:]
    starts = np.flatnonzero(is_start)
    ends = np.flatnonzero(is_end) + 1
    ill_formed = int(np.count_nonzero(prefix[starts] == _INSIDE))
    return starts, ends, type_id[starts], ill_formed, sentence_starts


def extract_spans(tag_seqs: Sequence[Sequence[str]], types: Sequence[str] = ()) -> Spans:
    """Entity spans of a corpus (list of tag sequences), read the conlleval way."""
    table = _TagTable(types)
    codes, lengths = table.encode(tag_seqs, "tags")
    starts, ends, type_ids, ill_formed, sentence_starts = _spans_from_codes(codes, lengths, table)
    sentence = np.searchsorted(sentence_starts, starts, side="right") - 1
    offset = sentence_starts[sentence]
    return Spans(tuple(table.types), sentence, starts - offset, ends - offset, type_ids, ill_formed)


# --------------------------------------------------------------------------- scoring


def _check_shapes(gold_lengths: np.ndarray, pred_lengths: np.ndarray) -> None:
    if len(gold_lengths) != len(pred_lengths):
        raise NerbenchError(f"predictions have {len(pred_lengths)} sentences, gold has {len(gold_lengths)}")
    differ = np.flatnonzero(gold_lengths != pred_lengths)
    if len(differ):
        i = differ[0]
        raise NerbenchError(
            f"sentence {i + 1}: predictions have {pred_lengths[i]} tags, gold has {gold_lengths[i]} tokens"
        )


def _sufficient_overlap(pred_start, pred_end, gold_start, gold_end) -> bool:
    # nervaluate's default threshold: the overlap covers >= 1% of the gold span (computed its way).
    overlap = min(pred_end, gold_end) - max(pred_start, gold_start)
    return overlap > 0 and (overlap / (gold_end - gold_start)) * 100.0 >= 1.0


def _overlap_credit(g_start, g_end, g_type, p_start, p_end, p_type, exact_pred):
    """Greedy matching of the not-exactly-matching predictions to overlapping gold spans.

    Follows nervaluate: predictions in order; each takes the first still-unmatched gold it overlaps
    (partial scheme), or for the type scheme the unmatched same-type gold with the closest boundaries,
    else the first unmatched other-type gold (an incorrect match that still uses up that gold).
    Returns (partial matches, type-scheme correct matches) among those predictions.
    """
    candidates = np.flatnonzero(~exact_pred)
    if len(candidates) == 0 or len(g_start) == 0:
        return 0, 0
    # Gold spans are sorted and disjoint, so the ones a prediction overlaps form a run [lo, hi).
    lo = np.searchsorted(g_end, p_start[candidates], side="right")
    hi = np.searchsorted(g_start, p_end[candidates], side="left")
    keep = lo < hi
    candidates, lo, hi = candidates[keep], lo[keep], hi[keep]
    # Most predictions overlap one gold span that no other prediction overlaps: nothing in the
    # greedy order can take it from them, so they are settled at once, in numpy. The rest (several
    # predictions in one gold span, or one across several) go through the greedy loop in order;
    # the gold spans the two groups touch are disjoint, so neither changes what the other finds.
    covering = np.zeros(len(g_start) + 1, dtype=np.int64)
    np.add.at(covering, lo, 1)
    np.add.at(covering, hi, -1)
    covering = np.cumsum(covering)
    alone = (hi - lo == 1) & (covering[lo] == 1)
    k, g = candidates[alone], lo[alone]
    overlap = np.minimum(p_end[k], g_end[g]) - np.maximum(p_start[k], g_start[g])
    sufficient = (overlap > 0) & ((overlap / (g_end[g] - g_start[g])) * 100.0 >= 1.0)
    partial = int(np.count_nonzero(sufficient))
    type_correct = int(np.count_nonzero(sufficient & (g_type[g] == p_type[k])))
    candidates, lo, hi = candidates[~alone], lo[~alone], hi[~alone]
    used_partial = np.zeros(len(g_start), dtype=bool)
    used_type = np.zeros(len(g_start), dtype=bool)
    for k, a, b in zip(candidates.tolist(), lo.tolist(), hi.tolist()):
        ps, pe, pt = int(p_start[k]), int(p_end[k]), int(p_type[k])
        first_partial = best = first_other = None
        best_distance = None
        for g in range(a, b):
            gs, ge = int(g_start[g]), int(g_end[g])
            if not _sufficient_overlap(ps, pe, gs, ge):
                continue
            if first_partial is None and not used_partial[g]:
                first_partial = g
            if used_type[g]:
                continue
            if int(g_type[g]) == pt:
                distance = abs(ps - gs) + abs(pe - ge)
                if best_distance is None or distance < best_distance:
                    best, best_distance = g, distance
            elif first_other is None:
                first_other = g
        if first_partial is not None:
            used_partial[first_partial] = True
            partial += 1
        if best is not None:
            used_type[best] = True
            type_correct += 1
        elif first_other is not None:
            used_type[first_other] = True
    return partial, type_correct


def _bucket_index(length: np.ndarray) -> np.ndarray:
    return np.minimum(length, 3) - 1  # 0 -> "1", 1 -> "2", 2 -> "3+"


def _f1(tp, n_pred, n_gold):
    """F1 = 2tp / (n_pred + n_gold), vectorised; 0 where both are empty."""
    total = n_pred + n_gold
    return np.divide(2.0 * tp, total, out=np.zeros(np.shape(total), dtype=float), where=total > 0)


def _grouped(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct per-sentence count vectors and how many sentences have each.

    Resampling sentences with replacement only matters through these counts, so a bootstrap
    draws multinomial multiplicities over the (few hundred) distinct vectors instead of indices
    over every sentence: the same distribution at a fraction of the cost.
    """
    unique, counts = np.unique(rows, axis=0, return_counts=True)
    order = np.argsort(-counts, kind="stable")  # large groups first: numpy's multinomial ends sooner
    return unique[order].astype(float), counts[order]


def bootstrap_f1_ci(per_sentence: np.ndarray, resamples: int, seed: int) -> tuple[float, float]:
    """95% percentile interval of micro F1 over resampled rows (tp, n_pred, n_gold), one row per
    sentence or per document."""
    if resamples <= 0 or len(per_sentence) == 0:
        f1 = float(_f1(*per_sentence.sum(axis=0))) if len(per_sentence) else 0.0
        return (f1, f1)
    unique, counts = _grouped(per_sentence)
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(counts.sum(), counts / counts.sum(), size=resamples)
    totals = weights @ unique
    f1 = _f1(totals[:, 0], totals[:, 1], totals[:, 2])
    low, high = np.percentile(f1, [2.5, 97.5])
    return (float(low), float(high))


# The joint bootstrap's sampler (see _resample_weights): part of what its numbers are, so fixed.
_UNIT_DRAW_FACTOR = 4  # units are drawn one by one while there are at most this many per distinct row
_UNIT_DRAW_CHUNK = 1 << 22  # unit draws held in memory at once (resamples are drawn in chunks)


def _resample_weights(counts: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """How many times each distinct row is drawn in each resample of n = counts.sum() units drawn
    uniformly with replacement: a (resamples, distinct rows) array.

    Two exact ways to draw the same distribution, taken by cost: where most rows are distinct
    (documents), n uniform unit draws counted per row (n integers a resample); where many units
    share a row (sentences), numpy's multinomial over the rows (one binomial per distinct row). The
    choice depends on (n, distinct rows) only, so a seed always gives the same numbers; units are
    laid out by distinct row, so neither depends on the order of the units.
    """
    n, k = int(counts.sum()), len(counts)
    if n > _UNIT_DRAW_FACTOR * k:
        return rng.multinomial(n, counts / n, size=resamples)
    row_of_unit = np.repeat(np.arange(k), counts)
    chunk = max(1, _UNIT_DRAW_CHUNK // n)
    parts = []
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        drawn = row_of_unit[rng.integers(0, n, size=(size, n))] + (np.arange(size) * k)[:, None]
        parts.append(np.bincount(drawn.ravel(), minlength=size * k).reshape(size, k))
    return np.concatenate(parts)


def joint_bootstrap_f1_ci(rows: np.ndarray, resamples: int, seed: int) -> list[tuple[float, float]]:
    """95% percentile intervals of several micro F1s from one bootstrap: `rows` holds one row per
    sentence (or document) and three columns (tp, n_pred, n_gold) per metric.

    Each resample draws the units once (`_resample_weights`) and every metric is computed on
    that same resample, so the intervals of overall, per-type and
    per-length F1 come from the same resamples. Each metric's interval has exactly the
    distribution `bootstrap_f1_ci` gives it alone (a joint draw's margins are the single draws);
    only the random numbers differ.
    """
    n_metrics = rows.shape[1] // 3
    if resamples <= 0 or len(rows) == 0:
        totals = rows.sum(axis=0)
        f1 = _f1(totals[0::3], totals[1::3], totals[2::3]) if len(rows) else np.zeros(n_metrics)
        return [(float(value), float(value)) for value in f1]
    unique, counts = _grouped(rows)
    totals = _resample_weights(counts, resamples, np.random.default_rng(seed)) @ unique
    f1 = _f1(totals[:, 0::3], totals[:, 1::3], totals[:, 2::3])
    low, high = np.percentile(f1, [2.5, 97.5], axis=0)
    return [(float(a), float(b)) for a, b in zip(low, high)]


# --------------------------------------------------------------------------- the paper's buckets


def paper_bucket_segments(
    gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]
) -> dict[str, list[tuple[list[str], list[str]]]]:
    """The segments of the paper's length buckets: bucket name -> [(gold tags, predicted tags)].

    This is the definition of scheme "paper-buckets" (the paper's `entity_size`, read in nerbench's
    terms); `score` computes the same numbers on flat arrays.

    - Gold entities are read the conlleval way (as for every other score). A gold entity of L tokens
      makes one segment in bucket "1", "2" or "3+" (L = 1, 2, >= 3): its gold tags, and the predicted
      tags at the same positions. The predicted tags are cut at the span's boundaries: a predicted
      entity that runs into or out of the span keeps only its part inside, and an `I-X` at the
      segment's first position opens an entity of type X, as a segment read on its own (conlleval's
      reading, and the paper's evaluator's) would have it.
    - Every gold `O` token makes a one-token segment in bucket "1": gold `O` and the predicted tag
      at that position (a predicted `B-X` or `I-X` there is a one-token predicted entity).
    - Each bucket is then scored strictly over its segments: a predicted entity of a segment counts
      when its type and both boundaries (inside the segment) equal the segment's gold entity;
      precision is over the predicted entities of the bucket's segments, recall over its gold entities.

    So, unlike nerbench's length buckets (each side's entities by their own length), the paper's
    buckets are chosen by the gold span: a prediction that runs past a gold 3-token entity still
    matches it in "3+" (its overhang is a one-token spurious entity in "1" for each gold `O` token
    it covers), and a predicted long entity over gold `O` tokens never counts in "3+". Segments keep
    the order of the corpus: sentence by sentence, by position.

    Where this departs from the paper's code: its walk opens a gold segment at `B-` only (an `I-Y`
    after `I-X` extends it), which differs from conlleval's spans only on ill-formed gold; and its
    evaluator (an early nervaluate) counts a gold entity once per overlapping predicted piece of
    two or more tokens in its recall denominator (and a one-token piece as spurious, never as
    overlapping), where nerbench counts every gold entity once.
    """
    out: dict[str, list[tuple[list[str], list[str]]]] = {name: [] for name in LENGTH_BUCKETS}
    spans = extract_spans(gold)
    if len(gold) != len(pred):
        raise NerbenchError(f"predictions have {len(pred)} sentences, gold has {len(gold)}")
    by_sentence: dict[int, list[tuple[int, int]]] = {}
    for i, start, end in zip(spans.sentence.tolist(), spans.start.tolist(), spans.end.tolist()):
        by_sentence.setdefault(i, []).append((start, end))
    for i, (g, p) in enumerate(zip(gold, pred)):
        if len(g) != len(p):
            raise NerbenchError(f"sentence {i + 1}: predictions have {len(p)} tags, gold has {len(g)} tokens")
        pieces = by_sentence.get(i, []) + [(j, j + 1) for j, tag in enumerate(g) if tag == "O"]
        for start, end in sorted(pieces):
            out[LENGTH_BUCKETS[min(end - start, 3) - 1]].append((list(g[start:end]), list(p[start:end])))
    return out


@dataclass(frozen=True)
class _Bucket:
    """Strict matching inside one paper bucket: the sentence of each gold and predicted entity."""

    g_sentence: np.ndarray
    g_hit: np.ndarray
    p_sentence: np.ndarray


def _paper_buckets(g_codes, p_codes, lengths, g_start, g_end, table: _TagTable) -> tuple[_Bucket, ...]:
    """`paper_bucket_segments` on flat code arrays, matched strictly bucket by bucket."""
    sentence_starts = np.cumsum(lengths) - lengths

    def sentence_of(position: np.ndarray) -> np.ndarray:
        return np.searchsorted(sentence_starts, position, side="right") - 1

    prefix = np.asarray(table.prefix, dtype=np.int8)
    type_of = np.asarray(table.type_id, dtype=np.int32)
    bucket_of_span = _bucket_index(g_end - g_start)
    # Bucket "1" is one-token segments only (gold O tokens and one-token gold entities): a predicted
    # entity there is a non-O predicted tag (an I- opens one), and it matches the gold entity at
    # its position when the types agree. Read token by token, without cutting segments.
    in_one = prefix[g_codes] == _OUTSIDE
    in_one[g_start[bucket_of_span == 0]] = True
    one = np.flatnonzero(in_one)
    gold_one = one[prefix[g_codes[one]] != _OUTSIDE]
    pred_one = one[prefix[p_codes[one]] != _OUTSIDE]
    p_at_gold = p_codes[gold_one]
    hit_one = (prefix[p_at_gold] != _OUTSIDE) & (type_of[p_at_gold] == type_of[g_codes[gold_one]])
    out = [_Bucket(sentence_of(gold_one), hit_one, sentence_of(pred_one))]
    for b in range(1, len(LENGTH_BUCKETS)):
        starts, ends = g_start[bucket_of_span == b], g_end[bucket_of_span == b]
        seg_lengths = (ends - starts).astype(np.int64)
        # The corpus positions of the segments' tokens, segment after segment.
        offsets = np.cumsum(seg_lengths) - seg_lengths
        index = np.repeat(starts - offsets, seg_lengths) + np.arange(int(seg_lengths.sum()))
        gs, ge, gt, _, _ = _spans_from_codes(g_codes[index], seg_lengths, table)
        ps, pe, pt, _, _ = _spans_from_codes(p_codes[index], seg_lengths, table)
        _, gi, pi = np.intersect1d(gs, ps, assume_unique=True, return_indices=True)
        hit = (ge[gi] == pe[pi]) & (gt[gi] == pt[pi])
        g_hit = np.zeros(len(gs), dtype=bool)
        g_hit[gi[hit]] = True
        out.append(_Bucket(sentence_of(index[gs]), g_hit, sentence_of(index[ps])))
    return tuple(out)


@dataclass(frozen=True)
class _Matched:
    """Per-corpus matching result the public functions build on."""

    types: list[str]
    n_sentences: int
    g_sentence: np.ndarray
    g_type: np.ndarray
    g_bucket: np.ndarray
    g_hit: np.ndarray  # gold span strictly matched
    p_sentence: np.ndarray
    p_type: np.ndarray
    p_bucket: np.ndarray
    p_hit: np.ndarray
    exact_hits: int
    partial_hits: int
    type_hits: int
    ill_formed: dict[str, int]
    n_tokens: int
    paper: tuple[_Bucket, ...]


def _match(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], types: Sequence[str]) -> _Matched:
    table = _TagTable(types)
    g_codes, g_lengths = table.encode(gold, "gold")
    p_codes, p_lengths = table.encode(pred, "predictions")
    _check_shapes(g_lengths, p_lengths)
    g_start, g_end, g_type, g_ill, sentence_starts = _spans_from_codes(g_codes, g_lengths, table)
    p_start, p_end, p_type, p_ill, _ = _spans_from_codes(p_codes, p_lengths, table)

    # Spans of one corpus are disjoint, so a global start position identifies a span.
    _, gi, pi = np.intersect1d(g_start, p_start, assume_unique=True, return_indices=True)
    same_end = g_end[gi] == p_end[pi]
    gi, pi = gi[same_end], pi[same_end]
    same_type = g_type[gi] == p_type[pi]
    g_hit = np.zeros(len(g_start), dtype=bool)
    p_hit = np.zeros(len(p_start), dtype=bool)
    g_hit[gi[same_type]] = True
    p_hit[pi[same_type]] = True
    exact_pred = np.zeros(len(p_start), dtype=bool)
    exact_pred[pi] = True

    g_sentence = np.searchsorted(sentence_starts, g_start, side="right") - 1
    p_sentence = np.searchsorted(sentence_starts, p_start, side="right") - 1
    partial, type_extra = _overlap_credit(g_start, g_end, g_type, p_start, p_end, p_type, exact_pred)
    return _Matched(
        types=list(table.types),
        n_sentences=len(g_lengths),
        g_sentence=g_sentence,
        g_type=g_type,
        g_bucket=_bucket_index(g_end - g_start),
        g_hit=g_hit,
        p_sentence=p_sentence,
        p_type=p_type,
        p_bucket=_bucket_index(p_end - p_start),
        p_hit=p_hit,
        exact_hits=len(pi),
        partial_hits=partial,
        type_hits=int(np.count_nonzero(same_type)) + type_extra,
        ill_formed={"gold": g_ill, "pred": p_ill},
        n_tokens=int(g_lengths.sum()),
        paper=_paper_buckets(g_codes, p_codes, g_lengths, g_start, g_end, table),
    )


@dataclass(frozen=True)
class _Units:
    """The resampling unit of each sentence: its index among the distinct unit ids."""

    unit: str  # "document" or "sentence"
    of_sentence: np.ndarray | None  # None: every sentence is its own unit
    count: int


def _units(units: Sequence[str] | None, n_sentences: int) -> _Units:
    if units is None:
        return _Units("sentence", None, n_sentences)
    if isinstance(units, str) or len(units) != n_sentences:
        given = "a string" if isinstance(units, str) else f"{len(units)} ids"
        raise NerbenchError(f"units: {given}, but gold has {n_sentences} sentences (one document id per sentence)")
    index: dict[str, int] = {}
    of_sentence = np.fromiter((index.setdefault(u, len(index)) for u in units), dtype=np.int64, count=n_sentences)
    return _Units("document", of_sentence, len(index))


def _per_sentence(m: _Matched, gold_mask=None, pred_mask=None, units: _Units | None = None) -> np.ndarray:
    """(tp, n_pred, n_gold) per sentence for strict matching, optionally restricted by masks; per
    unit (document) instead when `units` groups the sentences."""
    gm = np.ones(len(m.g_hit), dtype=bool) if gold_mask is None else gold_mask
    pm = np.ones(len(m.p_hit), dtype=bool) if pred_mask is None else pred_mask
    g_unit, p_unit, n = m.g_sentence, m.p_sentence, m.n_sentences
    if units is not None and units.of_sentence is not None:
        g_unit, p_unit, n = units.of_sentence[g_unit], units.of_sentence[p_unit], units.count
    return np.stack(
        [
            np.bincount(g_unit[gm & m.g_hit], minlength=n),
            np.bincount(p_unit[pm], minlength=n),
            np.bincount(g_unit[gm], minlength=n),
        ],
        axis=1,
    )


def _bucket_per_unit(bucket: _Bucket, m: _Matched, units: _Units) -> np.ndarray:
    """(tp, n_pred, n_gold) of one paper bucket per sentence, or per document when `units` groups them."""
    g_unit, p_unit, n = bucket.g_sentence, bucket.p_sentence, m.n_sentences
    if units.of_sentence is not None:
        g_unit, p_unit, n = units.of_sentence[g_unit], units.of_sentence[p_unit], units.count
    return np.stack(
        [
            np.bincount(g_unit[bucket.g_hit], minlength=n),
            np.bincount(p_unit, minlength=n),
            np.bincount(g_unit, minlength=n),
        ],
        axis=1,
    )


def _strict(m: _Matched, gold_mask=None, pred_mask=None) -> PRF:
    gm = slice(None) if gold_mask is None else gold_mask
    pm = slice(None) if pred_mask is None else pred_mask
    return PRF.from_counts(int(np.count_nonzero(m.g_hit[gm])), len(m.p_hit[pm]), len(m.g_hit[gm]))


def sentence_counts(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> np.ndarray:
    """Strict (tp, n_pred, n_gold) per sentence: what the bootstrap resamples."""
    return _per_sentence(_match(gold, pred, ()))


def score(
    gold: Sequence[Sequence[str]],
    pred: Sequence[Sequence[str]],
    *,
    types: Sequence[str] = (),
    bootstrap: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    units: Sequence[str] | None = None,
    draw: str = BOOTSTRAP_DRAW,
) -> Scores:
    """Score predicted tag sequences against gold ones (same sentences, same lengths).

    `types` fixes the order of per-type results (other types found are appended in order of
    appearance); `bootstrap` is the number of resamples for the 95% intervals (0: none).
    `units`: the document id of each gold sentence; the intervals then resample documents
    (sentences otherwise). The point estimates do not depend on it. `draw` (one of DRAWS): "joint"
    takes every interval from one draw of resamples, "per-metric" draws each interval's resamples
    anew from `seed` (the intervals of runs stored before the joint draw).
    """
    if draw not in DRAWS:
        raise NerbenchError(f"draw: {draw!r} is not one of {', '.join(DRAWS)}")
    m = _match(gold, pred, types)
    unit = _units(units, m.n_sentences)
    n_pred, n_gold = len(m.p_hit), len(m.g_hit)
    strict = _strict(m)
    exact = PRF.from_counts(m.exact_hits, n_pred, n_gold)
    partial = PRF.from_counts(m.exact_hits + 0.5 * m.partial_hits, n_pred, n_gold)
    type_scheme = PRF.from_counts(m.type_hits, n_pred, n_gold)

    present = np.bincount(np.concatenate([m.g_type, m.p_type]), minlength=len(m.types)) > 0
    type_ids = np.flatnonzero(present).tolist()
    # Every interval comes from one joint bootstrap: one row of counts per unit, a block of
    # (tp, n_pred, n_gold) per metric: overall, each type, each length bucket, each paper bucket.
    resampled = bootstrap > 0
    blocks = [_per_sentence(m, units=unit)] if resampled else []
    per_type = {}
    for i in type_ids:
        gm, pm = m.g_type == i, m.p_type == i
        per_type[m.types[i]] = _strict(m, gm, pm)
        if resampled:
            blocks.append(_per_sentence(m, gm, pm, unit))
    per_length = {}
    for b, name in enumerate(LENGTH_BUCKETS):
        gm, pm = m.g_bucket == b, m.p_bucket == b
        per_length[name] = _strict(m, gm, pm)
        if resampled:
            blocks.append(_per_sentence(m, gm, pm, unit))
    paper = {}
    for name, bucket in zip(LENGTH_BUCKETS, m.paper):
        paper[name] = PRF.from_counts(int(np.count_nonzero(bucket.g_hit)), len(bucket.p_sentence), len(bucket.g_hit))
        if resampled:
            blocks.append(_bucket_per_unit(bucket, m, unit))
    if not resampled:
        # No resamples: each interval is its point F1, from the totals the rows would sum to.
        prfs = [strict, *per_type.values(), *per_length.values(), *paper.values()]
        intervals = iter([(f1, f1) for f1 in (float(_f1(p.tp, p.n_pred, p.n_gold)) for p in prfs)])
    elif draw == "joint":
        intervals = iter(joint_bootstrap_f1_ci(np.hstack(blocks), bootstrap, seed))
    else:
        intervals = iter([bootstrap_f1_ci(block, bootstrap, seed) for block in blocks])
    ci_overall = next(intervals)
    ci_type = {name: next(intervals) for name in per_type}
    ci_length = {name: next(intervals) for name in per_length}
    ci_paper = {name: next(intervals) for name in paper}
    macro = float(np.mean([prf.f1 for prf in per_type.values()])) if per_type else 0.0
    return Scores(
        strict=strict,
        exact=exact,
        partial=partial,
        type=type_scheme,
        per_type=per_type,
        per_length=per_length,
        macro_f1=macro,
        ill_formed=m.ill_formed,
        ci95={
            "f1": ci_overall,
            "long_f1": ci_length[LONG_BUCKET],
        },
        ci95_per_type=ci_type,
        ci95_per_length=ci_length,
        n_sentences=m.n_sentences,
        n_tokens=m.n_tokens,
        bootstrap={"resamples": bootstrap, "seed": seed, "unit": unit.unit, "units": unit.count},
        paper_buckets=paper,
        ci95_paper_buckets=ci_paper,
    )


def compare(
    gold: Sequence[Sequence[str]],
    pred_a: Sequence[Sequence[str]],
    pred_b: Sequence[Sequence[str]],
    *,
    resamples: int = 10000,
    seed: int = 0,
    long_only: bool = False,
    units: Sequence[str] | None = None,
) -> Comparison:
    """Strict-F1 difference of two predictions of the same gold, with a paired bootstrap
    interval and an approximate-randomization p-value (two-sided): `compare_seeds` with one
    seed a side.

    `long_only` compares long-entity F1 (entities of >= 3 tokens) instead; `units` (the document
    id of each sentence) makes documents, not sentences, what is resampled and swapped.
    """
    return compare_seeds(gold, [pred_a], [pred_b], resamples=resamples, seed=seed, long_only=long_only, units=units)


def compare_seeds(
    gold: Sequence[Sequence[str]],
    seeds_a: Sequence[Sequence[Sequence[str]]],
    seeds_b: Sequence[Sequence[Sequence[str]]],
    *,
    resamples: int = 10000,
    seed: int = 0,
    long_only: bool = False,
    units: Sequence[str] | None = None,
) -> Comparison:
    """Paired comparison of two models with one or more seed runs each (every run a list of tag
    sequences over the same gold): strict F1, or long-entity F1 with `long_only`.

    It is one of `compare_metrics`' two comparisons, so each has the same numbers whether it is
    asked for alone or with the other.
    """
    metric = "long_f1" if long_only else "f1"
    return compare_metrics(gold, seeds_a, seeds_b, resamples=resamples, seed=seed, units=units, metrics=(metric,))[
        metric
    ]


COMPARED_METRICS = ("f1", "long_f1")  # strict F1 over all entities, and over entities of >= 3 tokens


def compare_metrics(
    gold: Sequence[Sequence[str]],
    seeds_a: Sequence[Sequence[Sequence[str]]],
    seeds_b: Sequence[Sequence[Sequence[str]]],
    *,
    resamples: int = 10000,
    seed: int = 0,
    units: Sequence[str] | None = None,
    metrics: Sequence[str] = COMPARED_METRICS,
) -> dict[str, Comparison]:
    """Paired comparisons of strict F1 and long-entity F1 (`metrics`, of COMPARED_METRICS) of two
    models with one or more seed runs each.

    Each side's row of a unit (sentence, or document when `units` is given) is the mean over its
    seeds of (tp, n_pred); gold counts are shared. So the point estimate is the F1 pooled over the
    seeds, the bootstrap resamples units jointly for every seed, and approximate randomization
    swaps a unit's averaged rows between the sides. Each run is matched once for both metrics;
    each metric draws its resamples and swaps from `seed`, over the distinct rows of its own counts
    (rows of both metrics together are several times as many distinct ones, and the draws cost
    in proportion to them).
    """
    if resamples <= 0:
        raise NerbenchError("compare needs at least one resample")
    unknown = [m for m in metrics if m not in COMPARED_METRICS]
    if unknown or not metrics:
        raise NerbenchError(f"metrics: {unknown or 'none'} (compared are {', '.join(COMPARED_METRICS)})")
    for name, runs in (("seeds_a", seeds_a), ("seeds_b", seeds_b)):
        if len(runs) == 0:
            raise NerbenchError(f"{name}: no predictions (give one list of tag sequences per seed)")
        if any(len(run) and isinstance(run[0], str) for run in runs):
            raise NerbenchError(f"{name}: give one list of tag sequences per seed, not a single run's tags")
    unit = _units(units, len(gold))
    long = len(LENGTH_BUCKETS) - 1

    def side(runs) -> np.ndarray:
        """Per unit: mean (tp, n_pred) over the runs, then the gold count; all entities, then long ones."""
        summed = None
        for run in runs:
            m = _match(gold, run, ())
            rows = np.hstack(
                [_per_sentence(m, units=unit), _per_sentence(m, m.g_bucket == long, m.p_bucket == long, unit)]
            )
            summed = rows.astype(float) if summed is None else summed + rows
        assert summed is not None
        return summed / len(runs)

    a, b = side(seeds_a), side(seeds_b)
    out = {}
    for metric, columns in zip(COMPARED_METRICS, ([0, 1, 2], [3, 4, 5])):
        if metric in metrics:
            # Columns: tp_a, pred_a, tp_b, pred_b, gold (the same for both sides).
            rows = np.column_stack([a[:, columns[:2]], b[:, columns[:2]], a[:, columns[2]]])
            out[metric] = _paired_test(rows, resamples, seed)
    return {
        metric: Comparison(
            **test,
            resamples=resamples,
            seed=seed,
            unit=unit.unit,
            units=unit.count,
            seeds_a=len(seeds_a),
            seeds_b=len(seeds_b),
        )
        for metric, test in out.items()
    }


def _fair_binomial(rng: np.random.Generator, n: np.ndarray, draws: int) -> np.ndarray:
    """`draws` rows of Binomial(n_i, 1/2) draws, one column per n_i: where n_i <= 64, the number of
    ones among the low n_i bits of one random 64-bit word (n_i fair coins), a tenth of the cost of
    numpy's binomial sampler, which serves the larger n_i."""
    out = np.empty((draws, len(n)), dtype=np.int64)
    small = n <= 64
    mask = np.where(n[small] >= 64, ~np.uint64(0), (np.uint64(1) << n[small].astype(np.uint64)) - np.uint64(1))
    out[:, small] = np.bitwise_count(rng.bit_generator.random_raw((draws, int(small.sum()))) & mask)
    out[:, ~small] = rng.binomial(n[~small], 0.5, size=(draws, int((~small).sum())))
    return out


def _paired_test(rows: np.ndarray, resamples: int, seed: int) -> dict[str, Any]:
    """F1 of each side, their difference, its bootstrap interval and its approximate-randomization
    p-value, from rows (tp_a, pred_a, tp_b, pred_b, gold), one a unit."""
    unique, counts = _grouped(rows)

    def delta(totals):
        return _f1(totals[..., 0], totals[..., 1], totals[..., 4]) - _f1(totals[..., 2], totals[..., 3], totals[..., 4])

    total = rows.sum(axis=0).astype(float)
    observed = float(delta(total))
    rng = np.random.default_rng(seed)
    boot = delta(_resample_weights(counts, resamples, rng) @ unique)
    low, high = np.percentile(boot, [2.5, 97.5])

    # Approximate randomization: each unit's two outputs are swapped with probability 1/2;
    # within a group of identical units only the number swapped matters (binomial).
    swapped_rows = unique[:, [2, 3, 0, 1, 4]]
    swaps = _fair_binomial(rng, counts, resamples)
    shuffled = (counts - swaps) @ unique + swaps @ swapped_rows
    extreme = np.count_nonzero(np.abs(delta(shuffled)) >= abs(observed) - 1e-12)
    return {
        "f1_a": float(_f1(total[0], total[1], total[4])),
        "f1_b": float(_f1(total[2], total[3], total[4])),
        "delta": observed,
        "ci95": (float(low), float(high)),
        "p_value": float((extreme + 1) / (resamples + 1)),
    }
