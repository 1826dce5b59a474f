"""LLM serving conditions ("as-trained": the base quantized as trained with the adapter unmerged;
"as-deployed": merged into a 16-bit base at a throughput batch), model time apart from host time,
the split tokenized once per pass, and the machine's load measured around each timed pass.
Tiny random models: plumbing only, their scores are never results."""

import pytest
from test_llm_evaluate import options, small_data, tiny_profile  # noqa: F401 (fixtures)

from nerbench import timing as timing_module
from nerbench.conll import Sentence
from nerbench.errors import NerbenchError
from nerbench.models.encoder import EncoderPredictor
from nerbench.models.llm import is_quantized, load_llm_predictor
from nerbench.models.llm_training import train_llm
from nerbench.models.predictor import predict_all
from nerbench.models.registry import resolve_model
from nerbench.pipeline import evaluate as ev
from nerbench.pipeline.taggers import Request, select_tagger
from nerbench.protocol import DEPLOYED_LLM_BATCH_SIZE, PROTOCOL, TimingProtocol
from nerbench.recipes import LLMRecipe
from nerbench.store import Store
from nerbench.timing import BUSY_SHARE, MachineLoad, ModelClock, busy_note, run_timed

from _tiny_llm import ENTITY_TYPES, LABELS, SENTENCES, save_tiny
from _tiny_models import NCBI_LABELS, save_tiny_bert

SENTS = [Sentence(tuple(t), tuple(g), i + 1) for i, (t, g) in enumerate(SENTENCES)]


def _adapter(folder, quantize="none"):
    base = save_tiny(folder / "base", "llama")
    train_llm(
        str(base), SENTS, SENTS[:2], LABELS, ENTITY_TYPES, LLMRecipe(lora_r=4, lora_alpha=8), folder / "adapter",
        head="token", epochs=1, batch_size=2, gradient_accumulation_steps=1, lr=1e-3, quantize=quantize,
    )  # fmt: skip
    return resolve_model(folder / "adapter")


@pytest.fixture(scope="module")
def nf4_adapter(tmp_path_factory):
    return _adapter(tmp_path_factory.mktemp("nf4"), quantize="nf4")


def test_as_trained_keeps_the_4bit_base_and_the_adapter_apart_as_deployed_merges_into_16_bit(nf4_adapter):
    trained = load_llm_predictor(nf4_adapter, LABELS, ENTITY_TYPES)
    deployed = load_llm_predictor(nf4_adapter, LABELS, ENTITY_TYPES, serving="as-deployed")
    # as trained: the paper's QLoRA model, 4-bit base plus a separate LoRA pass, batch 8
    assert hasattr(trained.model, "get_base_model") and is_quantized(trained.model)
    assert trained.precision == "nf4" and trained.batch_size == PROTOCOL.llm_batch_size
    # as deployed: one plain 16-bit model (fp32 on a CPU), throughput batch
    assert not hasattr(deployed.model, "get_base_model") and not is_quantized(deployed.model)
    assert deployed.precision == "fp32" and deployed.batch_size == DEPLOYED_LLM_BATCH_SIZE
    tokens = [s.tokens for s in SENTS]
    for predictor in (trained, deployed):
        assert [len(t) for t in predict_all(predictor, tokens)] == [len(t) for t in tokens]
    with pytest.raises(NerbenchError, match="serving"):
        load_llm_predictor(nf4_adapter, LABELS, ENTITY_TYPES, serving="merged")


def test_the_run_record_names_the_serving_condition(nf4_adapter):
    trained = select_tagger(nf4_adapter, Request(device="cpu"), fine_tune=False)
    deployed = select_tagger(nf4_adapter, Request(device="cpu", serving="as-deployed"), fine_tune=False)
    assert (trained.serving, trained.quantization, trained.batch_size) == ("as-trained", "nf4", 8)
    assert (deployed.serving, deployed.quantization, deployed.batch_size) == ("as-deployed", "none", 32)
    assert deployed.precision == "fp32"
    with pytest.raises(NerbenchError, match="--serving"):
        select_tagger(nf4_adapter, Request(device="cpu", serving="fastest"), fine_tune=False)


