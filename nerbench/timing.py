"""The timing protocol: one set of rules for every model, and the cost it implies.

What is timed is the whole split, from word tokens in to tags out: length-sorted batching, sub-word
tokenization, the forward passes (or generation) and decoding back to one tag per word. A fixed
number of warm-up batches runs first and is not timed (lazy CUDA initialisation, kernel selection
and allocator growth would otherwise land in the first pass). The split is then timed `repeats`
times; the median pass is kept, and every pass must predict the same tags.

Choices, written once here:
- per-batch latency p50/p95 are taken over the batches of *all* timed passes pooled (more samples
  than one pass; a model whose speed drifts shows it in p95);
- peak memory on CUDA is `torch.cuda.max_memory_allocated` summed over the devices, reset just
  before the first timed pass; on CPU it is the process' peak resident set size during the timed
  passes: Linux lets a process reset its own high-water mark (`/proc/self/clear_refs`, value 5),
  so `VmHWM` read at the end is the exact peak of the timed region. Where that is not possible the
  lifetime peak from `getrusage` is reported instead and the memory kind says so;
- cost = device-hours x price per device-hour, device-hours = median wall seconds x devices / 3600;
- model time is what a predictor spends inside the model (forward passes, generation), measured by
  its `model_clock`; host time is the rest of the pass (tokenizing the split once, batching, decoding
  tags, parsing generations). Both are the median over the timed passes;
- the machine's load is measured around each timed pass (`MachineLoad`): the share of the CPUs that
  other processes used, and the share stolen by a hypervisor. A pass where others used more than
  `BUSY_SHARE` of the machine, or more than `BUSY_SHARE` was stolen, marks the run as timed on a busy
  machine: its speed is not what the hardware gives;
- progress is reported to an optional `progress(phase, done, total)` callback in sentences: phase
  "warm-up", then "timed pass 1/3", ... It is called as a phase begins (done 0, before a pass' clock
  starts) and between batches, after the batch's latency was read; for the last batch of a timed
  pass only after the pass' wall time was read. Whatever it does between batches (a display
  updating a counter) is inside the pass' wall time, so it must stay tiny: no I/O (a rich display
  draws from its own refresh thread).
"""

from __future__ import annotations

import os
import re
import resource
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from nerbench.environment import describe_device
from nerbench.errors import NerbenchError
from nerbench.protocol import BF16, FP32, NF4, PROTOCOL, TimingProtocol, is_reference_hardware, price_for


@runtime_checkable
class Predictor(Protocol):
    """What every predictor offers (encoders, LLM token classifiers, generators).

    `run_timed` drives predictors through this surface: it asks for length-sorted batches, times
    `predict_batch` on each (calling `synchronize` before every clock read), and restores the
    input order. Defined here, below the models, so the timing layer never imports them.
    """

    labels: tuple[str, ...]
    batch_size: int
    device: str

    def batches(self, sentences: Sequence[Sequence[str]]) -> list[list[int]]:
        """Groups of sentence indices, similar lengths together; every index exactly once."""
        ...

    def predict_batch(self, sentences: Sequence[Sequence[str]]) -> list[list[str]]:
        """One tag per word of each sentence, in the order given."""
        ...

    def synchronize(self) -> None:
        """Wait for queued device work (torch.cuda.synchronize on GPU; nothing on CPU)."""
        ...


# --------------------------------------------------------------------------- model time


class ModelClock:
    """Seconds spent inside the model since the last reset. A predictor wraps each forward pass or
    generate call in `measure()`; the timed pass resets it and reads it, so that host time (the
    rest of the pass) is reported apart from model time."""

    def __init__(self, synchronize: Callable[[], None] = lambda: None, clock: Callable[[], float] = time.perf_counter):
        self._synchronize = synchronize
        self._clock = clock
        self.seconds = 0.0

    def reset(self) -> None:
        self.seconds = 0.0

    @contextmanager
    def measure(self) -> Iterator[None]:
        self._synchronize()
        start = self._clock()
        try:
            yield
        finally:
            self._synchronize()
            self.seconds += self._clock() - start


# --------------------------------------------------------------------------- machine load

BUSY_SHARE = 0.25  # of the machine's CPUs used by other processes (or stolen) during a timed pass


def _cpu_jiffies() -> tuple[int, int, int] | None:
    """(busy, steal, total) clock ticks of all CPUs since boot, from /proc/stat; None elsewhere."""
    try:
        with open("/proc/stat", encoding="ascii") as handle:
            fields = handle.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu" or len(fields) < 9:
        return None
    values = [int(v) for v in fields[1:9]]  # user nice system idle iowait irq softirq steal
    idle = values[3] + values[4]
    steal = values[7]
    total = sum(values)
    return total - idle - steal, steal, total


