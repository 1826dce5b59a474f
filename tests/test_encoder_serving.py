"""Encoder serving conditions: bf16 where the CPU's native support is detected (as-deployed) and the
fp32 graph through ONNX Runtime (onnx), exported once per checkpoint, cached beside it and checked
against PyTorch before use. Tiny random models: plumbing only, their scores are never results."""

import json

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper
from test_llm_evaluate import options, small_data  # noqa: F401 (fixtures)

from nerbench.errors import NerbenchError
from nerbench.models import encoder as encoder_module
from nerbench.models import onnx_encoder
from nerbench.models.encoder import CpuBf16, EncoderPredictor, cpu_bf16_support, cpu_flags, inference_dtype
from nerbench.models.onnx_encoder import MANIFEST_FILE, MODEL_FILE, ONNX_DIR, OnnxEncoderPredictor, sha256_file
from nerbench.models.predictor import predict_all
from nerbench.models.registry import resolve_model
from nerbench.pipeline import evaluate as ev
from nerbench.pipeline.taggers import Request, select_tagger
from nerbench.store import Store
from nerbench.timing import Predictor, run_timed

from _tiny_models import NCBI_LABELS, save_tiny_bert

SENTENCES = [
    ["Familial", "adenomatous", "polyposis", "is", "inherited", "."],
    ["Ataxia", "-", "telangiectasia"],
    [],
    ["Mutations", "in", "BRCA1", "cause", "breast", "and", "ovarian", "cancer", "."],
    ["a"],
]
BF16 = frozenset({"fpu", "avx512f", "avx512_bf16"})


# --------------------------------------------------------------------------- bf16 detection


def test_bf16_needs_the_cpu_flag_torchs_dispatch_level_and_torchs_query():
    assert cpu_bf16_support(BF16, "AVX512", True).supported
    assert cpu_bf16_support(frozenset({"amx_bf16", "amx_tile"}), "AVX512", True).supported
    no_flag = cpu_bf16_support(frozenset({"avx2", "avx512f"}), "AVX512", True)
    assert not no_flag.supported and "avx512_bf16" in no_flag.reason
    low_level = cpu_bf16_support(BF16, "AVX2", True)  # e.g. ATEN_CPU_CAPABILITY=avx2
    assert not low_level.supported and "AVX2" in low_level.reason
    assert not cpu_bf16_support(BF16, "AVX512", False).supported
    # no flag list (not Linux): torch's query stands in for it
    assert cpu_bf16_support(None, "AVX512", True).supported
    assert not cpu_bf16_support(None, "DEFAULT", True).supported


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Fake CPU\nflags\t\t: fpu sse avx512f avx512_bf16\n\n")
    assert cpu_flags(info) == frozenset({"fpu", "sse", "avx512f", "avx512_bf16"})
    assert cpu_flags(tmp_path / "missing") is None


def test_as_deployed_dtype_is_bf16_only_where_detected(monkeypatch):
    assert inference_dtype("cpu") == torch.float32 and inference_dtype("cuda") == torch.bfloat16
    monkeypatch.setattr(encoder_module, "cpu_bf16_support", lambda: CpuBf16(True, "fake"))
    assert inference_dtype("cpu", "as-deployed") == torch.bfloat16
    monkeypatch.setattr(encoder_module, "cpu_bf16_support", lambda: CpuBf16(False, "no native bf16 (fake)"))
    with pytest.raises(NerbenchError, match="no native bf16"):
        inference_dtype("cpu", "as-deployed")


def test_an_encoder_on_a_cpu_without_bf16_is_refused_as_deployed_before_training(tmp_path, monkeypatch):
    folder = save_tiny_bert(tmp_path / "enc", labels=NCBI_LABELS)
    monkeypatch.setattr(encoder_module, "cpu_bf16_support", lambda: CpuBf16(False, "no native bf16 (fake)"))
    with pytest.raises(NerbenchError, match="no native bf16"):
        select_tagger(resolve_model(folder), Request(device="cpu", serving="as-deployed"), fine_tune=False)
    # on CUDA an encoder is deployed in bf16 without asking the CPU
    tagger = select_tagger(resolve_model(folder), Request(device="cuda", serving="as-deployed"), fine_tune=False)
    assert tagger.precision == "bf16"


