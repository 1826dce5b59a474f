"""The timing protocol on a GPU for the paper's encoder architectures — timing only, never F1.

    NERBENCH_DATA_DIR=... .venv/bin/python benchmarks/gpu_encoder_timing.py [--dataset bc5cdr] [--out timing.json]
    .venv/bin/python benchmarks/gpu_encoder_timing.py --device cpu  # the same code on CPU, tiny models (--smoke)

BERT-large and DeBERTa-v3-large are built from their architecture (hand-written configs: no model
hub here) with random weights: the time of a forward pass does not depend on the weights, so such
a run measures the protocol's cost faithfully while its tags are meaningless — it never stores or
prints an F1. MiniLM-L6 is the real packaged encoder with a fresh head. All three use MiniLM's
WordPiece tokenizer (BERT's vocabulary); DeBERTa's own SentencePiece tokenizer splits words a
little differently, so its sub-token counts here are BERT's. bf16 on CUDA, fp32 on CPU, batch size
and passes from `nerbench.protocol.PROTOCOL`.

Each model is also timed as the "onnx" serving condition (`--onnx`, default: MiniLM-L6 and
BERT-large; DeBERTa's relative attention makes a slow export): its fp32 graph exported by
torch.onnx.export (outside the clock) and run by ONNX Runtime's CUDA provider, which needs the
onnxruntime-gpu build; where the installed onnxruntime has no CUDA provider the row says so and is
left out. Its peak memory is the device's memory in use at the end (ONNX Runtime's arena keeps its
peak; torch's counters do not see it). The table gives sentences/s, peak memory and the share of
the H100 SXM's dense bf16 peak (989.5 TFLOP/s, NVIDIA's datasheet) reached, with FLOPs estimated as
2 x parameters x sub-tokens processed (padding not counted).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from transformers import (  # noqa: E402
    AutoTokenizer,
    BertConfig,
    BertForTokenClassification,
    DebertaV2Config,
    DebertaV2ForTokenClassification,
)

from nerbench.datasets import get_dataset, load_split  # noqa: E402
from nerbench.errors import NerbenchError  # noqa: E402
from nerbench.models.encoder import EncoderPredictor, inference_dtype  # noqa: E402
from nerbench.models.onnx_encoder import OnnxEncoderPredictor, ensure_export, inference_session  # noqa: E402
from nerbench.models.registry import resolve_model  # noqa: E402
from nerbench.timing import run_timed  # noqa: E402

from _gpu_common import DeviceUsedMemoryProbe, peak_share  # noqa: E402

MINILM = "minilm-l6 (real weights, fresh head)"
ONNX_DEFAULT = "minilm,bert"


def architectures(labels, vocab_size: int, smoke: bool) -> dict:
    common = dict(
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
        vocab_size=vocab_size,
    )
    if smoke:
        size = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    else:  # the published large sizes: 24 layers, 1024 hidden, 16 heads, 4096 intermediate
        size = dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096)
    return {
        "bert-large (random weights)": lambda: BertForTokenClassification(
            BertConfig(max_position_embeddings=512, **size, **common)
        ),
        "deberta-v3-large (random weights)": lambda: DebertaV2ForTokenClassification(
            DebertaV2Config(
                max_position_embeddings=512,
                relative_attention=True,
                position_buckets=256,
                norm_rel_ebd="layer_norm",
                share_att_key=True,
                pos_att_type=["p2c", "c2p"],
                position_biased_input=False,
                **size,
                **common,
            )
        ),
    }


def sub_tokens(predictor, sentences) -> int:
    """Sub-tokens one pass feeds the model (special tokens included, padding not)."""
    return sum(len(w.input_ids) for part in predictor.prepare(sentences) for w in part.windows)


def onnx_predictor(model, tokenizer, labels, device: str, folder: Path):
    """The model's fp32 graph (exported into `folder`) through ONNX Runtime on `device`."""
    export = ensure_export(model.float().cpu().eval(), folder, "benchmark", pad_id=tokenizer.pad_token_id or 0)
    session = inference_session(export.path, device)
    return OnnxEncoderPredictor(model, tokenizer, labels, session, device=device)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="bc5cdr")
    parser.add_argument("--sentences", type=int, default=None, help="first N test sentences (default: all)")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda", help="cpu: tiny models, checks the code")
    parser.add_argument("--smoke", action="store_true", help="the same as --device cpu")
    parser.add_argument(
        "--onnx", default=ONNX_DEFAULT, help="models also timed through ONNX Runtime: minilm,bert,deberta or none"
    )
    parser.add_argument("--out", default=None, help="write the reports as JSON here")
    args = parser.parse_args(argv)

    device = "cpu" if args.smoke or args.device == "cpu" else "cuda"
    smoke = device == "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: run with --device cpu to check the script on CPU", file=sys.stderr)
        return 2
    info = get_dataset(args.dataset)
    sentences = [s.tokens for s in load_split(args.dataset, "test").sentences]
    limit = args.sentences or (40 if smoke else None)
    sentences = sentences[:limit] if limit else sentences
    minilm = resolve_model("minilm-l6").path
    tokenizer = AutoTokenizer.from_pretrained(minilm)

    builders = architectures(info.labels, len(tokenizer), smoke)
    builders[MINILM] = lambda: __import__("transformers").AutoModelForTokenClassification.from_pretrained(
        minilm,
        num_labels=len(info.labels),
        id2label=dict(enumerate(info.labels)),
        label2id={label: i for i, label in enumerate(info.labels)},
        use_safetensors=True,
    )
    wanted = {w.strip() for w in args.onnx.split(",")} - {"none", ""}
    short = {"bert": "bert-large", "deberta": "deberta-v3-large", "minilm": "minilm-l6"}

    reports: dict[str, dict] = {}
    skipped: dict[str, str] = {}
    scratch = tempfile.TemporaryDirectory(prefix="nerbench-gpu-onnx-")
    for name, build in builders.items():
        torch.manual_seed(0)
        model = build().to(device=device, dtype=inference_dtype(device)).eval()
        parameters = sum(p.numel() for p in model.parameters())
        predictor = EncoderPredictor(model, tokenizer, info.labels)
        tokens = sub_tokens(predictor, sentences)
        _, report = run_timed(predictor, sentences)
        reports[name] = report.to_dict() | {"parameters": parameters, "sub_tokens": tokens, "serving": "as-trained"}
        del predictor
        if any(name.startswith(short[w]) for w in wanted if w in short):
            row = f"{name} onnx"
            try:
                torch.manual_seed(0)
                onnx = onnx_predictor(build(), tokenizer, info.labels, device, Path(scratch.name) / str(len(reports)))
                probe = DeviceUsedMemoryProbe() if device == "cuda" else None
                _, report = run_timed(onnx, sentences, memory=probe)
                reports[row] = report.to_dict() | {"parameters": parameters, "sub_tokens": tokens, "serving": "onnx"}
                del onnx
            except NerbenchError as err:
                skipped[row] = str(err)
        del model
        if device == "cuda":
            torch.cuda.empty_cache()
    for r in reports.values():
        r["bf16_peak_share"] = peak_share(r["parameters"], r["sub_tokens"], r["wall_seconds"])

    print(f"{args.dataset} test, {len(sentences)} sentences, device {device} (timing only; no F1)")
    print(
        f"{'model':44} {'params':>12} {'precision':>9} {'median s':>9} {'sent/s':>9} {'p95 ms':>8} "
        f"{'peak MiB':>9} {'bf16 peak':>9} {'USD/1k sent':>12}"
    )
    for name, r in reports.items():
        cost = r["cost_per_1k_sentences_usd"]
        peak = r["peak_memory_bytes"]
        print(
            f"{name:44} {r['parameters']:>12,} {r['precision'] or '?':>9} {r['wall_seconds']:>9.3f} "
            f"{r['sentences_per_second']:>9.1f} {1000 * r['batch_latency_p95_s']:>8.1f} "
            f"{'?' if peak is None else f'{peak / 2**20:.0f}':>9} {100 * r['bf16_peak_share']:>8.2f}% "
            f"{'unknown' if cost is None else f'{cost:.5f}':>12}"
        )
    for name, why in skipped.items():
        print(f"{name}: not timed: {why}")
    first = next(iter(reports.values()))
    print(
        f"device: {first['device_name']}; reference hardware: {first['reference_hardware']}; bf16 peak: H100 SXM "
        "dense 989.5 TFLOP/s (NVIDIA datasheet), FLOPs = 2 x parameters x sub-tokens; onnx rows' peak memory: the "
        "device's memory in use at the end"
    )
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            json.dump(
                {"dataset": args.dataset, "sentences": len(sentences), "reports": reports, "skipped": skipped},
                handle,
                indent=2,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
