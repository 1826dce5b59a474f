import math

import pytest

from nerbench.errors import NerbenchError
from nerbench.protocol import (
    BF16,
    ENCODER,
    FP32,
    LLM,
    NF4,
    PROTOCOL,
    TimingProtocol,
    is_reference_hardware,
    price_for,
    price_table,
)
from nerbench.timing import Predictor, RssPeakProbe, run_timed


class FakeClock:
    """Simulated time: the fake predictor advances it, run_timed reads it."""

    def __init__(self) -> None:
        self.now = 100.0
        self.reads = 0

    def __call__(self) -> float:
        self.reads += 1
        return self.now


class FakeMemory:
    kind = "fake"

    def __init__(self) -> None:
        self.started = self.stopped = 0

    def start(self) -> None:
        self.started += 1

    def stop(self) -> int:
        self.stopped += 1
        return 12345


class FakePredictor:
    """Tags every word "O" except words "x" ("B-X"); each batch costs `cost * len(batch)` seconds.

    `pass_costs` gives the cost per sentence of each call to `batches()` after the warm-up one, so
    tests can make the timed passes differ in length.
    """

    labels = ("O", "B-X")
    device = "cpu"

    def __init__(self, clock, batch_size=2, pass_costs=(1.0, 1.0, 1.0), warmup_cost=50.0, flaky=False):
        self.clock = clock
        self.batch_size = batch_size
        self.pass_costs = list(pass_costs)
        self.cost = warmup_cost
        self.flaky = flaky
        self.calls = 0
        self.batch_calls = 0
        self.syncs = 0

    def batches(self, sentences):
        if self.batch_calls > 0:
            self.cost = self.pass_costs[(self.batch_calls - 1) % len(self.pass_costs)]
        self.batch_calls += 1
        order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))
        return [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]

    def predict_batch(self, sentences):
        self.calls += 1
        self.clock.now += self.cost * len(sentences)
        out = [["B-X" if w == "x" else "O" for w in s] for s in sentences]
        if self.flaky and self.batch_calls == 3:  # second timed pass differs
            out[0][0] = "B-X" if out[0][0] == "O" else "O"
        return out

    def synchronize(self):
        self.syncs += 1


SENTENCES = [("a", "x", "b"), ("x",), ("a", "b", "c", "d", "x"), ("q", "r")]


def test_median_of_three_passes_and_warmup_not_timed():
    clock = FakeClock()
    predictor = FakePredictor(clock, pass_costs=(3.0, 1.0, 2.0))
    protocol = TimingProtocol(warmup_batches=1, repeats=3)
    predictions, report = run_timed(predictor, SENTENCES, protocol, clock=clock, memory=FakeMemory())
    n = len(SENTENCES)
    assert report.pass_seconds == (3.0 * n, 1.0 * n, 2.0 * n)  # warm-up (cost 50/sentence) excluded
    assert report.wall_seconds == 2.0 * n
    assert report.warmup_batches == 1
    assert predictor.calls == 1 + 3 * math.ceil(n / 2)


def test_predictions_in_input_order_and_rates():
    clock = FakeClock()
    predictor = FakePredictor(clock)
    predictions, report = run_timed(predictor, SENTENCES, PROTOCOL, clock=clock, memory=FakeMemory())
    assert predictions == [["B-X" if w == "x" else "O" for w in s] for s in SENTENCES]
    words = sum(len(s) for s in SENTENCES)
    assert report.sentences == len(SENTENCES) and report.word_tokens == words
    assert report.sentences_per_second == pytest.approx(len(SENTENCES) / report.wall_seconds)
    assert report.tokens_per_second == pytest.approx(words / report.wall_seconds)
    # Batches of 2 sentences at 1 s per sentence: every batch latency is 2 s.
    assert report.batch_latency_p50_s == pytest.approx(2.0)
    assert report.batch_latency_p50_s <= report.batch_latency_p95_s
    assert report.peak_memory_bytes == 12345 and report.memory_kind == "fake"