def _own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


class MachineLoad:
    """How busy the machine was during each timed pass: the share of all CPUs used by *other*
    processes (busy ticks minus this process' CPU time), the share stolen by a hypervisor, and the
    one-minute load average after the pass. Linux only; elsewhere nothing is measured (None).
    Every pass gets an entry, so the entries line up with the passes; a pass shorter than one tick
    of the kernel's CPU counters has its shares as None (too short to tell)."""

    def __init__(self) -> None:
        self.passes: list[dict[str, float | None]] = []
        self._start: tuple[tuple[int, int, int], float] | None = None
        self._ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self._cpus = os.cpu_count() or 1

    def start(self) -> None:
        jiffies = _cpu_jiffies()
        self._start = (jiffies, _own_cpu_seconds()) if jiffies is not None else None

    def stop(self) -> None:
        end = _cpu_jiffies()
        if self._start is None or end is None:
            return
        (busy0, steal0, total0), own0 = self._start
        busy1, steal1, total1 = end
        total = total1 - total0
        own = (_own_cpu_seconds() - own0) * self._ticks
        entry: dict[str, float | None] = {"others_share": None, "steal_share": None}
        if total > 0:
            entry["others_share"] = round(min(max((busy1 - busy0 - own) / total, 0.0), 1.0), 4)
            entry["steal_share"] = round(min(max((steal1 - steal0) / total, 0.0), 1.0), 4)
        try:
            entry["loadavg_1m"] = round(os.getloadavg()[0], 2)
        except OSError:
            pass
        self.passes.append(entry)

    def report(self) -> dict[str, Any] | None:
        if not self.passes:
            return None
        busy = any(_worst(p) > BUSY_SHARE for p in self.passes)
        return {"cpus": self._cpus, "busy_share": BUSY_SHARE, "busy": busy, "passes": list(self.passes)}


def _worst(entry: dict[str, Any]) -> float:
    """The larger of a pass's two shares (0 where the pass was too short to tell)."""
    return max(entry.get("others_share") or 0.0, entry.get("steal_share") or 0.0)


def busy_note(load: dict[str, Any] | None) -> str | None:
    """A plain warning when a run was timed on a busy machine, else None."""
    if not load or not load.get("busy"):
        return None
    worst = max(load["passes"], key=_worst)
    stolen = f", {worst['steal_share']:.0%} stolen" if (worst["steal_share"] or 0) > 0 else ""
    return (
        f"timed on a busy machine: other processes used {worst['others_share'] or 0:.0%} of its "
        f"{load['cpus']} CPUs during a timed pass{stolen}; the speed and cost understate the hardware "
        "(rerun with --force on an idle machine)"
    )


# --------------------------------------------------------------------------- memory probes


class MemoryProbe(Protocol):
    kind: str

    def start(self) -> None: ...

    def stop(self) -> int | None: ...


class CudaMemoryProbe:
    """Peak bytes allocated by torch on every visible CUDA device during the timed region."""

    kind = "cuda_max_memory_allocated"

    def start(self) -> None:
        import torch

        for index in range(torch.cuda.device_count()):
            torch.cuda.reset_peak_memory_stats(index)

    def stop(self) -> int:
        import torch

        return int(sum(torch.cuda.max_memory_allocated(i) for i in range(torch.cuda.device_count())))


def _status_kib(field_name: str) -> int | None:
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return None
    match = re.search(rf"^{field_name}:\s+(\d+)\s+kB", text, re.MULTILINE)
    return int(match.group(1)) if match else None


class RssPeakProbe:
    """Peak resident set size of this process during the timed region (see module doc)."""

    def __init__(self) -> None:
        self.kind = "rss_peak"

    def start(self) -> None:
        try:
            Path("/proc/self/clear_refs").write_text("5")
            self.kind = "rss_peak" if _status_kib("VmHWM") is not None else "rss_lifetime_peak"
        except OSError:
            self.kind = "rss_lifetime_peak"

    def stop(self) -> int | None:
        if self.kind == "rss_peak":
            kib = _status_kib("VmHWM")
            if kib is not None:
                return kib * 1024
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(peak if sys.platform == "darwin" else peak * 1024)  # macOS reports bytes


def default_memory_probe(device: str) -> MemoryProbe:
    return CudaMemoryProbe() if device.startswith("cuda") else RssPeakProbe()


# --------------------------------------------------------------------------- prices