def test_the_record_names_each_encoder_serving_condition_and_its_precision(tmp_path, monkeypatch):
    folder = resolve_model(save_tiny_bert(tmp_path / "enc", labels=NCBI_LABELS))
    monkeypatch.setattr(encoder_module, "cpu_bf16_support", lambda: CpuBf16(True, "fake"))
    found = {
        serving: (t.serving, t.precision, t.batch_size)
        for serving in ("as-trained", "as-deployed", "onnx")
        for t in [select_tagger(folder, Request(device="cpu", serving=serving), fine_tune=False)]
    }
    assert found == {
        "as-trained": ("as-trained", "fp32", 64),
        "as-deployed": ("as-deployed", "bf16", 64),
        "onnx": ("onnx", "fp32", 64),
    }


# --------------------------------------------------------------------------- ONNX export


@pytest.fixture
def checkpoint(tmp_path):
    return save_tiny_bert(tmp_path / "ckpt", labels=NCBI_LABELS)


def test_onnx_gives_pytorchs_tags_and_its_export_is_cached_and_reused(checkpoint, monkeypatch):
    first = OnnxEncoderPredictor.load(checkpoint, NCBI_LABELS, verify_on=SENTENCES, batch_size=2, device="cpu")
    assert isinstance(first, Predictor) and first.precision == "fp32" and first.provider == "CPUExecutionProvider"
    assert first.export is not None and first.export.exported_now
    onnx_file = checkpoint / ONNX_DIR / MODEL_FILE
    manifest = json.loads((checkpoint / ONNX_DIR / MANIFEST_FILE).read_text())
    assert manifest["onnx_sha256"] == sha256_file(onnx_file)
    assert set(manifest["exporter"]) >= {"torch", "onnx", "onnxscript", "transformers", "opset"}
    # Fused for ONNX Runtime: the graph runs its fused attention kernel, and the manifest says so.
    assert manifest["attention"] == "eager" and manifest["fusions"].get("attention", 0) >= 1
    assert "Attention" in {node.op_type for node in onnx.load(str(onnx_file)).graph.node}
    assert first.serving_check["export"]["fusions"] == manifest["fusions"]
    reference = EncoderPredictor.load(checkpoint, NCBI_LABELS, batch_size=2)
    assert predict_all(first, SENTENCES) == predict_all(reference, SENTENCES)
    tags, report = run_timed(first, SENTENCES)  # the protocol times it like any predictor
    assert tags == predict_all(reference, SENTENCES) and report.precision == "fp32" and report.model_seconds > 0

    def no_export(*args, **kwargs):
        raise AssertionError("exported again")

    monkeypatch.setattr(onnx_encoder, "export_onnx", no_export)
    mtime = onnx_file.stat().st_mtime_ns
    second = OnnxEncoderPredictor.load(checkpoint, NCBI_LABELS, verify_on=SENTENCES, device="cpu")
    assert second.export is not None and not second.export.exported_now and onnx_file.stat().st_mtime_ns == mtime


def test_changed_weights_export_again(checkpoint):
    OnnxEncoderPredictor.load(checkpoint, NCBI_LABELS, verify_on=SENTENCES, device="cpu")
    save_tiny_bert(checkpoint, labels=NCBI_LABELS, seed=3)  # the same folder, other weights
    again = OnnxEncoderPredictor.load(checkpoint, NCBI_LABELS, verify_on=SENTENCES, device="cpu")
    assert again.export is not None and again.export.exported_now
    assert again.export.manifest["weights_sha256"] == onnx_encoder.weights_sha256(checkpoint)


def test_an_export_that_tags_differently_is_refused(checkpoint):
    OnnxEncoderPredictor.load(checkpoint, NCBI_LABELS, verify_on=SENTENCES, device="cpu")
    path = checkpoint / ONNX_DIR / MODEL_FILE
    graph = onnx.load(str(path))
    (bias,) = [t for t in graph.graph.initializer if t.name.endswith("classifier.bias")]
    values = numpy_helper.to_array(bias).copy()
    values[1] += 100.0  # every sub-token becomes B-Disease: a broken export, with a manifest that matches it
    bias.CopyFrom(numpy_helper.from_array(values.astype(np.float32), bias.name))
    onnx.save(graph, str(path))
    manifest_path = checkpoint / ONNX_DIR / MANIFEST_FILE
    manifest = json.loads(manifest_path.read_text())
    manifest_path.write_text(json.dumps(manifest | {"onnx_sha256": sha256_file(path)}))
    with pytest.raises(NerbenchError, match=r"--serving onnx refused: the ONNX export tags \d+ of \d+ words"):
        OnnxEncoderPredictor.load(checkpoint, NCBI_LABELS, verify_on=SENTENCES, device="cpu")


