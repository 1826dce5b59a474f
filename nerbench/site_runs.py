"""How a run was trained, in the words and download columns of the site.

A run's training lives in its run record, never in the model's metadata: `record.training` for a
model nerbench fine-tuned (its budget and effective recipe; what training did, such as the
sentences used and the epochs run, is in the run's details under "training"), and
`record.submission.training` for a submission (its `[training]` section: declared by the
submitter, so self-reported). A model evaluated as published has neither: it was not trained for
the run. Every value a page shows comes from here, so that nothing is ever shown as "None": what is
not known is said to be "not stated".

How busy the machine was while nerbench timed a run (`Run.load`, measured around each timed pass)
is said here too: a run timed on a busy machine is marked, and a run whose load was not measured
(stored before nerbench measured it, or a submission) is "not measured", never taken for idle.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from markupsafe import Markup, escape

from nerbench.site_data import Model, Run

# The regimes a submission declares (nerbench.submissions.TrainingSection.regime), in words.
REGIMES = {
    "full": "full fine-tuning",
    "lora": "LoRA",
    "qlora": "QLoRA (4-bit base)",
    "none": "not fine-tuned (evaluated as published)",
}
NOT_STATED = "not stated"


@dataclass(frozen=True)
class TrainingSummary:
    """What the site says about how one run's model was trained. Its texts are made once (cached
    properties; the frozen fields cannot change under them)."""

    regime: str | None  # a key of REGIMES; None: not stated
    profile: str | None  # the budget: "paper", "quick", "custom", or a submission's declared profile
    train_sentences: int | None  # training sentences used
    epochs: int | None  # epochs run (nerbench) or declared (a submission)
    best_epoch: int | None  # the epoch whose weights were kept (early stopping on dev F1)
    max_epochs: int | None  # the budget's cap, where the epochs run are not recorded
    learning_rate: float | None
    lora: tuple[int, int] | None  # rank, alpha
    declared: bool  # stated by a submitter, not recorded by nerbench
    notes: str = ""  # a submission's own words (untrusted text: escaped where shown)

    @cached_property
    def regime_text(self) -> str:
        if self.regime is None:
            return NOT_STATED
        text = REGIMES.get(self.regime, self.regime)
        if self.lora is not None and self.regime in ("lora", "qlora"):
            text += f" r={self.lora[0]}, alpha={self.lora[1]}"
        return text

    @cached_property
    def profile_text(self) -> str:
        if self.profile is None:
            return "none" if self.regime == "none" else NOT_STATED
        return self.profile

    @cached_property
    def sentences_text(self) -> str:
        return NOT_STATED if self.train_sentences is None else f"{self.train_sentences:,}"

    @cached_property
    def epochs_text(self) -> str:
        if self.epochs is not None:
            text = f"{self.epochs} epoch{'s' if self.epochs != 1 else ''}"
            if self.best_epoch is not None and self.epochs > 1:
                text += f", best {self.best_epoch}"
            return text
        if self.max_epochs is not None:
            return f"up to {self.max_epochs} epoch{'s' if self.max_epochs != 1 else ''}"
        return "no epochs" if self.regime == "none" else f"epochs {NOT_STATED}"

    @cached_property
    def short(self) -> str:
        """One cell of a table: profile · sentences · epochs, each only where known."""
        if self.regime == "none":
            return "none (as published)"
        parts = [self.profile or "budget not stated"]
        if self.train_sentences is not None:
            parts.append(f"{self.train_sentences:,} sent.")
        if self.epochs is not None:
            parts.append(f"{self.epochs} ep.")
        elif self.max_epochs is not None:
            parts.append(f"≤{self.max_epochs} ep.")
        return " · ".join(parts)

    @cached_property
    def text(self) -> str:
        """One sentence for a model page or a run card."""
        if self.regime == "none":
            return REGIMES["none"]
        parts = [
            self.regime_text,
            f"profile {self.profile_text}",
            f"training sentences {self.sentences_text}",
            self.epochs_text,
        ]
        if self.learning_rate is not None:
            parts.append(f"learning rate {self.learning_rate:g}")
        text = "; ".join(parts)
        return f"declared by the submitter: {text}" if self.declared else text


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# While a site is built (`remembered`), each run's summary is made once: its model page, its dataset
# table, the overview and the downloads all ask for it. Keyed by the run object, kept alive with it;
# equal summaries are one object, so that their texts are made once.
_remembered: dict[int, tuple[Run, TrainingSummary]] | None = None
_interned: dict[TrainingSummary, TrainingSummary] = {}


@contextlib.contextmanager
def remembered() -> Iterator[None]:
    """training_of remembers each run's summary until the block ends."""
    global _remembered, _interned
    outer, _remembered = (_remembered, _interned), {}
    _interned = {}
    try:
        yield
    finally:
        _remembered, _interned = outer