# --------------------------------------------------------------------------- the report


@dataclass(frozen=True)
class TimingReport:
    wall_seconds: float  # median of the timed passes
    pass_seconds: tuple[float, ...]
    repeats: int
    warmup_batches: int
    batch_size: int
    precision: str | None
    sentences: int
    word_tokens: int
    sentences_per_second: float
    tokens_per_second: float
    batch_latency_p50_s: float
    batch_latency_p95_s: float
    peak_memory_bytes: int | None
    memory_kind: str
    device: str
    device_name: str
    num_devices: int
    reference_hardware: bool
    device_hours: float
    price_per_device_hour: float | None  # None: no price known, so the cost is unknown (not 0)
    price_source: str | None
    cost_usd: float | None
    cost_per_1k_sentences_usd: float | None
    # Filled by generative LLM predictors: generated tokens per sentence, per-sentence latency...
    generation: dict[str, Any] | None = None
    model_seconds: float | None = None  # median pass: inside the model (None: the predictor has no model_clock)
    host_seconds: float | None = None  # median pass: the rest (tokenizing, batching, decoding, parsing)
    load: dict[str, Any] | None = None  # MachineLoad.report(): how busy the machine was while timed
    protocol: dict[str, Any] = field(default_factory=PROTOCOL.to_dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["pass_seconds"] = list(self.pass_seconds)
        return out

    def with_generation(self, stats: dict[str, Any]) -> TimingReport:
        return replace(self, generation=dict(stats))


_DTYPE_NAMES = {"torch.bfloat16": BF16, "torch.float32": FP32, "torch.float16": "fp16"}


def loaded_in_4bit(model: Any) -> bool:
    """Whether a transformers model (or the base under a PEFT wrapper) was loaded 4-bit: read from
    its quantizer's config (recent transformers), or the older `is_loaded_in_4bit` flag."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if getattr(base, "is_loaded_in_4bit", False):
        return True
    config = getattr(getattr(base, "hf_quantizer", None), "quantization_config", None)
    return bool(getattr(config, "load_in_4bit", False))


def _precision_of(predictor: Predictor) -> str | None:
    """The predictor's own `precision`, else read off its torch model (4-bit or its dtype)."""
    declared = getattr(predictor, "precision", None)
    if declared:
        return str(declared)
    model = getattr(predictor, "model", None)
    if model is None:
        return None
    if loaded_in_4bit(model):
        return NF4
    dtype = getattr(model, "dtype", None)
    return _DTYPE_NAMES.get(str(dtype), str(dtype)) if dtype is not None else None


def _tokens(sentence: Any) -> Sequence[str]:
    return sentence.tokens if hasattr(sentence, "tokens") else sentence


def _check_batches(order: list[list[int]], n: int) -> None:
    seen = sorted(i for batch in order for i in batch)
    if seen != list(range(n)):
        raise NerbenchError(
            f"predictor.batches: must return every sentence index 0..{n - 1} exactly once "
            f"(got {len(seen)} indices for {n} sentences)"
        )


# progress(phase, done, total): sentences done of the phase's total, after each batch (module doc).
Progress = Callable[[str, int, int], None]


def _no_progress(phase: str, done: int, total: int) -> None:
    pass


def _timed_pass(
    predictor: Predictor,
    sentences: Sequence,
    clock: Callable[[], float],
    load: MachineLoad,
    progress: Progress = _no_progress,
    phase: str = "timed pass",
):
    model_clock: ModelClock | None = getattr(predictor, "model_clock", None)
    progress(phase, 0, len(sentences))  # before the pass' clock starts
    predictor.synchronize()
    load.start()
    if model_clock is not None:
        model_clock.reset()
    start = clock()
    order = predictor.batches(sentences)
    _check_batches(order, len(sentences))
    predictions: list[list[str] | None] = [None] * len(sentences)
    latencies = []
    done = 0
    for number, batch in enumerate(order, start=1):
        predictor.synchronize()
        batch_start = clock()
        tags = predictor.predict_batch([sentences[i] for i in batch])
        predictor.synchronize()
        latencies.append(clock() - batch_start)
        if len(tags) != len(batch):
            raise NerbenchError(
                f"predictor.predict_batch: returned {len(tags)} tag sequences for {len(batch)} sentences"
            )
        for index, sentence_tags in zip(batch, tags):
            predictions[index] = list(sentence_tags)
        done += len(batch)
        if number < len(order):  # the last batch is reported once the pass' time is read
            progress(phase, done, len(sentences))
    predictor.synchronize()
    wall = clock() - start
    load.stop()
    progress(phase, done, len(sentences))
    return wall, predictions, latencies, model_clock.seconds if model_clock is not None else None


def run_timed(
    predictor: Predictor,
    sentences: Sequence,
    protocol: TimingProtocol = PROTOCOL,
    *,
    clock: Callable[[], float] = time.perf_counter,
    memory: MemoryProbe | None = None,
    price_per_hour: float | None = None,
    device_name: str | None = None,
    num_devices: int | None = None,
    progress: Progress | None = None,
) -> tuple[list[list[str]], TimingReport]:
    """Predict `sentences` under the protocol; return the (timed) predictions in input order.

    `progress(phase, done, total)` hears of every batch of the warm-up and of each timed pass."""
    if not sentences:
        raise NerbenchError("run_timed: no sentences to time")
    if protocol.repeats < 1 or protocol.warmup_batches < 0:
        raise NerbenchError("TimingProtocol: repeats must be >= 1 and warmup_batches >= 0")
    memory = memory if memory is not None else default_memory_probe(predictor.device)

    # Warm-up: the first batches of the real batching, untimed, results discarded.
    tell = progress if progress is not None else _no_progress
    warmup = predictor.batches(sentences)[: protocol.warmup_batches]
    warmup_total, warmup_done = sum(len(batch) for batch in warmup), 0
    if warmup:
        tell("warm-up", 0, warmup_total)
    for batch in warmup:
        predictor.predict_batch([sentences[i] for i in batch])
        warmup_done += len(batch)
        tell("warm-up", warmup_done, warmup_total)
    predictor.synchronize()

    memory.start()
    load = MachineLoad()
    passes = [
        _timed_pass(predictor, sentences, clock, load, tell, f"timed pass {number}/{protocol.repeats}")
        for number in range(1, protocol.repeats + 1)
    ]
    peak = memory.stop()

    predictions = passes[0][1]
    for number, (_, other, _, _) in enumerate(passes[1:], start=2):
        if other != predictions:
            first = next(i for i, (a, b) in enumerate(zip(predictions, other)) if a != b)
            raise NerbenchError(
                f"the model is not deterministic: timed pass {number} predicted other tags than pass 1 "
                f"for sentence {first} (disable sampling and dropout, or fix the seed)"
            )
    for index, (sentence, tags) in enumerate(zip(sentences, predictions)):
        if len(tags) != len(_tokens(sentence)):
            raise NerbenchError(f"predictor: sentence {index} has {len(_tokens(sentence))} words but {len(tags)} tags")

    pass_seconds = tuple(float(p[0]) for p in passes)
    wall = float(statistics.median(pass_seconds))
    if not wall > 0:
        raise NerbenchError(f"timing: the median pass took {wall} s; the clock does not advance")
    latencies = np.array([s for p in passes for s in p[2]], dtype=float)
    model = [p[3] for p in passes]
    model_seconds = float(statistics.median(model)) if all(m is not None for m in model) else None
    host_seconds = float(statistics.median(p[0] - p[3] for p in passes)) if model_seconds is not None else None
    n_tokens = sum(len(_tokens(s)) for s in sentences)

    name, count = describe_device(predictor.device)
    name = device_name or name
    count = num_devices or getattr(predictor, "num_devices", None) or count
    hours = wall * count / 3600
    price = price_for(name, price_per_hour)
    cost = hours * price.usd_per_hour if price else None

    report = TimingReport(
        wall_seconds=wall,
        pass_seconds=pass_seconds,
        repeats=protocol.repeats,
        warmup_batches=len(warmup),
        batch_size=int(predictor.batch_size),
        precision=_precision_of(predictor),
        sentences=len(sentences),
        word_tokens=n_tokens,
        sentences_per_second=len(sentences) / wall,
        tokens_per_second=n_tokens / wall,
        batch_latency_p50_s=float(np.percentile(latencies, 50)),
        batch_latency_p95_s=float(np.percentile(latencies, 95)),
        peak_memory_bytes=peak,
        memory_kind=memory.kind,
        device=predictor.device,
        device_name=name,
        num_devices=int(count),
        reference_hardware=is_reference_hardware(name, int(count), protocol),
        device_hours=hours,
        price_per_device_hour=price.usd_per_hour if price else None,
        price_source=price.source if price else None,
        cost_usd=cost,
        cost_per_1k_sentences_usd=cost / len(sentences) * 1000 if cost is not None else None,
        protocol=protocol.to_dict(),
        model_seconds=model_seconds,
        host_seconds=host_seconds,
        load=load.report(),
    )
    return predictions, report
