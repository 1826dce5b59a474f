"""The timing protocol on a GPU for the paper's encoder architectures — timing only, never F1.

    NERBENCH_DATA_DIR=... .venv/bin/python benchmarks/gpu_encoder_timing.py [--dataset bc5cdr] [--out timing.json]
    .venv/bin/python benchmarks/gpu_encoder_timing.py --smoke      # the same code on CPU, tiny models

BERT-large and DeBERTa-v3-large are built from their architecture (hand-written configs: no model
hub here) with random weights: the time of a forward pass does not depend on the weights, so such
a run measures the protocol's cost faithfully while its tags are meaningless — it never stores or
prints an F1. MiniLM-L6 is the real packaged encoder with a fresh head. All three use MiniLM's
WordPiece tokenizer (BERT's vocabulary); DeBERTa's own SentencePiece tokenizer splits words a
little differently, so its sub-token counts here are BERT's. bf16 on CUDA, fp32 on CPU, batch size
and passes from `nerbench.protocol.PROTOCOL`.
"""

from __future__ import annotations

import argparse
import json
import sys

import torch
from transformers import (
    AutoTokenizer,
    BertConfig,
    BertForTokenClassification,
    DebertaV2Config,
    DebertaV2ForTokenClassification,
)

from nerbench.datasets import get_dataset, load_split
from nerbench.models.encoder import EncoderPredictor, inference_dtype
from nerbench.models.registry import resolve_model
from nerbench.timing import run_timed


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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="bc5cdr")
    parser.add_argument("--sentences", type=int, default=None, help="first N test sentences (default: all)")
    parser.add_argument("--smoke", action="store_true", help="tiny models on CPU: checks the script, measures nothing")
    parser.add_argument("--out", default=None, help="write the reports as JSON here")
    args = parser.parse_args(argv)

    device = "cpu" if args.smoke else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: run with --smoke to check the script on CPU", file=sys.stderr)
        return 2
    info = get_dataset(args.dataset)
    sentences = [s.tokens for s in load_split(args.dataset, "test").sentences]
    limit = args.sentences or (40 if args.smoke else None)
    sentences = sentences[:limit] if limit else sentences
    minilm = resolve_model("minilm-l6").path
    tokenizer = AutoTokenizer.from_pretrained(minilm)

    builders = architectures(info.labels, len(tokenizer), args.smoke)
    builders["minilm-l6 (real weights, fresh head)"] = lambda: __import__(
        "transformers"
    ).AutoModelForTokenClassification.from_pretrained(
        minilm,
        num_labels=len(info.labels),
        id2label=dict(enumerate(info.labels)),
        label2id={label: i for i, label in enumerate(info.labels)},
        use_safetensors=True,
    )

    reports = {}
    for name, build in builders.items():
        torch.manual_seed(0)
        model = build().to(device=device, dtype=inference_dtype(device)).eval()
        predictor = EncoderPredictor(model, tokenizer, info.labels)
        _, report = run_timed(predictor, sentences)
        reports[name] = report.to_dict() | {"parameters": sum(p.numel() for p in model.parameters())}
        del model, predictor
        if device == "cuda":
            torch.cuda.empty_cache()

    print(f"{args.dataset} test, {len(sentences)} sentences, device {device} (timing only; no F1)")
    print(
        f"{'model':38} {'params':>12} {'precision':>9} {'median s':>9} {'sent/s':>9} {'p50 ms':>8} "
        f"{'p95 ms':>8} {'peak MiB':>9} {'USD/1k sent':>12}"
    )
    for name, r in reports.items():
        cost = r["cost_per_1k_sentences_usd"]
        peak = r["peak_memory_bytes"]
        print(
            f"{name:38} {r['parameters']:>12,} {r['precision'] or '?':>9} {r['wall_seconds']:>9.3f} "
            f"{r['sentences_per_second']:>9.1f} {1000 * r['batch_latency_p50_s']:>8.1f} "
            f"{1000 * r['batch_latency_p95_s']:>8.1f} {'?' if peak is None else f'{peak / 2**20:.0f}':>9} "
            f"{'unknown' if cost is None else f'{cost:.5f}':>12}"
        )
    print(
        f"device: {next(iter(reports.values()))['device_name']}; reference hardware: "
        f"{next(iter(reports.values()))['reference_hardware']}"
    )
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            json.dump({"dataset": args.dataset, "sentences": len(sentences), "reports": reports}, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
