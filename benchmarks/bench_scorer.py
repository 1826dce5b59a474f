"""Scorer speed, side by side in one run: nerbench's scorer against seqeval's
`classification_report` (default mode) on the five default test sets, same inputs, same F1;
then 10,000 bootstrap resamples over the five sets; then whole processes: `nerbench score GOLD
PRED --json` on ChemProt test against a Python script that calls seqeval on the same files, and
`nerbench --help` against `python -c pass` (medians of paired runs, taken in turn).

    NERBENCH_DATA_DIR=../shared/data .venv/bin/python benchmarks/bench_scorer.py [--runs 10]

Targets on a 2-core machine (issue 19): in process >= 50x seqeval; 10,000 resamples over the five
sets <= 1 s; `nerbench score --json` as a whole process >= 5x the seqeval script, with the same
F1 (strict and per type); `nerbench --help` < 0.15 s where `python -c pass` takes about 0.02 s.
Predictions are the gold tags with a fixed, deterministic corruption (every third entity
loses its last token, every fifth becomes ill-formed, every seventh sentence is all O), so that
the scorers have errors to count.
"""

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from functools import partial
from pathlib import Path

from seqeval.metrics import classification_report

from nerbench import scoring
from nerbench.conll import Sentence, write_conll
from nerbench.datasets import DEFAULT_SUITE, load_split

WHOLE_PROCESS_SET = "chemprot"
NERBENCH = "import sys; from nerbench.cli import main; sys.argv[0] = 'nerbench'; main()"
# The alternative a user would write: read both files, call seqeval, print its report as JSON.
SEQEVAL_SCRIPT = """
import json, sys
from seqeval.metrics import classification_report

def tags(path):
    out, sentence = [], []
    for line in open(path, encoding="utf-8"):
        line = line.rstrip("\\n")
        if line:
            sentence.append(line.split("\\t")[-1])
        elif sentence:
            out.append(sentence)
            sentence = []
    if sentence:
        out.append(sentence)
    return out

report = classification_report(tags(sys.argv[1]), tags(sys.argv[2]), output_dict=True)
print(json.dumps(report, default=float))
"""


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


def paired(commands: dict[str, list[str]], runs: int) -> dict[str, tuple[float, float, str]]:
    """Median wall time and median CPU time (user + system) of each command over `runs` rounds,
    the commands taken in turn in every round (so a busy moment falls on all of them), and each
    one's last stdout. On a shared machine the CPU times are the steadier measure."""
    wall: dict[str, list[float]] = {name: [] for name in commands}
    cpu: dict[str, list[float]] = {name: [] for name in commands}
    out: dict[str, str] = {}
    for _ in range(runs):
        for name, argv in commands.items():
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            done = subprocess.run(argv, capture_output=True, text=True, check=True)
            wall[name].append(time.perf_counter() - start)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu[name].append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
            out[name] = done.stdout
    return {name: (statistics.median(wall[name]), statistics.median(cpu[name]), out[name]) for name in commands}


def whole_process(sets, runs: int) -> None:
    gold, pred = sets[WHOLE_PROCESS_SET]
    split = load_split(WHOLE_PROCESS_SET, "test")
    with tempfile.TemporaryDirectory() as folder:
        pred_path, script = Path(folder) / "pred.conll", Path(folder) / "seqeval_score.py"
        write_conll(pred_path, [Sentence(s.tokens, tuple(tags), 0) for s, tags in zip(split.sentences, pred)])
        script.write_text(SEQEVAL_SCRIPT, encoding="utf-8")
        files = [str(split.path), str(pred_path)]
        result = paired(
            {
                "nerbench": [sys.executable, "-c", NERBENCH, "score", *files, "--json"],
                "seqeval": [sys.executable, str(script), *files],
            },
            runs,
        )
    (ours_time, ours_cpu, ours_out), (theirs_time, theirs_cpu, theirs_out) = result["nerbench"], result["seqeval"]
    ours, theirs = json.loads(ours_out), json.loads(theirs_out)
    assert abs(ours["strict"]["f1"] - theirs["micro avg"]["f1-score"]) < 1e-12
    for type_name, prf in ours["per_type"].items():
        assert abs(prf["f1"] - theirs[type_name]["f1-score"]) < 1e-12, type_name
    print(
        f"whole process, {WHOLE_PROCESS_SET} test, median of {runs} paired runs: `nerbench score --json` "
        f"{ours_time:.3f} s (CPU {ours_cpu:.3f} s; with its {ours['bootstrap']['resamples']}-resample intervals), "
        f"seqeval script {theirs_time:.3f} s (CPU {theirs_cpu:.3f} s): {theirs_time / ours_time:.1f}x wall, "
        f"{theirs_cpu / ours_cpu:.1f}x CPU (target >= 5x); strict F1 {ours['strict']['f1']:.6f} both, and every "
        "type's F1"
    )
    startup = paired({"help": [sys.executable, "-c", NERBENCH, "--help"], "pass": [sys.executable, "-c", "pass"]}, runs)
    (help_time, help_cpu, _), (pass_time, pass_cpu, _) = startup["help"], startup["pass"]
    print(
        f"`nerbench --help` {help_time:.3f} s (CPU {help_cpu:.3f} s), `python -c pass` {pass_time:.3f} s "
        f"(CPU {pass_cpu:.3f} s), median of {runs} paired runs: {help_time / pass_time:.1f}x the bare interpreter's "
        f"wall time, {help_cpu / pass_cpu:.1f}x its CPU (target: < 0.15 s where pass takes about 0.02 s, 8.3x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="paired rounds of the whole-process timings")
    args = parser.parse_args()
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
        f"{seqeval_total / ours_total:7.1f}x  (target >= 50x)"
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
    whole_process(sets, args.runs)


if __name__ == "__main__":
    main()