def test_an_encoder_is_deployed_in_bf16_only_where_the_cpu_has_it(tmp_path, monkeypatch):
    from nerbench.models import encoder as encoder_module

    folder = save_tiny_bert(tmp_path / "enc", labels=NCBI_LABELS)
    monkeypatch.setattr(encoder_module, "cpu_bf16_support", lambda: encoder_module.CpuBf16(False, "no bf16 (fake)"))
    with pytest.raises(NerbenchError, match="no bf16"):  # more in test_encoder_serving.py
        select_tagger(resolve_model(folder), Request(device="cpu", serving="as-deployed"), fine_tune=False)


def test_eval_stores_each_serving_condition_as_its_own_run_of_one_checkpoint(tmp_path, small_data, monkeypatch):  # noqa: F811
    from nerbench.models import catalogue, registry

    base = save_tiny(tmp_path / "base", "llama")
    meta = catalogue.REGISTRY["smollm2-135m"]
    real_resolve = registry.resolve_model

    def resolve(arg, revision=None):
        if str(arg) == "smollm2-135m":
            return registry.ResolvedModel("smollm2-135m", "registry", base, meta.hf_id, None, meta)
        return real_resolve(arg, revision)

    monkeypatch.setattr(registry, "resolve_model", resolve)
    said = []
    trained, deployed = ev.evaluate(
        "smollm2-135m", options(tmp_path, small_data, servings=("as-trained", "as-deployed")), say=said.append
    )
    assert (trained.serving, deployed.serving) == ("as-trained", "as-deployed")
    assert trained.trained and not deployed.trained  # one checkpoint, trained once, served twice
    assert sum("no fine-tuned" in m for m in said) == 1 and any("served as-deployed" in m for m in said)
    with Store(tmp_path / "r.duckdb") as store:
        a, b = store.run(trained.run_id)["record"], store.run(deployed.run_id)["record"]
        assert a.training == b.training and a.run_id != b.run_id
        assert (a.serving, a.batch_size) == ("as-trained", 8) and (b.serving, b.batch_size) == ("as-deployed", 32)
        for outcome in (trained, deployed):
            timing = store.timing(outcome.run_id)
            assert timing["model_seconds"] > 0 and timing["host_seconds"] >= 0
            longest = max(timing["pass_seconds"])
            assert timing["model_seconds"] < longest and timing["host_seconds"] < longest
            assert timing["load"]["passes"] and len(timing["load"]["passes"]) == timing["repeats"]


# --------------------------------------------------------------------------- model and host time


class _ClockedPredictor:
    """Each batch: 1 s of host work, then 3 s per sentence inside the model."""

    labels = ("O",)
    device = "cpu"
    batch_size = 2

    def __init__(self, clock):
        self.clock = clock
        self.model_clock = ModelClock(clock=clock)

    def batches(self, sentences):
        return [list(range(i, min(i + 2, len(sentences)))) for i in range(0, len(sentences), 2)]

    def predict_batch(self, sentences):
        self.clock.now += 1.0
        with self.model_clock.measure():
            self.clock.now += 3.0 * len(sentences)
        return [["O"] * len(s) for s in sentences]

    def synchronize(self):
        pass


class _Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_model_time_is_reported_apart_from_host_time():
    clock = _Clock()
    sentences = [("a",), ("b", "c"), ("d",)]
    _, report = run_timed(_ClockedPredictor(clock), sentences, TimingProtocol(warmup_batches=1, repeats=3), clock=clock)
    assert report.model_seconds == pytest.approx(9.0)  # 3 sentences x 3 s
    assert report.host_seconds == pytest.approx(2.0)  # two batches x 1 s
    assert report.wall_seconds == pytest.approx(11.0)


class _Unclocked:
    """The same predictor without a `model_clock` attribute."""

    def __init__(self, inner):
        self.labels, self.device, self.batch_size = inner.labels, inner.device, inner.batch_size
        self.batches, self.predict_batch, self.synchronize = inner.batches, inner.predict_batch, inner.synchronize