def test_latency_percentiles_ordered_with_uneven_batches():
    clock = FakeClock()
    predictor = FakePredictor(clock, batch_size=3, pass_costs=(1.0, 5.0, 2.0))
    _, report = run_timed(predictor, SENTENCES, PROTOCOL, clock=clock, memory=FakeMemory())
    assert report.batch_latency_p50_s < report.batch_latency_p95_s
    assert report.batch_latency_p95_s <= 5.0 * 3


def test_synchronize_before_each_clock_read():
    clock = FakeClock()
    predictor = FakePredictor(clock)
    unsynced_reads = []

    def checked_clock():
        # Work was done (simulated time moved) since the last sync: the read would be wrong on a GPU.
        if clock.now != predictor.time_at_sync:
            unsynced_reads.append(clock.reads)
        return clock()

    original_sync = predictor.synchronize

    def sync():
        predictor.time_at_sync = clock.now
        original_sync()

    predictor.time_at_sync = None
    predictor.synchronize = sync
    run_timed(predictor, SENTENCES, TimingProtocol(warmup_batches=1), clock=checked_clock, memory=FakeMemory())
    assert clock.reads > 0 and unsynced_reads == []


def test_progress_hears_of_every_batch_of_the_warm_up_and_each_timed_pass():
    clock = FakeClock()
    heard = []
    protocol = TimingProtocol(warmup_batches=1, repeats=2)
    run_timed(
        FakePredictor(clock),
        SENTENCES,
        protocol,
        clock=clock,
        memory=FakeMemory(),
        progress=lambda *event: heard.append(event),
    )
    # Batches of two of the four sentences; counts are sentences done of the phase's total.
    assert heard == [
        ("warm-up", 0, 2),
        ("warm-up", 2, 2),
        ("timed pass 1/2", 0, 4),
        ("timed pass 1/2", 2, 4),
        ("timed pass 1/2", 4, 4),
        ("timed pass 2/2", 0, 4),
        ("timed pass 2/2", 2, 4),
        ("timed pass 2/2", 4, 4),
    ]
    quiet, clock = [], FakeClock()
    run_timed(
        FakePredictor(clock),
        SENTENCES,
        TimingProtocol(warmup_batches=0, repeats=1),
        clock=clock,
        memory=FakeMemory(),
        progress=lambda *event: quiet.append(event[0]),
    )
    assert quiet == ["timed pass 1/1"] * 3  # no warm-up batches: no warm-up events


def test_progress_runs_outside_the_batch_latencies_and_after_the_pass_time_is_read():
    clock = FakeClock()

    def slow_display(phase, done, total):  # a callback that takes (simulated) time
        clock.now += 1000.0

    _, report = run_timed(
        FakePredictor(clock),
        SENTENCES,
        TimingProtocol(warmup_batches=1, repeats=1),
        clock=clock,
        memory=FakeMemory(),
        progress=slow_display,
    )
    # Batches of 2 sentences at 1 s each: no latency holds the callback's time; the pass holds the
    # one call between its two batches, not the calls before its first and after its last.
    assert report.batch_latency_p50_s == report.batch_latency_p95_s == pytest.approx(2.0)
    assert report.pass_seconds == (pytest.approx(4.0 + 1000.0),)


def test_memory_probe_wraps_timed_region_only():
    clock = FakeClock()
    memory = FakeMemory()
    run_timed(FakePredictor(clock), SENTENCES, PROTOCOL, clock=clock, memory=memory)
    assert (memory.started, memory.stopped) == (1, 1)


def test_nondeterministic_model_is_refused():
    clock = FakeClock()
    with pytest.raises(NerbenchError, match="not deterministic"):
        run_timed(FakePredictor(clock, flaky=True), SENTENCES, PROTOCOL, clock=clock, memory=FakeMemory())


