"""The paper's question, per track and dataset: is the best LLM better than the best encoder, by how
much, how surely, where does it come from (entities of >= 3 tokens), and at what cost.

Like is compared with like: runs are grouped by track (`nerbench.tracks`: training budget, who
timed them, hardware class) and a question pairs two runs of one track only. Each family's best
model is chosen on dev F1 where every candidate has one (a nerbench training record, or a
submission's re-scored dev predictions); otherwise on test F1, and the page says the choice is
optimistic. A model evaluated with several seeds enters as the mean over its seeds. The paired
test is the one `nerbench compare` runs (same rounds, same seed, documents resampled where the
test split has a `.docs` sidecar), on the stored predictions against the local gold test split;
the p-values of one page are Holm-adjusted across its datasets.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from nerbench import scoring
from nerbench.datasets import REGISTRY, Split
from nerbench.errors import NerbenchError
from nerbench.site_data import Run, StoreData, predictions, seed_group, serving_group, slug
from nerbench.tracks import Track, describe_budget

SIGNIFICANCE = 0.05
RESAMPLES = 10000  # the default of `nerbench compare` too: the same numbers on the page and in the terminal


@dataclass(frozen=True)
class PValue:
    value: float
    resamples: int
    at_floor: bool  # no round was as extreme: the true p is below `value`

    @property
    def text(self) -> str:
        if self.at_floor:
            # (extreme + 1) / (N + 1) with no extreme round: a bound, not a measurement.
            multiple = round(self.value * (self.resamples + 1))
            return f"< {multiple}/{self.resamples + 1}"
        return f"{self.value:.3g}"


def raw_p(comparison: scoring.Comparison) -> PValue:
    return PValue(comparison.p_value, comparison.resamples, comparison.p_at_floor)


def holm(ps: list[PValue]) -> list[PValue]:
    """Holm's step-down adjustment (family-wise error) of the p-values of one page."""
    order = sorted(range(len(ps)), key=lambda i: ps[i].value)
    out: list[PValue | None] = [None] * len(ps)
    running = PValue(0.0, 0, False)
    for rank, i in enumerate(order):
        scaled = min(1.0, (len(ps) - rank) * ps[i].value)
        if scaled >= running.value:
            running = PValue(scaled, ps[i].resamples, ps[i].at_floor and scaled < 1.0)
        out[i] = running
    return [p for p in out if p is not None]


@dataclass
class Paired:
    delta: float  # LLM minus encoder
    ci95: tuple[float, float]
    p: PValue
    resamples: int
    unit: str  # "document" or "sentence": what the bootstrap and the randomization resample
    units: int
    p_holm: PValue | None = None

    @property
    def p_value(self) -> float:
        return self.p.value


@dataclass
class Entry:
    """One model configuration on one dataset in one track: its runs, one per seed."""

    runs: list[Run]
    parameters: int | None
    # The same configuration served as deployed (adapter merged, throughput batch), when stored:
    # its cost is shown beside this entry's; the entry itself is the paper's serving.
    deployed: Entry | None = None

    @property
    def first(self) -> Run:
        return self.runs[0]

    @property
    def serving(self) -> str:
        return self.first.record.serving

    @property
    def model_id(self) -> str:
        return self.first.model_id

    @property
    def family(self) -> str:
        return self.first.family

    @property
    def head(self) -> str:
        return self.first.head

    @property
    def seeds(self) -> int:
        return len(self.runs)

    @property
    def run_ids(self) -> list[str]:
        return [r.run_id for r in self.runs]

    def _mean(self, values: list[float | None]) -> float | None:
        if len(values) == 1:  # one seed (most entries): its value, as fmean would give it
            return values[0]
        return statistics.fmean(v for v in values if v is not None) if all(v is not None for v in values) else None

    def _sd(self, values: list[float | None]) -> float | None:
        present = [v for v in values if v is not None]
        return statistics.stdev(present) if len(present) > 1 and len(present) == len(values) else None

    @cached_property  # best() asks for it of every candidate, twice
    def f1(self) -> float | None:
        return self._mean([r.f1 for r in self.runs])

    @property
    def f1_sd(self) -> float | None:
        return self._sd([r.f1 for r in self.runs])

    @property
    def long_f1(self) -> float | None:
        return self._mean([r.long_f1 for r in self.runs])

    @property
    def long_f1_sd(self) -> float | None:
        return self._sd([r.long_f1 for r in self.runs])

    @property
    def f1_ci(self) -> tuple[float, float] | None:
        return self.first.f1_ci if self.seeds == 1 else None

    @property
    def long_f1_ci(self) -> tuple[float, float] | None:
        return self.first.long_f1_ci if self.seeds == 1 else None

    @cached_property
    def dev_f1(self) -> float | None:
        return self._mean([r.dev_f1 for r in self.runs])

    @property
    def cost_per_1k(self) -> float | None:
        return self._mean([r.cost_per_1k for r in self.runs])

    @property
    def budget(self) -> str:
        """The training budget in words: profile, its limits, and the sentences actually used."""
        record = self.first.record
        if record.training is not None:
            budget = record.training.budget
            used = self.first.train_sentences
            text = f"{budget.name} budget: {describe_budget(budget)}"
            return text + (f", {used:,} training sentences used" if used is not None else "")
        if record.submission is not None:
            declared = record.submission.training
            parts = [f"declared {declared['profile']} profile" if declared.get("profile") else "declared budget"]
            if declared.get("epochs"):
                parts.append(f"{declared['epochs']} epoch{'s' if declared['epochs'] != 1 else ''}")
            return ", ".join(parts) if declared.get("profile") or declared.get("epochs") else "budget not stated"
        return "budget not stated (evaluated as published)"

    @property
    def size(self) -> str:
        return f"{self.parameters / 1e6:,.1f}M parameters" if self.parameters else "parameter count not stated"

    @property
    def seed_text(self) -> str:
        if self.seeds == 1:
            return "one seed"
        sd = self.f1_sd
        return f"mean of {self.seeds} seeds" + (f", sd {sd:.3f} F1" if sd is not None else "")


