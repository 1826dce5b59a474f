"""Generative BIO tagging, as in the paper's code: the LLM writes one `token:TAG` line per word.

Format (reproduced from motasem-obeidat/Do-LLMs-Surpass-Encoders-for-Biomedical-NER at commit
72f3d8bb4ad6eea7a34334651dfe3b888731843f, decoders/src/model_prepare.py `formatting_func` /
`test_formatting_func` and decoders/src/data_preprocessing.py `data_preprocess`): an Alpaca-style
prompt whose instruction lists the entity types without B-/I- prefixes, the sentence's words joined
by single spaces as the input, and after `### Response:` one `word:TAG` line per word. Training
sequences are `prompt + target_text + eos_token`. The paper listed the types in Python set order
(it varies between runs); nerbench lists them in the dataset registry's order.

The paper's inference kept the model's sampling defaults and one fixed `max_new_tokens`; here decoding
is greedy with every checkpoint generation default switched off, and each sentence gets its own
token budget (`answer_budget`), both recorded in `generation_stats()`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch

from nerbench.errors import NerbenchError
from nerbench.models.predictor import length_sorted_batches
from nerbench.models.prompt_text import build_prompt, target_text
from nerbench.timing import ModelClock

# --------------------------------------------------------------------------- parsing


@dataclass
class ParseCounts:
    """What the parser met, by kind. Sums over a run with `+`.

    Per sentence: lines = matched + renamed + extra + malformed, and
    tokens = matched + renamed + missing.
    """

    sentences: int = 0
    lines: int = 0  # non-blank output lines
    matched: int = 0  # lines taken for the word they name
    renamed: int = 0  # lines taken for a word they name differently (their tag is used)
    missing: int = 0  # words no line was taken for (tagged O)
    extra: int = 0  # well-formed lines taken for no word (dropped)
    malformed: int = 0  # lines without ':' or with an empty tag (dropped)
    blank: int = 0  # empty lines before the last non-blank one (dropped)
    spaced: int = 0  # lines with spaces around the word or the tag (accepted, spaces stripped)
    unknown_tag: int = 0  # taken lines whose tag is not in the label set (tagged O)
    truncated: int = 0  # sentences whose last word got no line: the output ended too early
    empty: int = 0  # sentences whose output had no non-blank line at all

    def __add__(self, other: ParseCounts) -> ParseCounts:
        return ParseCounts(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class ParseResult:
    tags: list[str]
    counts: ParseCounts


@dataclass(frozen=True)
class _Line:
    token: str
    tag: str


# Alignment costs: a renamed line (1.5) is cheaper than leaving both the word and the line unused
# (1 + 1), but two renames cost more than one missing word plus one extra line that lets the rest
# match, so a skipped or inserted line resynchronises instead of renaming everything after it.
_MISS, _EXTRA, _RENAME = 2, 2, 3

_OUTSIDE = "O"


def _split_lines(text: str, counts: ParseCounts) -> list[_Line]:
    raw = [line.rstrip("\r") for line in text.split("\n")]
    while raw and not raw[-1].strip():
        raw.pop()  # the trained answer ends with a newline; trailing blank lines are expected
    parsed: list[_Line] = []
    for line in raw:
        if not line.strip():
            counts.blank += 1
            continue
        counts.lines += 1
        token, sep, tag = line.rpartition(":")  # the LAST ':' separates: words may contain ':'
        if not sep or not tag.strip():
            counts.malformed += 1
            continue
        stripped_token, stripped_tag = token.strip(" \t"), tag.strip(" \t")
        if (stripped_token, stripped_tag) != (token, tag):
            counts.spaced += 1
        parsed.append(_Line(stripped_token, stripped_tag))
    return parsed


def _align(tokens: Sequence[str], lines: Sequence[str]) -> list[int | None]:
    """For each word, the index of the line taken for it (None: missing); minimum total cost.

    Among alignments of equal cost the one whose unused lines and missing words come latest wins
    (so an answer that stops short leaves the words at the end missing, not ones in the middle).
    """
    n, m = len(tokens), len(lines)
    cost = [[0] * (m + 1) for _ in range(n + 1)]
    for j in range(1, m + 1):
        cost[0][j] = j * _EXTRA
    for i in range(1, n + 1):
        row, prev = cost[i], cost[i - 1]
        row[0] = i * _MISS
        word = tokens[i - 1]
        for j in range(1, m + 1):
            diag = prev[j - 1] + (0 if lines[j - 1] == word else _RENAME)
            row[j] = min(diag, prev[j] + _MISS, row[j - 1] + _EXTRA)
    taken: list[int | None] = [None] * n
    i, j = n, m
    while i > 0 or j > 0:
        # Ties, walking back from the end: an extra line first, then a missing word, then a
        # pair, so what is left out is as late as the minimum cost allows.
        if j > 0 and cost[i][j] == cost[i][j - 1] + _EXTRA:
            j -= 1
        elif i > 0 and cost[i][j] == cost[i - 1][j] + _MISS:
            i -= 1
        else:
            taken[i - 1] = j - 1
            i, j = i - 1, j - 1
    return taken


def parse_generation(text: str, tokens: Sequence[str], labels: Sequence[str]) -> ParseResult:
    """Tags for `tokens` read from a generated answer, with every irregularity counted.

    1. Lines are split on "\\n" (a trailing "\\r" is dropped). Blank lines after the last non-blank
       one are ignored; other blank lines are counted (`blank`) and dropped.
    2. Each line splits on its LAST ':' into word and tag. No ':' or an empty tag: `malformed`,
       dropped. Spaces or tabs around the word or the tag (`tok : B-X`) are stripped and the line
       is accepted, counted as `spaced`.
    3. The remaining lines are aligned to the input words in order by a minimum-cost edit
       alignment (a global version of "walk both sequences, take a line whose word is the next
       expected word, resynchronise after a skipped or inserted line"): a line is `matched` when
       its word equals the input word exactly, `renamed` when it is paired with a different word
       (its tag is still used: the model wrote *a* tag for that position), `extra` when it pairs
       with no word; a word without a line is `missing` and tagged `O`. Costs: missing 1,
       extra 1, renamed 1.5 (see `_MISS`/`_EXTRA`/`_RENAME`); among equal-cost alignments, the
       one that leaves later lines and words unused wins.
    4. A taken line whose tag is not in `labels` gives `O` and counts as `unknown_tag`.
    5. `truncated` is 1 when the last word is missing; `empty` is 1 when no non-blank line came.

    Nothing is repaired beyond this: a tag sequence that is not valid IOB2 (an `I-X` after `O`)
    is returned as written, for the scorer to read as conlleval does.
    """
    counts = ParseCounts(sentences=1)
    lines = _split_lines(text, counts)
    if counts.lines == 0:
        counts.empty = 1
    taken = _align(tokens, [line.token for line in lines])
    label_set = set(labels)
    tags: list[str] = []
    for word, j in zip(tokens, taken):
        if j is None:
            counts.missing += 1
            tags.append(_OUTSIDE)
            continue
        line = lines[j]
        if line.token == word:
            counts.matched += 1
        else:
            counts.renamed += 1
        if line.tag in label_set:
            tags.append(line.tag)
        else:
            counts.unknown_tag += 1
            tags.append(_OUTSIDE)
    counts.extra = len(lines) - (counts.matched + counts.renamed)
    if tokens and taken[-1] is None:
        counts.truncated = 1
    return ParseResult(tags, counts)


# --------------------------------------------------------------------------- prediction

# Token budget per sentence: the longest answer with one label used for every word (measured with
# the model's tokenizer), plus 10% and 8 tokens, so no valid answer is ever cut. The 10% covers
# answers mixing labels whose lines tokenize longer than any uniform answer; the 8 tokens cover
# the end-of-sequence token and a few stray ones. A model that stops at its end-of-sequence token
# never uses the slack; one that does not stop shows up as `stopped_at_limit` and, in the parse
# counts, as `truncated`/`missing`. With SmolLM2's tokenizer on the five test sets, each budget is
# at least 1.17x its sentence's gold answer + EOS, and 1.8-2.5x on average.
BUDGET_RATIO = 1.1
BUDGET_EXTRA = 8


def _per_row_budget(prompt_width: int, budgets: Sequence[int], device):
    """A stopping criterion that ends each row of a batch after its own number of new tokens."""
    from transformers import StoppingCriteria

    class PerRowBudget(StoppingCriteria):
        def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
            return torch.BoolTensor((input_ids.shape[1] - prompt_width) >= limits)

    limits = torch.tensor(list(budgets), device=device)
    return PerRowBudget()


@dataclass
class GenerationRecord:
    """Per-sentence facts of one predict call, in the order the sentences were predicted."""

    words: int
    prompt_tokens: int
    budget: int
    generated_tokens: int  # up to and including the end-of-sequence token
    stopped_at_limit: bool  # the budget ran out before an end-of-sequence token
    counts: ParseCounts = field(default_factory=ParseCounts)


class GenerativePredictor:
    """A causal LM (optionally with a PEFT adapter) that tags by writing `token:TAG` lines.

    Implements nerbench.timing.Predictor. Batches are length-sorted and left-padded;
    decoding is greedy with a per-sentence token budget.
    """

    def __init__(
        self,
        model,
        tokenizer,
        labels: Sequence[str],
        entity_types: Sequence[str],
        *,
        batch_size: int = 8,
        budget_ratio: float = BUDGET_RATIO,
        budget_extra: int = BUDGET_EXTRA,
        precision: str | None = None,  # as the timing protocol names it; None: read off the model
    ):
        self.precision = precision
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model = model
        self.tokenizer = tokenizer
        self.labels = tuple(labels)
        self.entity_types = tuple(entity_types)
        self.batch_size = batch_size
        self.budget_ratio = budget_ratio
        self.budget_extra = budget_extra
        self.device = str(next(model.parameters()).device)
        self.eos_ids = _eos_ids(tokenizer, _base_model(model).generation_config)
        if not self.eos_ids:
            raise NerbenchError("the tokenizer and the model name no end-of-sequence token")
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos_ids[0]
        self.ignored_defaults = _non_default_settings(_base_model(model).generation_config)
        self.records: list[GenerationRecord] = []
        self._budgets: dict[tuple[str, ...], int] = {}  # batches() and predict_batch() both ask
        self._prompts: dict[tuple[str, ...], list[int]] = {}  # the split's prompts, tokenized once per pass
        self.model_clock = ModelClock(self.synchronize)

    @classmethod
    def load(
        cls,
        model_path: str | os.PathLike,
        labels: Sequence[str],
        entity_types: Sequence[str],
        *,
        adapter_path: str | os.PathLike | None = None,
        device: str | None = None,
        dtype: torch.dtype | None = None,
        batch_size: int = 8,
        trust_remote_code: bool = False,
    ) -> GenerativePredictor:
        """Load a causal LM from a local checkpoint folder (safetensors only), plus a LoRA adapter."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = dtype or (torch.bfloat16 if device.startswith("cuda") else torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(model_path, trust_remote_code=trust_remote_code)
        model: Any = AutoModelForCausalLM.from_pretrained(
            model_path, use_safetensors=True, dtype=dtype, trust_remote_code=trust_remote_code
        )
        if adapter_path is not None:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, adapter_path)
        model.to(device).eval()
        return cls(model, tokenizer, labels, entity_types, batch_size=batch_size)

    # ----------------------------------------------------------------- Predictor surface

    def prompt_ids(self, tokens: Sequence[str]) -> list[int]:
        # The tokenizer's own special tokens (e.g. Llama's BOS), as training must also use.
        return self.tokenizer(build_prompt(tokens, self.entity_types))["input_ids"]

    def answer_budget(self, tokens: Sequence[str]) -> int:
        """New tokens allowed for this sentence (see BUDGET_RATIO / BUDGET_EXTRA)."""
        key = tuple(tokens)
        if key not in self._budgets:
            longest = 0
            if tokens:
                answers = [target_text(tokens, [label] * len(tokens)) for label in self.labels]
                longest = max(len(x) for x in self.tokenizer(answers, add_special_tokens=False)["input_ids"])
            self._budgets[key] = math.ceil(longest * self.budget_ratio) + self.budget_extra
        return self._budgets[key]

    def batches(self, sentences: Sequence[Sequence[str]]) -> list[list[int]]:
        # Every prompt of the split in one tokenizer call; predict_batch reuses them.
        texts = [build_prompt(s, self.entity_types) for s in sentences]
        ids = self.tokenizer(texts)["input_ids"] if texts else []
        self._prompts = {tuple(s): list(p) for s, p in zip(sentences, ids)}
        # Generation time follows the answer length, so batches group similar budgets.
        return length_sorted_batches([self.answer_budget(s) for s in sentences], self.batch_size)

    def predict_batch(self, sentences: Sequence[Sequence[str]]) -> list[list[str]]:
        if not sentences:
            return []
        prompts = [self._prompts.get(tuple(s)) or self.prompt_ids(s) for s in sentences]
        budgets = [self.answer_budget(s) for s in sentences]
        generated = self._generate(prompts, budgets)
        out: list[list[str]] = []
        for tokens, prompt, budget, new in zip(sentences, prompts, budgets, generated, strict=True):
            ended = next((k for k, t in enumerate(new) if t in self.eos_ids), None)
            answer = new if ended is None else new[:ended]
            result = parse_generation(self.continuation_text(prompt, answer), tokens, self.labels)
            self.records.append(
                GenerationRecord(
                    words=len(tokens),
                    prompt_tokens=len(prompt),
                    budget=budget,
                    generated_tokens=len(new) if ended is None else ended + 1,
                    stopped_at_limit=ended is None,
                    counts=result.counts,
                )
            )
            out.append(result.tags)
        return out

    def synchronize(self) -> None:
        if self.device.startswith("cuda"):
            torch.cuda.synchronize(self.device)

    # ----------------------------------------------------------------- generation

    def continuation_text(self, prompt_ids: Sequence[int], answer_ids: Sequence[int]) -> str:
        """The answer as text, decoded in the context of its prompt.

        SentencePiece tokenizers (Mistral) drop the leading space of the first token decoded on its
        own, so the answer is the decoded prompt+answer minus the decoded prompt; special tokens
        other than the end of sequence are kept in the text (they make lines malformed, visibly).
        """
        kw = {"skip_special_tokens": False, "clean_up_tokenization_spaces": False}
        head = self.tokenizer.decode(list(prompt_ids), **kw)
        whole = self.tokenizer.decode(list(prompt_ids) + list(answer_ids), **kw)
        if whole.startswith(head):
            return whole[len(head) :]
        return self.tokenizer.decode(list(answer_ids), **kw)

    def _generate(self, prompts: list[list[int]], budgets: list[int]) -> list[list[int]]:
        """Greedy new tokens per row (left padding), each row cut at its budget."""
        from transformers import GenerationConfig, StoppingCriteriaList

        width = max(len(p) for p in prompts)
        limit = getattr(_base_model(self.model).config, "max_position_embeddings", None)
        if limit is not None and width + max(budgets) > limit:
            raise NerbenchError(
                f"a prompt of {width} tokens plus an answer budget of {max(budgets)} tokens exceeds "
                f"the model's {limit} positions: the sentence is too long for generative tagging"
            )
        ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for row, p in enumerate(prompts):
            ids[row, width - len(p) :] = torch.tensor(p, dtype=torch.long)
            mask[row, width - len(p) :] = 1
        config = GenerationConfig(
            do_sample=False,
            num_beams=1,
            max_new_tokens=max(budgets),
            eos_token_id=list(self.eos_ids),
            pad_token_id=self.pad_id,
        )
        stop = StoppingCriteriaList([_per_row_budget(width, budgets, self.device)])
        with torch.inference_mode(), _only_this_config(self.model, config), self.model_clock.measure():
            out = self.model.generate(
                input_ids=ids.to(self.device),
                attention_mask=mask.to(self.device),
                generation_config=config,
                stopping_criteria=stop,
            )
        new = out[:, width:].cpu().tolist()
        return [row[:budget] for row, budget in zip(new, budgets)]

    # ----------------------------------------------------------------- statistics

    def reset_stats(self) -> None:
        self.records.clear()

    def generation_stats(self) -> dict:
        """Totals, per-sentence generated tokens and the summed parse counts since the last reset."""
        total = ParseCounts()
        for r in self.records:
            total = total + r.counts
        generated = [r.generated_tokens for r in self.records]
        return {
            "decoding": "greedy",
            "budget_rule": {
                "ratio": self.budget_ratio,
                "extra_tokens": self.budget_extra,
                "basis": "longest single-label answer, tokenized",
            },
            "ignored_generation_defaults": dict(self.ignored_defaults),
            "sentences": len(self.records),
            "words": sum(r.words for r in self.records),
            "prompt_tokens": sum(r.prompt_tokens for r in self.records),
            "generated_tokens": sum(generated),
            "generated_tokens_per_sentence": generated,
            "budget_per_sentence": [r.budget for r in self.records],
            "max_new_tokens": max((r.budget for r in self.records), default=0),
            "stopped_at_limit": sum(r.stopped_at_limit for r in self.records),
            "parse": total.to_dict(),
        }


