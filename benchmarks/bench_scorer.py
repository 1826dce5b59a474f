"""Scorer speed, side by side in one run: nerbench's scorer against seqeval's
`classification_report` (default mode) on the five default test sets, same inputs, same F1;
then 10,000 bootstrap resamples over the five sets.

    NERBENCH_DATA_DIR=../shared/data .venv/bin/python benchmarks/bench_scorer.py

Targets on a 2-core machine: >= 30x seqeval; 10,000 resamples over the five sets <= 1 s.
Predictions are the gold tags with a fixed, deterministic corruption (every third entity
loses its last token, every fifth becomes ill-formed, every seventh sentence is all O), so that
the scorers have errors to count.
"""

import time
import warnings
from functools import partial

from seqeval.metrics import classification_report

from nerbench import scoring
from nerbench.datasets import DEFAULT_SUITE, load_split


def corrupt(tags_per_sentence):
    out, entity = [], 0
    for i, tags in enumerate(tags_per_sentence):
        tags = list(tags)
        if i % 7 == 6:
            out.append(["O"] * len(tags))
            continue
        for j, tag in enumerate(tags):
            if tag.startswith("B-"):
                entity += 1
                if entity % 5 == 0:
                    tags[j] = "I-" + tag[2:]
            ends_entity = tag != "O" and (j + 1 == len(tags) or not tags[j + 1].startswith("I-"))
            if ends_entity and tag.startswith("I-") and entity % 3 == 0:
                tags[j] = "O"
        out.append(tags)
    return out


def best_of(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    sets = {}
    for name in DEFAULT_SUITE:
        gold = [list(s.tags) for s in load_split(name, "test").sentences]
        sets[name] = (gold, corrupt(gold))
    tokens = sum(len(t) for gold, _ in sets.values() for t in gold)
    print(f"five test sets: {sum(len(g) for g, _ in sets.values())} sentences, {tokens} tokens")

    ours_total = seqeval_total = 0.0
    print(f"{'dataset':14} {'F1 nerbench':>12} {'F1 seqeval':>12} {'nerbench s':>11} {'seqeval s':>10} {'ratio':>7}")
    for name, (gold, pred) in sets.items():
        ours_time, ours = best_of(partial(scoring.score, gold, pred, bootstrap=0), 5)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs_time, report = best_of(partial(classification_report, gold, pred, output_dict=True), 3)
        theirs_f1 = report["micro avg"]["f1-score"]
        assert abs(ours.strict.f1 - theirs_f1) < 1e-12, (name, ours.strict.f1, theirs_f1)
        for type_name, prf in ours.per_type.items():
            assert abs(prf.f1 - report[type_name]["f1-score"]) < 1e-12, (name, type_name)
        ours_total += ours_time
        seqeval_total += theirs_time
        print(
            f"{name:14} {ours.strict.f1:12.6f} {theirs_f1:12.6f} {ours_time:11.4f} {theirs_time:10.3f} "
            f"{theirs_time / ours_time:7.1f}x"
        )
    print(
        f"{'all five':14} {'':12} {'':12} {ours_total:11.4f} {seqeval_total:10.3f} "
        f"{seqeval_total / ours_total:7.1f}x  (target >= 30x)"
    )

    # The resampling itself: per-sentence counts are computed once by scoring, outside the clock.
    counts = [scoring.sentence_counts(g, p) for g, p in sets.values()]

    def bootstrap_all():
        return [scoring.bootstrap_f1_ci(rows, 10_000, seed=0) for rows in counts]

    boot_time, intervals = best_of(bootstrap_all, 3)
    print(f"10,000 bootstrap resamples of strict F1 on each of the five sets: {boot_time:.3f} s (target <= 1 s)")
    for name, (low, high) in zip(sets, intervals):
        print(f"  {name:14} 95% CI [{low:.4f}, {high:.4f}]")
    full_time, _ = best_of(lambda: [scoring.score(g, p, bootstrap=10_000) for g, p in sets.values()], 1)
    print(
        f"full score() with 10,000 resamples for every CI (overall, per type, per length), five sets: {full_time:.3f} s"
    )


if __name__ == "__main__":
    main()