@dataclass
class Question:
    dataset: str
    track: Track
    encoder: Entry | None
    llm: Entry | None
    chosen_on: dict[str, str] = field(default_factory=dict)  # family -> "dev" or "test"
    paired: Paired | None = None
    paired_long: Paired | None = None
    paired_note: str | None = None  # why there is no paired test
    elsewhere: list[str] = field(default_factory=list)  # the families present on this dataset in other tracks
    verdict: str = ""

    @property
    def gap(self) -> float | None:
        if self.encoder is None or self.llm is None or self.encoder.f1 is None or self.llm.f1 is None:
            return None
        return self.llm.f1 - self.encoder.f1

    @property
    def long_gap(self) -> float | None:
        if self.encoder is None or self.llm is None or self.encoder.long_f1 is None or self.llm.long_f1 is None:
            return None
        return self.llm.long_f1 - self.encoder.long_f1

    @property
    def cost_ratio(self) -> float | None:
        if self.encoder is None or self.llm is None:
            return None
        enc, llm = self.encoder.cost_per_1k, self.llm.cost_per_1k
        return llm / enc if enc and llm is not None and enc > 0 else None

    @property
    def cost_ratio_deployed(self) -> float | None:
        """The same ratio with the LLM served as deployed (None where no such run is stored)."""
        if self.encoder is None or self.llm is None or self.llm.deployed is None:
            return None
        enc, llm = self.encoder.cost_per_1k, self.llm.deployed.cost_per_1k
        return llm / enc if enc and llm is not None and enc > 0 else None

    @property
    def hardware_note(self) -> str | None:
        """Says when the costs were not measured by nerbench on the reference hardware."""
        if self.track.hardware == "reference":
            return None
        if self.track.timed_by == "self-reported":
            return "both timings are self-reported by their submitters, not measured by nerbench"
        if self.track.timed_by == "untimed":
            return "no timing stored"
        return f"both timed by nerbench on {self.track.hardware}, not on the reference hardware"

    @property
    def comparable(self) -> bool:
        return self.encoder is not None and self.llm is not None


@dataclass
class TrackPage:
    track: Track
    questions: list[Question]
    slug: str
    default: bool = False

    @property
    def comparable(self) -> int:
        return sum(q.comparable for q in self.questions)

    @property
    def href(self) -> str:
        return "compare.html" if self.default else f"compare-{self.slug}.html"


def entries(runs: list[Run], parameters: Mapping[str, int | None]) -> list[Entry]:
    """Group one track's runs on one dataset into entries (newest run per seed)."""
    by_model: dict[str, list[Run]] = {}
    for run in runs:
        by_model.setdefault(run.model_id, []).append(run)
    out = []
    for model_id, own in by_model.items():
        out += _model_entries(own, parameters.get(model_id))
    return out


def _model_entries(runs: list[Run], parameters: int | None) -> list[Entry]:
    """One model's entries. Runs of one configuration share their model id, so a model's only run
    is an entry of its own: the record is serialized (seed_group, serving_group) only for models with
    several runs, which spares tens of thousands of serializations on a store of 10,000 submissions."""
    if len(runs) == 1:
        every = [Entry(runs, parameters)]
    else:
        groups: dict[str, dict[int | None, Run]] = {}
        for run in sorted(runs, key=lambda r: (r.created_at, r.run_id), reverse=True):
            groups.setdefault(seed_group(run), {}).setdefault(run.seed, run)
        every = [
            Entry(sorted(by_seed.values(), key=lambda r: (r.seed is None, r.seed or 0)), parameters)
            for by_seed in groups.values()
        ]
    # A configuration served both ways is one candidate: the paper's serving ("as-trained"), with the
    # deployed runs beside it; a configuration stored only as deployed is a candidate of its own.
    by_config: dict[str, dict[str, Entry]] = {}
    for entry in every:
        by_config.setdefault(serving_group(entry.first) if len(every) > 1 else "", {})[entry.serving] = entry
    out = []
    for served in by_config.values():
        trained, deployed = served.get("as-trained"), served.get("as-deployed")
        if trained is not None:
            trained.deployed = deployed
            out.append(trained)
        elif deployed is not None:
            out.append(deployed)
    return out


