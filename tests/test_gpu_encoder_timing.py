"""The prepared GPU timing script runs its whole code path on CPU (--smoke), so a GPU session
only has to run it."""

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu_encoder_timing.py"


def test_smoke_run_writes_a_report_per_architecture(data_dir, tmp_path):
    spec = importlib.util.spec_from_file_location("gpu_encoder_timing", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "timing.json"
    assert module.main(["--device", "cpu", "--sentences", "6", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["sentences"] == 6 and report["skipped"] == {}
    assert set(report["reports"]) == {
        "bert-large (random weights)",
        "deberta-v3-large (random weights)",
        "minilm-l6 (real weights, fresh head)",
        # the "onnx" serving condition (ONNX Runtime's CPU provider here, its CUDA provider on a GPU)
        "bert-large (random weights) onnx",
        "minilm-l6 (real weights, fresh head) onnx",
    }
    for name, r in report["reports"].items():
        assert r["repeats"] == 3 and r["sentences"] == 6 and r["wall_seconds"] > 0
        assert not {"f1", "precision_score", "strict"} & set(r)  # timing only: no score of random weights
        assert r["serving"] == ("onnx" if name.endswith(" onnx") else "as-trained") and r["precision"] == "fp32"
        assert r["sub_tokens"] > 0 and 0 < r["bf16_peak_share"] < 1 and r["peak_memory_bytes"] > 0


def test_peak_share_is_two_flops_per_parameter_and_token_over_the_h100_bf16_peak():
    spec = importlib.util.spec_from_file_location("_gpu_common", SCRIPT.parent / "_gpu_common.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.H100_SXM_DENSE_BF16_FLOPS == 989.5e12  # half the datasheet's 1,979 TFLOP/s with sparsity
    assert module.peak_share(1_000_000, 500, 1.0) == 2 * 1_000_000 * 500 / 989.5e12
    assert module.peak_share(10, 10, 0.0) == 0.0