def training_of(run: Run) -> TrainingSummary:
    """How `run`'s model was trained, from its record (and, for nerbench's own runs, the training
    record kept in its details)."""
    if _remembered is None:
        return _training_of(run)
    known = _remembered.get(id(run))
    if known is None or known[0] is not run:
        summary = _training_of(run)
        known = _remembered[id(run)] = (run, _interned.setdefault(summary, summary))
    return known[1]


def _training_of(run: Run) -> TrainingSummary:
    record = run.record
    if record.training is not None:
        training, recipe = record.training, record.training.recipe
        if record.family == "encoder":
            regime, lora = "full", None
        else:
            regime = "qlora" if training.quantization == "nf4" else "lora"
            r = record.lora.r if record.lora is not None else getattr(recipe, "lora_r", None)
            alpha = record.lora.alpha if record.lora is not None else getattr(recipe, "lora_alpha", None)
            lora = (r, alpha) if r is not None and alpha is not None else None
        done = (run.details or {}).get("training")
        done = done if isinstance(done, dict) else {}
        per_epoch = [v for v in (done.get("train_loss"), done.get("dev_f1")) if isinstance(v, list) and v]
        epochs = max((len(v) for v in per_epoch), default=None)
        best = _int(done.get("best_epoch"))
        return TrainingSummary(
            regime=regime,
            profile=training.budget.name,
            train_sentences=run.train_sentences,
            epochs=epochs,
            best_epoch=best if best else None,
            max_epochs=training.budget.epochs or recipe.max_epochs,
            learning_rate=recipe.learning_rate,
            lora=lora,
            declared=False,
        )
    if record.submission is not None:
        declared = record.submission.training
        stated = declared.get("regime")
        rank, alpha = _int(declared.get("lora_rank")), _int(declared.get("lora_alpha"))
        profile = declared.get("profile")
        notes = declared.get("notes")
        return TrainingSummary(
            regime=stated if isinstance(stated, str) else None,
            profile=profile if isinstance(profile, str) and profile else None,
            train_sentences=None,  # a submission does not state it
            epochs=_int(declared.get("epochs")),
            best_epoch=None,
            max_epochs=None,
            learning_rate=None,
            lora=(rank, alpha) if rank is not None and alpha is not None else None,
            declared=True,
            notes=notes if isinstance(notes, str) else "",
        )
    return TrainingSummary("none", None, None, None, None, None, None, None, declared=False)


def model_training(model: Model) -> list[tuple[TrainingSummary, list[str]]]:
    """The distinct ways a model's shown runs were trained, each with its datasets."""
    out: dict[TrainingSummary, list[str]] = {}
    for dataset, run in sorted(model.shown.items()):
        out.setdefault(training_of(run), []).append(dataset)
    return list(out.items())


def parameters(model: Model) -> int | None:
    """The model's parameter count as its record states it (None: not stated)."""
    value = _int(model.meta.get("parameters"))
    return value if value is not None and value > 0 else None


def parameters_text(count: int | None) -> str:
    """22,565,376 -> '22.6M'; 8,030,261,248 -> '8.03B'."""
    if count is None:
        return NOT_STATED
    if count >= 10**9:
        return f"{count / 1e9:.3g}B"
    if count >= 10**6:
        return f"{count / 1e6:.3g}M"
    return f"{count:,}"


def budget_cell(model: Model) -> tuple[str, str]:
    """The overview's budget cell of a model (its shown runs): the text, and a title naming what
    varies per dataset (the training sentences used)."""
    summaries = [(dataset, training_of(run)) for dataset, run in sorted(model.shown.items())]
    if not summaries:
        return "—", ""
    profiles = sorted({s.profile_text for _, s in summaries})
    epochs = sorted({s.epochs for _, s in summaries if s.epochs is not None})
    sentences = [s.train_sentences for _, s in summaries if s.train_sentences is not None]
    if all(s.regime == "none" for _, s in summaries):
        return "none (as published)", ""
    parts = [" + ".join(profiles)]
    if sentences:
        low, high = min(sentences), max(sentences)
        parts.append(f"{low:,} sent." if low == high else f"{low:,}–{high:,} sent.")
    if epochs:
        parts.append(f"{epochs[0]} ep." if len(epochs) == 1 else f"{epochs[0]}–{epochs[-1]} ep.")
    title = "; ".join(f"{dataset}: {s.short}" for dataset, s in summaries)
    return " · ".join(parts), title