def best(candidates: list[Entry], family: str) -> tuple[Entry | None, str]:
    """The family's best entry and what it was chosen on: dev F1 where every candidate has one
    ("only" where there was nothing to choose from)."""
    scored = [e for e in candidates if e.family == family and e.f1 is not None]
    if not scored:
        return None, ""
    if len(scored) == 1:
        return scored[0], "only"
    # Ties go to the alphabetically first model so that the choice is stable.
    if all(e.dev_f1 is not None for e in scored):
        return min(scored, key=lambda e: (-(e.dev_f1 or 0.0), e.model_id, e.head)), "dev"
    return min(scored, key=lambda e: (-(e.f1 or 0.0), e.model_id, e.head)), "test"


def _points(value: float) -> str:
    return f"{abs(value):.3f} F1"


def _who(entry: Entry, chosen_on: str) -> str:
    chosen = {
        "dev": "chosen on dev F1",
        "test": "chosen on test — optimistic",
        "only": "the only candidate in this track",
    }[chosen_on]
    return f"{entry.model_id} ({entry.head} head; {entry.size}; {entry.budget}; {entry.seed_text}; {chosen})"


def verdict(q: Question) -> str:
    """One sentence from the numbers, naming the track, both models' sizes and budgets; plain about
    what is missing."""
    name, track = q.dataset, f"[{q.track.label}]"
    if q.llm is None or q.encoder is None:
        present = q.encoder or q.llm
        if present is None:
            return f"{track} No runs on {name} in this track."
        missing, kind = ("LLM", "encoder") if q.llm is None else ("encoder", "LLM")
        other = f" ({' and '.join(q.elsewhere)} on {name} exist in other tracks; never paired across tracks)"
        return (
            f"{track} No {missing} in this track on {name}, so no verdict; the best {kind}, "
            f"{_who(present, q.chosen_on[present.family])}, reaches strict F1 {present.f1:.3f}"
            + (other if q.elsewhere else "")
            + "."
        )
    gap = q.gap
    assert gap is not None, "best() picks only entries that have an F1"
    llm, enc = _who(q.llm, q.chosen_on["llm"]), _who(q.encoder, q.chosen_on["encoder"])
    p = q.paired.p_holm or q.paired.p if q.paired is not None else None
    if q.paired is not None and p is not None:
        low, high = q.paired.ci95
        evidence = (
            f" (95% CI {low:+.3f} to {high:+.3f} over {q.paired.units:,} {q.paired.unit}s, "
            f"Holm-adjusted p {p.text if p.at_floor else '= ' + p.text})"
        )
    else:
        evidence = " (no paired test)"
    if p is not None and p.value >= SIGNIFICANCE:
        head = f"On {name} the best LLM, {llm}, and the best encoder, {enc}, do not differ significantly: "
        head += f"gap {gap:+.3f} F1{evidence}"
    elif gap == 0:
        head = f"On {name} the best LLM, {llm}, and the best encoder, {enc}, have the same strict F1{evidence}"
    else:
        side = "better" if gap > 0 else "worse"
        qualifier = "significantly " if p is not None else ""
        head = f"On {name} the best LLM, {llm}, is {qualifier}{side} than the best encoder, {enc}, by {_points(gap)}"
        head += evidence
    tail = []
    if q.long_gap is not None:
        tail.append(f"on entities of 3+ tokens the gap is {q.long_gap:+.3f}")
    if q.cost_ratio is not None:
        caveat = f" ({q.hardware_note})" if q.hardware_note else ""
        served = (
            " served as trained"
            if q.llm.deployed is not None
            else (" served as deployed" if q.llm.serving == "as-deployed" else "")
        )
        deployed = (
            f"; {q.cost_ratio_deployed:.3g}x served as deployed (adapter merged, batch "
            f"{q.llm.deployed.first.record.batch_size}; strict F1 {q.llm.deployed.f1:.3f})"
            if q.cost_ratio_deployed is not None and q.llm.deployed is not None and q.llm.deployed.f1 is not None
            else ""
        )
        tail.append(f"the LLM costs {q.cost_ratio:.3g}x as much per 1k sentences{served}{deployed}{caveat}")
    else:
        tail.append("the cost ratio is unknown (a cost is missing)")
    return f"{track} {head}; " + "; ".join(tail) + "."