def test_a_predictor_without_a_model_clock_reports_no_split():
    clock = _Clock()
    plain = _Unclocked(_ClockedPredictor(clock))
    _, report = run_timed(plain, [("a",)], TimingProtocol(warmup_batches=0, repeats=1), clock=clock)
    assert report.model_seconds is None and report.host_seconds is None


def test_the_encoder_tokenizes_the_split_once_per_pass(tmp_path, monkeypatch):
    predictor = EncoderPredictor.load(
        str(save_tiny_bert(tmp_path / "enc", labels=NCBI_LABELS)), NCBI_LABELS, batch_size=4
    )
    calls = []
    original = type(predictor.tokenizer).__call__

    def counting(self, *args, **kwargs):
        calls.append(args)
        return original(self, *args, **kwargs)

    sentences = [["Familial", "adenomatous", "polyposis"], ["BRCA1", "mutations"], ["a", "b", "c", "d"]] * 5
    _, report = run_timed(predictor, sentences, TimingProtocol(warmup_batches=1, repeats=2))
    monkeypatch.setattr(type(predictor.tokenizer), "__call__", counting)
    order = predictor.batches(sentences)
    calls_in_batches = len(calls)
    tags = [predictor.predict_batch([sentences[i] for i in batch]) for batch in order]
    monkeypatch.undo()
    assert len(order) > 1 and calls_in_batches >= 1 and len(calls) == calls_in_batches  # nothing re-tokenized per batch
    assert sum(len(t) for t in tags) == len(sentences)
    assert report.model_seconds is not None and 0 < report.model_seconds < report.wall_seconds


# --------------------------------------------------------------------------- the machine's load


def _ticks(monkeypatch, readings):
    values = iter(readings)
    monkeypatch.setattr(timing_module, "_cpu_jiffies", lambda: next(values))
    monkeypatch.setattr(timing_module, "_own_cpu_seconds", lambda: 0.0)


def test_other_processes_using_the_cpus_mark_the_pass_busy(monkeypatch):
    # 1000 ticks pass; 600 of them busy in other processes (this one used none)
    _ticks(monkeypatch, [(0, 0, 0), (600, 0, 1000)])
    load = MachineLoad()
    load.start()
    load.stop()
    report = load.report()
    assert report["busy"] and report["passes"][0]["others_share"] == pytest.approx(0.6)
    assert "busy machine" in busy_note(report) and "60%" in busy_note(report)


def test_an_idle_machine_is_not_busy_and_steal_counts(monkeypatch):
    _ticks(monkeypatch, [(0, 0, 0), (50, 0, 1000), (0, 0, 0), (10, 400, 1000)])
    idle = MachineLoad()
    idle.start()
    idle.stop()
    assert not idle.report()["busy"] and busy_note(idle.report()) is None
    stolen = MachineLoad()
    stolen.start()
    stolen.stop()
    assert stolen.report()["passes"][0]["steal_share"] == pytest.approx(0.4)
    assert 0.4 > BUSY_SHARE
    assert stolen.report()["busy"] and "stolen" in busy_note(stolen.report())


def test_a_pass_shorter_than_a_tick_keeps_its_place_unmeasured(monkeypatch):
    # the kernel's counters did not move in the second pass: it is stored, its shares unknown
    _ticks(monkeypatch, [(0, 0, 0), (600, 0, 1000), (600, 0, 1000), (600, 0, 1000), (600, 0, 1000), (650, 0, 2000)])
    load = MachineLoad()
    for _ in range(3):
        load.start()
        load.stop()
    report = load.report()
    assert [p["others_share"] for p in report["passes"]] == [pytest.approx(0.6), None, pytest.approx(0.05)]
    assert report["busy"] and "60%" in busy_note(report)
    quiet = MachineLoad()
    _ticks(monkeypatch, [(0, 0, 0), (0, 0, 0)])
    quiet.start()
    quiet.stop()
    assert not quiet.report()["busy"] and busy_note(quiet.report()) is None


def test_no_proc_stat_means_no_load_measured(monkeypatch):
    monkeypatch.setattr(timing_module, "_cpu_jiffies", lambda: None)
    load = MachineLoad()
    load.start()
    load.stop()
    assert load.report() is None and busy_note(None) is None