def _share(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def load_text(run: Run) -> str:
    """How busy the machine was while the run was timed, in words: busy (its speed and cost
    understate the hardware), not busy, or not measured."""
    if run.timing is None:
        return "no timing stored"
    load = run.load
    if load is None:
        why = "a submission's own timing" if run.self_reported else "stored before nerbench measured it"
        return f"machine load not measured ({why})"
    passes = load["passes"]
    others = max((_share(p.get("others_share")) for p in passes), default=0.0)
    stolen = max((_share(p.get("steal_share")) for p in passes), default=0.0)
    cpus = _int(load.get("cpus"))
    machine = f"its {cpus} CPU{'s' if cpus != 1 else ''}" if cpus else "its CPUs"
    steal = f", {stolen:.0%} stolen by the hypervisor" if stolen > 0 else ""
    limit = f"busy above {_share(load.get('busy_share')):.0%}"
    if load["busy"]:
        return (
            f"timed on a busy machine: other processes used up to {others:.0%} of {machine} during a timed "
            f"pass{steal} ({limit}); its speed and cost understate the hardware"
        )
    quiet = f"other processes used at most {others:.0%} of {machine}{steal}"
    return f"timed on a machine that was not busy: {quiet} ({limit})"


# --------------------------------------------------------------------------- reproduced submissions


@dataclass(frozen=True)
class Reproduction:
    """nerbench's own re-run of a submission's weights (`nerbench reproduce`): its details'
    "reproduces" link, read defensively (the store's details are plain JSON)."""

    run: Run  # the re-run, timed by nerbench
    submission: str
    agreement: float
    f1_delta: float
    reproduced: bool

    @property
    def hardware(self) -> str:
        """Where it was re-run: the device and its class (a CPU is never the reference hardware)."""
        where = {"reference": "the reference H100", "GPU": "a GPU", "CPU": "a CPU"}.get(self.run.track.hardware)
        return f"{where} ({self.run.device_name})" if where and self.run.device_name else where or NOT_STATED

    @cached_property
    def text(self) -> str:
        said = "reproduced" if self.reproduced else "not reproduced"
        return f"{said} on {self.hardware}, agreement {self.agreement:.1%}, ΔF1 {self.f1_delta:+.3f}"


def _link(run: Run) -> Reproduction | None:
    link = (run.details or {}).get("reproduces")
    if not isinstance(link, dict) or run.self_reported or run.record.submission is not None:
        return None
    agreement, delta = link.get("agreement"), link.get("f1_delta")
    numbers = [v for v in (agreement, delta) if isinstance(v, int | float) and not isinstance(v, bool)]
    if not isinstance(link.get("submission"), str) or len(numbers) != 2:
        return None
    return Reproduction(run, link["submission"], float(numbers[0]), float(numbers[1]), link.get("reproduced") is True)


def reproduction(run: Run, model: Model) -> Reproduction | None:
    """The re-run behind `run`: `run` itself where it is nerbench's re-run of a submission; for a
    submission's run, the newest re-run of that very content (same id and content digest) on its dataset."""
    own = _link(run)
    if own is not None:
        return own
    submitted = run.record.submission
    if submitted is None or not model.rerun:
        return None
    for other in model.runs:  # newest first
        found = _link(other) if other.dataset == run.dataset else None
        if found is not None and (other.details or {})["reproduces"].get("content_sha256") == submitted.content_sha256:
            return found
    return None


def reproduction_mark(run: Run, model: Model) -> Markup:
    """The mark a run card and the model's results table give a reproduced (or not reproduced) run."""
    found = reproduction(run, model)
    if found is None:
        return Markup("")
    css = "repro" if found.reproduced else "repro failed"
    by = "" if found.run is run else f" by run {found.run.run_id}"
    return (
        Markup(f' <span class="mark {css}" title="nerbench re-ran the submitted weights{escape(by)}">')
        + escape(found.text)
        + Markup("</span>")
    )


def overview_reproduction(model: Model) -> Markup:
    """The overview's mark for a model whose shown runs were re-run by nerbench: on what hardware,
    and the lowest agreement over its datasets."""
    found = [r for r in (reproduction(run, model) for run in model.shown.values()) if r is not None]
    if not found:
        return Markup("")
    ok = all(r.reproduced for r in found)
    said = "reproduced" if ok else "not reproduced"
    hardware = sorted({r.hardware for r in found})
    text = f"{said} on {'; '.join(hardware)}, agreement {min(r.agreement for r in found):.1%}"
    title = "; ".join(f"{r.run.dataset}: {r.text}" for r in sorted(found, key=lambda r: r.run.dataset))
    return Markup(f' <span class="mark repro{"" if ok else " failed"}" title="{escape(title)}">{escape(text)}</span>')