def test_a_graph_the_rewriter_cannot_fuse_stays_as_exported(tmp_path, monkeypatch):
    path = tmp_path / "model.onnx"
    value = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])
    out = onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])
    graph = onnx.helper.make_graph([onnx.helper.make_node("Identity", ["x"], ["y"])], "g", [value], [out])
    onnx.save(onnx.helper.make_model(graph), str(path))
    exported = path.read_bytes()
    called = []

    def broken(model):
        called.append(model)
        raise RuntimeError("pattern failed")

    monkeypatch.setattr("onnxscript.rewriter.ort_fusions.optimize_for_ort", broken)
    assert onnx_encoder.fuse_for_ort(path) == {}
    assert called and path.read_bytes() == exported and list(tmp_path.iterdir()) == [path]


def test_a_damaged_export_is_made_again(checkpoint):
    OnnxEncoderPredictor.load(checkpoint, NCBI_LABELS, verify_on=SENTENCES, device="cpu")
    (checkpoint / ONNX_DIR / MODEL_FILE).write_bytes(b"truncated")
    again = OnnxEncoderPredictor.load(checkpoint, NCBI_LABELS, verify_on=SENTENCES, device="cpu")
    assert again.export is not None and again.export.exported_now


# --------------------------------------------------------------------------- through nerbench eval


def test_eval_stores_each_encoder_serving_condition_with_its_dev_check(tmp_path, small_data, monkeypatch):  # noqa: F811
    folder = save_tiny_bert(tmp_path / "enc", labels=NCBI_LABELS)
    monkeypatch.setattr(encoder_module, "cpu_bf16_support", lambda: CpuBf16(True, "native bf16 (fake)"))
    said: list[str] = []
    outcomes = ev.evaluate(
        str(folder),
        options(tmp_path, small_data, profile="quick", servings=("as-trained", "onnx", "as-deployed")),
        say=said.append,
    )
    assert [o.serving for o in outcomes] == ["as-trained", "onnx", "as-deployed"]
    assert any("served onnx" in m for m in said) and any("served as-deployed" in m for m in said)
    with Store(tmp_path / "r.duckdb") as store:
        records = {o.serving: store.run(o.run_id)["record"] for o in outcomes}
    assert {s: (r.serving, r.precision) for s, r in records.items()} == {
        "as-trained": ("as-trained", "fp32"),
        "onnx": ("onnx", "fp32"),
        "as-deployed": ("as-deployed", "bf16"),
    }
    assert len({r.run_id for r in records.values()}) == 3
    trained, onnx_run, deployed = outcomes
    assert "serving_check" not in trained.details
    check = onnx_run.details["serving_check"]
    assert check["split"] == "dev" and check["sentences"] == 3 and check["tags_changed"] == 0
    assert check["dev_f1"]["onnx"] == check["dev_f1"]["pytorch_fp32"]
    assert check["export"]["exported_now"] and (folder / ONNX_DIR / MODEL_FILE).is_file()
    check = deployed.details["serving_check"]
    assert (check["reference"], check["candidate"]) == ("pytorch fp32", "pytorch bf16")
    assert set(check["dev_f1"]) == {"fp32", "bf16"} and check["tags_changed"] >= 0
    assert check["bf16_support"] == "native bf16 (fake)"


def test_onnx_is_not_a_serving_condition_of_an_llm(tmp_path):
    from _tiny_llm import save_tiny

    llm = resolve_model(save_tiny(tmp_path / "llm", "llama"))
    with pytest.raises(NerbenchError, match="--serving onnx: not a serving condition of the llm"):
        select_tagger(llm, Request(device="cpu", serving="onnx"), fine_tune=False)
