"""How much of an LLM's tagging cost is the decoding method: SmolLM2-135M as a token classifier vs
as a generative `token:TAG` tagger, after the same LoRA training budget, on the same test sentences;
and MiniLM-L6 fine-tuned with the same sentences, for the encoder-vs-LLM comparison in miniature.

    HF_HUB_OFFLINE=1 NERBENCH_DATA_DIR=../shared/data .venv/bin/python benchmarks/bench_llm_modes.py

Every model trains on the first --train sentences of the train split for --epochs epochs (dev strict
F1 on the first --dev dev sentences picks the epoch), then predicts the first --test test sentences
under the timing protocol with --repeats timed passes after one warm-up batch (fewer than the
protocol's 3: a generative pass over 300 sentences takes about 15 minutes on a 2-core CPU; the
whole run about 26). The token head's throughput grows with the number of sentences (likely
because its length-sorted batches carry less padding the more sentences there are to sort): 12.5
sentences/s on 40 sentences, 19.1 on 300, 17-18 on whole test splits, so fewer sentences
understate the ratio. The F1 figures of such a small budget compare the modes with each other;
they are not benchmark results.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from nerbench.datasets import get_dataset, load_split  # noqa: E402
from nerbench.models.encoder import EncoderPredictor  # noqa: E402
from nerbench.models.llm import load_llm_predictor  # noqa: E402
from nerbench.models.llm_training import train_llm  # noqa: E402
from nerbench.models.registry import resolve_model  # noqa: E402
from nerbench.models.training import train_encoder  # noqa: E402
from nerbench.protocol import TimingProtocol  # noqa: E402
from nerbench.scoring import score  # noqa: E402
from nerbench.timing import run_timed  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="bc5cdr")
    parser.add_argument("--train", type=int, default=200, help="train sentences")
    parser.add_argument("--dev", type=int, default=10, help="dev sentences (epoch choice)")
    parser.add_argument("--test", type=int, default=300, help="test sentences timed and scored")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--llm-lr", type=float, default=2e-4)
    parser.add_argument("--encoder-lr", type=float, default=1e-4)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here too")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    info = get_dataset(args.dataset)
    train = load_split(args.dataset, "train").sentences[: args.train]
    dev = load_split(args.dataset, "dev").sentences[: args.dev]
    test = load_split(args.dataset, "test").sentences[: args.test]
    tokens = [s.tokens for s in test]
    gold = [list(s.tags) for s in test]
    protocol = TimingProtocol(warmup_batches=1, repeats=args.repeats)
    rows = []
    work = Path(tempfile.mkdtemp(prefix="bench-llm-modes-"))

    def measure(name, predictor, train_seconds, record):
        predictions, timing = run_timed(predictor, tokens, protocol)
        scores = score(gold, predictions, types=info.entity_types, bootstrap=0)
        row = {
            "model": name,
            "train_seconds": round(train_seconds, 1),
            "train_sentences_per_second": round(len(train) * args.epochs / train_seconds, 2),
            "dev_f1": record.dev_f1,
            "sentences_per_second": timing.sentences_per_second,
            "strict_f1": scores.strict.f1,
            "long_f1": scores.long_f1,
            "precision": timing.precision,
            "batch_size": timing.batch_size,
        }
        stats = getattr(predictor, "generation_stats", None)
        if stats:
            s = stats()
            row["generated_tokens_per_sentence"] = s["generated_tokens"] / max(s["sentences"], 1)
            row["parse"] = s["parse"]
        rows.append(row)
        print(json.dumps(row), flush=True)

    smol = resolve_model("smollm2-135m")
    meta = smol.meta
    for head in ("token", "generative"):
        out = work / f"smollm2-{head}"
        started = time.perf_counter()
        record = train_llm(
            smol,
            train,
            dev,
            info.labels,
            info.entity_types,
            meta.recipe,
            out,
            head=head,
            quantize="none",
            epochs=args.epochs,
            lr=args.llm_lr,
            gradient_accumulation_steps=1,
            dataset=args.dataset,
            device="cpu",
        )
        seconds = time.perf_counter() - started
        predictor = load_llm_predictor(out, info.labels, info.entity_types, device="cpu")
        measure(f"smollm2-135m {head}", predictor, seconds, record)

    out = work / "minilm"
    started = time.perf_counter()
    minilm = resolve_model("minilm-l6")
    record = train_encoder(
        minilm,
        train,
        dev,
        info.labels,
        minilm.meta.recipe,
        out,
        epochs=args.epochs,
        lr=args.encoder_lr,
        dataset=args.dataset,
        device="cpu",
    )
    seconds = time.perf_counter() - started
    measure("minilm-l6 token", EncoderPredictor.load(out, info.labels, device="cpu"), seconds, record)

    token, generative = rows[0], rows[1]
    ratio = token["sentences_per_second"] / generative["sentences_per_second"]
    summary = {
        "dataset": args.dataset,
        "train_sentences": len(train),
        "test_sentences": len(test),
        "epochs": args.epochs,
        "threads": torch.get_num_threads(),
        "rows": rows,
        "token_over_generative_speed": ratio,
        "target_met_50x": ratio >= 50,
    }
    print()
    print(
        f"{args.dataset}: {len(train)} train sentences x {args.epochs} epoch(s), {len(test)} test sentences, "
        f"{torch.get_num_threads()} threads, CPU"
    )
    print(f"{'model / head':28} {'train s':>8} {'sent/s':>9} {'strict F1':>10} {'long F1':>8}")
    for r in rows:
        print(
            f"{r['model']:28} {r['train_seconds']:8.0f} {r['sentences_per_second']:9.2f} "
            f"{r['strict_f1']:10.4f} {r['long_f1']:8.4f}"
        )
    print(
        f"token mode is {ratio:.1f}x faster than generative mode (target >= 50x: {'met' if ratio >= 50 else 'NOT met'})"
    )
    if "parse" in generative:
        p = generative["parse"]
        print(
            f"generative parse counts: {p['matched']} matched, {p['missing']} missing, {p['extra']} extra, "
            f"{p['renamed']} renamed, {p['malformed']} malformed lines; "
            f"{generative['generated_tokens_per_sentence']:.1f} generated tokens per sentence"
        )
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