def test_wrong_number_of_tags_is_refused():
    clock = FakeClock()
    predictor = FakePredictor(clock)
    original = predictor.predict_batch
    predictor.predict_batch = lambda sentences: [tags[:-1] or tags for tags in original(sentences)]
    with pytest.raises(NerbenchError, match="words but"):
        run_timed(predictor, SENTENCES, PROTOCOL, clock=clock, memory=FakeMemory())


def test_batches_must_cover_every_sentence_once():
    clock = FakeClock()
    predictor = FakePredictor(clock)
    predictor.batches = lambda sentences: [[0, 1], [1, 2]]
    with pytest.raises(NerbenchError, match="exactly once"):
        run_timed(predictor, SENTENCES, PROTOCOL, clock=clock, memory=FakeMemory())


def test_cost_is_hours_times_price():
    clock = FakeClock()
    _, report = run_timed(
        FakePredictor(clock),
        SENTENCES,
        PROTOCOL,
        clock=clock,
        memory=FakeMemory(),
        price_per_hour=2.5,
        device_name="NVIDIA H100 80GB HBM3",
        num_devices=2,
    )
    assert report.device_hours == pytest.approx(report.wall_seconds * 2 / 3600)
    assert report.cost_usd == pytest.approx(report.device_hours * 2.5)
    assert report.cost_per_1k_sentences_usd == pytest.approx(report.cost_usd / len(SENTENCES) * 1000)
    assert "--price-per-hour" in report.price_source
    assert report.reference_hardware is False  # two devices are not the reference set-up


def test_price_from_table_and_reference_mark():
    clock = FakeClock()
    _, report = run_timed(
        FakePredictor(clock),
        SENTENCES,
        PROTOCOL,
        clock=clock,
        memory=FakeMemory(),
        device_name="NVIDIA H100 80GB HBM3",
        num_devices=1,
    )
    expected = price_for("NVIDIA H100 80GB HBM3")
    assert report.reference_hardware is True
    assert report.price_per_device_hour == expected.usd_per_hour
    assert report.cost_usd == pytest.approx(report.device_hours * expected.usd_per_hour)


def test_unknown_device_has_unknown_cost_not_zero():
    clock = FakeClock()
    _, report = run_timed(
        FakePredictor(clock),
        SENTENCES,
        PROTOCOL,
        clock=clock,
        memory=FakeMemory(),
        device_name="CPU: Some Processor (96 threads)",
    )
    assert report.reference_hardware is False
    assert report.price_per_device_hour is None and report.cost_usd is None
    assert report.cost_per_1k_sentences_usd is None
    d = report.to_dict()
    assert d["cost_usd"] is None and d["pass_seconds"] == list(report.pass_seconds)
    assert d["protocol"]["repeats"] == 3


def test_bad_price_override_is_refused():
    with pytest.raises(NerbenchError, match="price-per-hour"):
        price_for("anything", 0)


def test_price_table_states_source_and_date_for_every_device():
    table = price_table()
    assert table["currency"] == "USD"
    for entry in table["devices"]:
        assert entry["usd_per_hour"] > 0
        assert entry["source"].startswith("https://")
        assert entry["price_date"] and entry["read_on"]
    assert price_for("NVIDIA H200") is not None and price_for("NVIDIA H200 NVL") is None
    assert price_for("NVIDIA A100-SXM4-80GB") is not None
    assert price_for("NVIDIA A100-SXM4-40GB") is None


def test_protocol_values():
    assert PROTOCOL.repeats == 3
    assert PROTOCOL.batch_size(ENCODER) == PROTOCOL.encoder_batch_size
    assert PROTOCOL.batch_size(LLM) == PROTOCOL.llm_batch_size
    assert PROTOCOL.precision(ENCODER) == BF16
    assert PROTOCOL.precision(LLM) == BF16  # merged LoRA
    assert PROTOCOL.precision(LLM, quantized=True) == NF4
    assert PROTOCOL.precision(ENCODER, device="cpu") == FP32
    with pytest.raises(NerbenchError, match="family"):
        PROTOCOL.batch_size("rnn")


