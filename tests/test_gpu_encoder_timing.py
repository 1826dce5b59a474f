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
    assert module.main(["--smoke", "--sentences", "6", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["sentences"] == 6
    assert set(report["reports"]) == {
        "bert-large (random weights)",
        "deberta-v3-large (random weights)",
        "minilm-l6 (real weights, fresh head)",
    }
    for r in report["reports"].values():
        assert r["repeats"] == 3 and r["sentences"] == 6 and r["wall_seconds"] > 0
        assert not {"f1", "precision_score", "strict"} & set(r)  # timing only: no score of random weights