def _base_model(model):
    """The transformers model under a PEFT wrapper (whose generate uses the base's config)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _eos_ids(tokenizer, generation_config) -> tuple[int, ...]:
    """The tokenizer's end-of-sequence token (what training appends) and the model's own ones."""
    ids: list[int] = []
    if tokenizer.eos_token_id is not None:
        ids.append(int(tokenizer.eos_token_id))
    configured = getattr(generation_config, "eos_token_id", None)
    for i in configured if isinstance(configured, (list, tuple)) else [configured]:
        if i is not None and int(i) not in ids:
            ids.append(int(i))
    return tuple(ids)


# Settings of a checkpoint's generation_config that would change greedy decoding or steer it to
# sampling; they are recorded and switched off.
_DECODING_FIELDS = (
    "do_sample",
    "num_beams",
    "temperature",
    "top_k",
    "top_p",
    "min_p",
    "typical_p",
    "repetition_penalty",
    "no_repeat_ngram_size",
    "min_length",
    "min_new_tokens",
    "bad_words_ids",
    "suppress_tokens",
    "begin_suppress_tokens",
    "forced_bos_token_id",
    "forced_eos_token_id",
    "sequence_bias",
    "exponential_decay_length_penalty",
    "max_length",
    "max_new_tokens",
)


def _non_default_settings(generation_config) -> dict:
    from transformers import GenerationConfig

    if generation_config is None:
        return {}
    fresh = GenerationConfig()
    found = {}
    for name in _DECODING_FIELDS:
        value = getattr(generation_config, name, None)
        if value != getattr(fresh, name, None):
            # stored as JSON with the run: plain values as they are, anything else as its repr
            plain = value is None or isinstance(value, (bool, int, float, str, list))
            found[name] = value if plain else repr(value)
    return found


@contextmanager
def _only_this_config(model, config) -> Iterator[None]:
    """Generate with `config` alone: transformers fills every unset field of a passed config
    from `model.generation_config` (checkpoint sampling defaults included), so that is swapped
    for the same clean config while generating."""
    base = _base_model(model)
    saved = base.generation_config
    base.generation_config = config
    try:
        yield
    finally:
        base.generation_config = saved
