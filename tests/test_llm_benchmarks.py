"""The GPU timing script's --smoke mode: the same code on CPU with a tiny Llama config."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_llm_timing_smoke_runs_every_mode(data_dir, tmp_path):
    out = tmp_path / "timing.json"
    env = os.environ | {"NERBENCH_DATA_DIR": str(data_dir), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_llm_timing.py"), "--smoke", "--json", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["smoke"] and len(report["rows"]) == 5
    assert {(r["precision"], r["head"], r["serving"]) for r in report["rows"]} == {
        ("bf16", "token", "as-trained"),
        ("nf4", "token", "as-trained"),
        ("fp32", "token", "as-deployed"),  # merged through load_llm_predictor: fp32 on a CPU, bf16 on CUDA
        ("bf16", "generative", "as-trained"),
        ("nf4", "generative", "as-trained"),
    }
    deployed = [r for r in report["rows"] if r["serving"] == "as-deployed"]
    assert deployed[0]["batch_size"] == 32 and deployed[0]["linear_4bit_layers"] == 0
    assert all(r["tokens_processed"] > 0 and 0 < r["bf16_peak_share"] < 1 for r in report["rows"])
    for row in report["rows"]:
        assert row["sentences"] == 3 and row["sentences_per_second"] > 0
        assert row["device"] == "cpu"
        # nf4 rows run 4-bit linear layers (7 per decoder layer, 2 layers), bf16 rows none
        assert row["linear_4bit_layers"] == (14 if row["precision"] == "nf4" else 0)
    generative = [r for r in report["rows"] if r["head"] == "generative"]
    assert all(r["generated_tokens"] > 0 for r in generative)
    assert "random weights (timing only)" in done.stdout
