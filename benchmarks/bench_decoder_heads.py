"""Where the decoder token head reads each word: SmolLM2-135M + LoRA trained and evaluated with each
`word_position` ("first": the word's first sub-token, as every run before the setting; "last": its
last sub-token; "sentence-twice": its last sub-token in a second copy of the window), on the same
data with the same budget, in one process.

    HF_HUB_OFFLINE=1 NERBENCH_DATA_DIR=../shared/data .venv/bin/python benchmarks/bench_decoder_heads.py

Each variant goes through the token tagger the pipeline uses (`nerbench eval --profile quick`):
the quick LLM budget (one epoch on the budget's first train sentences, dev strict F1 on its first
dev sentences, lr 2e-4, no accumulation), seed 0, fp32 on CPU; then the whole test split is
predicted under the timing protocol (one warm-up batch, --repeats timed passes). Checkpoints go
to a temporary folder (--work), never to the repository or a store. `--serving as-trained as-deployed`
times each variant in both serving conditions (adapter unmerged at batch 8; merged at batch 32), and
`--reuse` re-times saved checkpoints without training (`--test N`: the first N test sentences).
On 2 cores one variant takes about 12-15 minutes ("sentence-twice" predicts about half as fast: two copies per window).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from nerbench.datasets import get_dataset, load_split  # noqa: E402
from nerbench.models.registry import resolve_model  # noqa: E402
from nerbench.pipeline.profiles import profile_for  # noqa: E402
from nerbench.pipeline.taggers import Request, select_tagger  # noqa: E402
from nerbench.protocol import TimingProtocol  # noqa: E402
from nerbench.recipes import WORD_POSITIONS  # noqa: E402
from nerbench.scoring import score  # noqa: E402
from nerbench.timing import run_timed  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--dataset", default="ncbi_disease")
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--variants", nargs="+", default=list(WORD_POSITIONS), choices=WORD_POSITIONS)
    parser.add_argument("--test", type=int, default=None, help="first test sentences only (default: all)")
    parser.add_argument("--repeats", type=int, default=1, help="timed test passes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=None, help="checkpoint folder (default: a new temporary one)")
    parser.add_argument("--json", type=Path, default=None, help="write the rows here too")
    parser.add_argument(
        "--serving",
        nargs="+",
        default=["as-trained"],
        choices=["as-trained", "as-deployed"],
        help="serving conditions to time each variant in (as trained: adapter unmerged; as deployed: merged, batch 32)",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep a variant's finished checkpoint under --work and only re-time its test pass "
        "(to retake the speeds on an idle machine)",
    )
    args = parser.parse_args()

    info = get_dataset(args.dataset)
    train, dev, test = (load_split(args.dataset, split) for split in ("train", "dev", "test"))
    tokens = [s.tokens for s in test.sentences[: args.test]]
    gold = [list(s.tags) for s in test.sentences[: args.test]]
    ref = resolve_model(args.model)
    budget = profile_for(args.profile, "llm", "token")
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-decoder-heads-"))
    protocol = TimingProtocol(warmup_batches=1, repeats=args.repeats)
    print(f"{args.model} on {args.dataset}, budget {budget.model_dump(exclude_none=True)}, work {work}", flush=True)
    rows = []
    for position in args.variants:
        tagger = select_tagger(ref, Request(device="cpu", head="token", word_position=position), fine_tune=True)
        assert tagger.effective_recipe(budget).word_position == position
        folder = work / position
        started = time.perf_counter()
        if args.reuse and (folder / "training.json").is_file():
            trained = json.loads((folder / "training.json").read_text(encoding="utf-8"))
            record = SimpleNamespace(
                dev_f1=trained["dev_f1"], best_epoch=trained["best_epoch"], sentences=trained["sentences"]
            )
            train_seconds = trained["wall_seconds"]
        else:
            record = tagger.train(folder, budget, args.seed, info, train, dev, None)
            train_seconds = time.perf_counter() - started
        for serving in args.serving:
            served = select_tagger(
                ref, Request(device="cpu", head="token", word_position=position, serving=serving), fine_tune=True
            )
            predictor = served.load_predictor(folder, info)
            assert predictor.word_position == position
            predictions, timing = run_timed(predictor, tokens, protocol)
            scores = score(gold, predictions, types=info.entity_types, bootstrap=0)
            row = {
                "word_position": position,
                "serving": serving,
                "dev_f1": record.dev_f1[record.best_epoch - 1] if record.dev_f1 else None,
                "test_strict_f1": scores.strict.f1,
                "long_f1": scores.long_f1,
                "train_seconds": round(train_seconds, 1),
                "train_sentences": record.sentences["train"],
                "test_sentences_per_second": timing.sentences_per_second,
                "model_seconds": timing.model_seconds,
                "host_seconds": timing.host_seconds,
                "busy": bool(timing.load and timing.load["busy"]),
                "test_sentences": len(tokens),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
            if args.json:
                args.json.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")

    print()
    print(
        f"{args.model}, {args.dataset}, {args.profile} budget, seed {args.seed}, {torch.get_num_threads()} threads, CPU"
    )
    print("| word position | serving | dev F1 | test strict F1 | long-entity F1 | train s | test sentences/s |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['word_position']} | {r['serving']} | {r['dev_f1']:.4f} | {r['test_strict_f1']:.4f} "
            f"| {r['long_f1']:.4f} | {r['train_seconds']:.0f} | {r['test_sentences_per_second']:.1f} |"
        )


if __name__ == "__main__":
    main()