def test_with_generation_fills_the_llm_field():
    clock = FakeClock()
    _, report = run_timed(FakePredictor(clock), SENTENCES, PROTOCOL, clock=clock, memory=FakeMemory())
    assert report.generation is None
    filled = report.with_generation({"generated_tokens_per_sentence": 12.5})
    assert filled.to_dict()["generation"] == {"generated_tokens_per_sentence": 12.5}


def test_rss_probe_sees_memory_touched_in_the_region():
    probe = RssPeakProbe()
    probe.start()
    block = bytearray(64 * 1024 * 1024)
    block[::4096] = b"\x01" * len(block[::4096])  # touch every page so it becomes resident
    peak = probe.stop()
    del block
    assert peak is not None and peak >= 64 * 1024 * 1024


def test_cuda_memory_probe_resets_and_sums_every_device(monkeypatch):
    import torch

    from nerbench.timing import CudaMemoryProbe, default_memory_probe

    reset = []
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda index: reset.append(index))
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda index: (index + 1) * 1000)
    probe = default_memory_probe("cuda:0")
    assert isinstance(probe, CudaMemoryProbe)
    probe.start()
    assert reset == [0, 1]
    assert probe.stop() == 3000
    assert isinstance(default_memory_probe("cpu"), RssPeakProbe)


def test_cuda_device_named_by_torch(monkeypatch):
    import torch

    from nerbench.environment import describe_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index: ["NVIDIA H200", "NVIDIA H100 80GB HBM3"][index])
    assert describe_device("cuda") == ("NVIDIA H200", 1)
    assert describe_device("cuda:1") == ("NVIDIA H100 80GB HBM3", 1)


def test_precision_read_off_the_model_when_not_declared():
    import torch

    clock = FakeClock()
    predictor = FakePredictor(clock)
    predictor.model = torch.nn.Linear(2, 2).to(torch.bfloat16)
    predictor.model.dtype = torch.bfloat16  # transformers models expose .dtype; nn.Module does not
    _, report = run_timed(predictor, SENTENCES, PROTOCOL, clock=clock, memory=FakeMemory())
    assert report.precision == BF16
    predictor.model.is_loaded_in_4bit = True
    _, report = run_timed(predictor, SENTENCES, PROTOCOL, clock=clock, memory=FakeMemory())
    assert report.precision == NF4
    predictor.precision = "fp32"
    _, report = run_timed(predictor, SENTENCES, PROTOCOL, clock=clock, memory=FakeMemory())
    assert report.precision == FP32


def test_two_thread_cpu_has_the_cited_vm_price():
    price = price_for("CPU: AMD EPYC 9B14 (2 threads)")
    assert price is not None and price.usd_per_hour == 0.0816 and "m7g.large" not in price.source
    assert "AWS EC2" in price.source and "2026-06-17" in price.source


def test_reference_hardware_is_one_h100_80gb_hbm3():
    assert is_reference_hardware("NVIDIA H100 80GB HBM3", 1)
    assert is_reference_hardware(" nvidia h100 80gb hbm3 ", 1)
    assert not is_reference_hardware("NVIDIA H100 80GB HBM3", 2)
    assert not is_reference_hardware("NVIDIA H100 PCIe", 1)
    assert not is_reference_hardware("NVIDIA H200", 1)
    assert not is_reference_hardware("CPU: AMD EPYC (2 threads)", 1)
    custom = TimingProtocol(reference_device_names=("NVIDIA H200",))
    assert is_reference_hardware("NVIDIA H200", 1, custom)


def test_the_fake_predictor_has_the_protocol_surface():
    assert isinstance(FakePredictor(FakeClock()), Predictor)
    assert not isinstance(object(), Predictor)