def _paired(comparison: scoring.Comparison) -> Paired:
    return Paired(
        comparison.delta, comparison.ci95, raw_p(comparison), comparison.resamples, comparison.unit, comparison.units
    )


def pages(
    data: StoreData,
    db: Path,
    splits: Mapping[str, Split | None],
    *,
    datasets: list[str],
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> list[TrackPage]:
    """One page of questions per track, most authoritative first; the default page is the most
    authoritative track where some dataset has both families. `splits` holds the local test split
    of each dataset (None where it is not available)."""
    parameters = {m.id: _parameters(m.meta) for m in data.models.values()}
    by_track: dict[Track, dict[str, list[Run]]] = {}
    families: dict[str, set[str]] = {d: set() for d in datasets}
    for run in data.runs:
        if run.dataset in families:
            by_track.setdefault(run.track, {}).setdefault(run.dataset, []).append(run)
            families[run.dataset].add(run.family)
    out: list[TrackPage] = []
    testable: list[tuple[Question, Split]] = []
    for track in sorted(by_track, key=lambda t: t.authority):
        asked = []
        for dataset in datasets:
            candidates = entries(by_track[track].get(dataset, []), parameters)
            encoder, on_enc = best(candidates, "encoder")
            llm, on_llm = best(candidates, "llm")
            q = Question(dataset, track, encoder, llm, chosen_on={"encoder": on_enc, "llm": on_llm})
            here = {e.family for e in candidates}
            q.elsewhere = sorted(
                ("LLMs" if f == "llm" else "encoders") for f in families[dataset] - here if f in ("llm", "encoder")
            )
            if encoder is not None and llm is not None:
                split = splits.get(dataset)
                q.paired_note = _untestable(dataset, encoder.runs + llm.runs, split)
                if q.paired_note is None and split is not None:
                    testable.append((q, split))
            asked.append(q)
        out.append(TrackPage(track, asked, slug=_track_slug(track)))
    # The predictions of every compared run in one read of the predictions table.
    wanted = [rid for q, _ in testable for e in (q.llm, q.encoder) if e is not None for rid in e.run_ids]
    preds = predictions(db, wanted)
    golds: dict[str, list[list[str]]] = {}  # each split's gold tags, built once for all its tests
    for q, split in testable:
        if q.dataset not in golds:
            golds[q.dataset] = [list(s.tags) for s in split.sentences]
        _test(q, golds[q.dataset], split.documents, preds, resamples, seed)
    for page in out:
        _adjust(page.questions)
        for q in page.questions:
            q.verdict = verdict(q)
    default = next((p for p in out if p.comparable), out[0] if out else None)
    if default is not None:
        default.default = True
    return out


def _parameters(meta: dict) -> int | None:
    value = meta.get("parameters")
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _track_slug(track: Track) -> str:
    return slug(track.key)


def _adjust(questions: list[Question]) -> None:
    for attr in ("paired", "paired_long"):
        tested = [getattr(q, attr) for q in questions if getattr(q, attr) is not None]
        for paired, adjusted in zip(tested, holm([p.p for p in tested])):
            paired.p_holm = adjusted


def _untestable(dataset: str, runs: list[Run], split: Split | None) -> str | None:
    """Why the runs cannot be compared sentence by sentence, or None when they can."""
    first = runs[0]
    if any(r.split != first.split or r.dataset_sha256 != first.dataset_sha256 for r in runs):
        return "the runs were scored against different files of the test split"
    if dataset not in REGISTRY:
        return f"{dataset} is not in the dataset registry, so its gold tags are unknown"
    if split is None or split.split != first.split:
        return f"the {first.split} split of {dataset} is not available locally (see `nerbench datasets fetch`)"
    if split.sha256 != first.dataset_sha256:
        return "the local test file is not the one the runs were scored against (sha256 differs)"
    return None


def _test(
    q: Question, gold: list[list[str]], units: Sequence[str] | None, preds: dict[str, list], resamples: int, seed: int
) -> None:
    assert q.llm is not None and q.encoder is not None
    seeds_llm = [preds[rid] for rid in q.llm.run_ids]
    seeds_enc = [preds[rid] for rid in q.encoder.run_ids]
    if any(len(p) != len(gold) for p in seeds_llm + seeds_enc):
        q.paired_note = "the stored predictions do not cover every test sentence"
        return
    try:
        results = scoring.compare_metrics(gold, seeds_llm, seeds_enc, resamples=resamples, seed=seed, units=units)
        q.paired, q.paired_long = _paired(results["f1"]), _paired(results["long_f1"])
    except NerbenchError as err:
        q.paired, q.paired_long = None, None
        q.paired_note = f"the stored predictions do not fit the test split ({err})"
