"""How long `nerbench site build` takes on a store of generated submissions, and how big things get.

The store is TEST DATA written into a temporary folder and deleted afterwards (never published):
1,000 made-up models (about a third LLMs), each "submitted" on the five default test sets with
self-reported timings on an H100, an A100 or a CPU. Their predictions are the gold tags with
deterministic damage (a few variants per dataset, scored once each with nerbench's scorer), so
that the paired LLM-vs-encoder tests of the site run on real stored predictions. The first submission
is written by Store.save_runs, the others as the very same rows inserted in bulk (checked against the
first), so that 10,000 submissions take a minute or two instead of hours.

    NERBENCH_DATA_DIR=../shared/data .venv/bin/python benchmarks/bench_site.py --submissions 1000
    NERBENCH_DATA_DIR=../shared/data .venv/bin/python benchmarks/bench_site.py --submissions 10000 --repeats 1

It prints the store's size, and for each build its wall time, CPU time and peak memory, and the
largest page and the largest download it wrote. Each build is `nerbench site build` run in a fresh
process, the command the first thing imported (so its wall time includes loading the command's
modules), and the peak is the build's own: the main process and its forked worker, measured apart.
Before each build it times a fixed Python loop (the CPU check): on a shared virtual machine the
speed of a CPU varies by half from one minute to the next.

Targets (issue 19): the store at most 150 MiB per 1,000 submissions; the build from 10,000
submissions under 10 s with peak memory under 2 GiB, no page over 1 MB; from 1,000 under 3 s.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import duckdb

from nerbench import __version__, scoring
from nerbench.datasets import DEFAULT_SUITE, get_dataset, load_split
from nerbench.record import Bootstrap, RunRecord, Submitted, Weights
from nerbench.store import METRIC_FIELDS, PackedPredictions, RunResult, Store, canonical_json, predictions_sha256

DEVICES = (  # (device name, reference hardware, USD per device-hour, sentences per second)
    ("NVIDIA H100 80GB HBM3", True, 3.2, 400.0),
    ("NVIDIA A100-SXM4-80GB", False, 1.6, 250.0),
    ("CPU: generated test CPU (2 threads)", False, 0.1, 30.0),
)
VARIANTS = 8


def damaged(gold: list[list[str]], rng: random.Random, rate: float) -> list[list[str]]:
    """Each entity-bearing sentence is wiped to O with probability `rate` (test data)."""
    return [["O"] * len(tags) if any(t != "O" for t in tags) and rng.random() < rate else list(tags) for tags in gold]


def variants(data_dir: Path | None) -> dict[str, list[tuple[list[list[str]], list, str, int]]]:
    out = {}
    for dataset in DEFAULT_SUITE:
        split = load_split(dataset, "test", data_dir)
        gold = [list(s.tags) for s in split.sentences]
        types = get_dataset(dataset).entity_types
        rows = []
        for index in range(VARIANTS):
            pred = damaged(gold, random.Random(index), 0.04 + 0.03 * index)
            scores = scoring.score(gold, pred, types=types, bootstrap=200, seed=index)
            rows.append((pred, scores.metric_rows(), predictions_sha256(pred), split.sha256))
        out[dataset] = rows
    return out


def timing(rng: random.Random, device: tuple, sentences: int, llm: bool) -> dict:
    name, reference, price, speed = device
    speed = speed / (40 if llm else 1) * rng.uniform(0.5, 1.5)
    seconds = sentences / speed
    cost = seconds / 3600 * price
    return {
        "wall_seconds": seconds,
        "sentences": sentences,
        "sentences_per_second": speed,
        "device_name": name,
        "num_devices": 1,
        "reference_hardware": reference,
        "device_hours": seconds / 3600,
        "price_per_device_hour": price,
        "price_source": "generated test data",
        "cost_usd": cost,
        "cost_per_1k_sentences_usd": cost * 1000 / sentences,
    }


def submission(number: int, rng: random.Random, pool: dict, start: datetime) -> list[tuple[RunResult, int]]:
    """One generated submission: a RunResult per dataset, with the index of its predictions in `pool`."""
    llm = rng.random() < 0.35
    device = rng.choice(DEVICES)  # one submission, one declared machine
    model = {
        "id": f"bench-submission-{number:04d}",
        "family": "llm" if llm else "encoder",
        "hf_id": f"generated/test-{number:04d}",
        "parameters": 8_000_000_000 if llm else 340_000_000,
        "licence": "test data",
    }
    training = (
        {"regime": "qlora", "head": "generative", "quantization_bits": 4}
        if llm
        else {"regime": "full", "head": "token"}
    )
    submitted = Submitted(
        id=model["id"],
        content_sha256=hashlib.sha256(f"generated test data {number}".encode()).hexdigest(),
        training=training,
        hardware={"device": device[0], "num_devices": 1},
        generation={"decoding": "greedy", "max_new_tokens_rule": "generated"} if llm else None,
    )
    out = []
    for dataset in DEFAULT_SUITE:
        variant = rng.randrange(len(pool[dataset]))
        pred, metrics, digest, sha = pool[dataset][variant]
        record = RunRecord(
            model_id=model["id"],
            family=model["family"],
            dataset=dataset,
            dataset_sha256=sha,
            weights=Weights(name=model["hf_id"], source="submission", hf_id=model["hf_id"]),
            head=training["head"],
            quantization="nf4" if llm else "none",
            bootstrap=Bootstrap(resamples=scoring.BOOTSTRAP_RESAMPLES, seed=scoring.BOOTSTRAP_SEED),
            submission=submitted,
            nerbench_version=__version__,
        )
        result = RunResult(
            model=model,
            record=record,
            predictions=pred,
            predictions_sha256=digest,
            metrics=metrics,
            timing=timing(rng, device, len(pred), llm),
            environment={"generated": True},
            source="submission",
            self_reported=True,
            created_at=start + timedelta(minutes=number),
        )
        out.append((result, variant))
    return out


# The tables a run writes, in the order Store._write_run inserts them.
TABLES = ("models", "runs", "metrics", "timings", "environments", "predictions")


class BulkRows:
    """The rows Store.save_runs would write for generated runs, gathered column by column and
    inserted with one statement per table. Store.save_runs validates every tag, hashes and packs
    every run's predictions and inserts row by row (about 0.2 s a run): 10,000 submissions would
    take hours. The generated runs share a few dozen prediction variants, so each is packed once.
    fill() checks these rows against what Store.save_runs writes for the first submission."""

    def __init__(self, conn: duckdb.DuckDBPyConnection, pool: dict) -> None:
        self.timing_columns = [row[1] for row in conn.execute("PRAGMA table_info('timings')").fetchall()][1:]
        self.metrics = {
            dataset: [[tuple(getattr(m, name) for name in METRIC_FIELDS) for m in metrics] for _, metrics, _, _ in rows]
            for dataset, rows in pool.items()
        }
        self.packed = {
            dataset: [PackedPredictions.pack(pred).values() for pred, *_ in rows] for dataset, rows in pool.items()
        }
        self.rows: dict[str, list[tuple]] = {table: [] for table in TABLES}

    def add(self, runs: list[tuple[RunResult, int]]) -> None:
        model = runs[0][0].model
        self.rows["models"].append(
            (
                model["id"],
                model["family"],
                model.get("hf_id"),
                model.get("revision"),
                model.get("parameters"),
                model.get("licence"),
                canonical_json(model, "model"),
            )
        )
        for result, variant in runs:
            record, dataset = result.record, result.record.dataset
            run_id = record.run_id
            self.rows["runs"].append(
                (
                    run_id,
                    record.model_id,
                    dataset,
                    record.split,
                    record.canonical_json(),
                    record.digest,
                    record.dataset_sha256,
                    record.modified_dataset,
                    result.predictions_sha256,
                    result.source,
                    result.self_reported,
                    result.created_at,
                    result.status,
                    None,  # details
                )
            )
            self.rows["metrics"].extend((run_id, *values) for values in self.metrics[dataset][variant])
            timing = result.timing or {}
            self.rows["timings"].append((run_id, *(timing.get(name) for name in self.timing_columns)))
            self.rows["environments"].append((run_id, canonical_json(result.environment, "environment")))
            self.rows["predictions"].append((run_id, *self.packed[dataset][variant]))

    def insert(self, conn: duckdb.DuckDBPyConnection) -> None:
        conn.begin()
        for table, rows in self.rows.items():
            if rows:
                columns = [list(column) for column in zip(*rows)]
                conn.execute(f"INSERT INTO {table} SELECT {', '.join('unnest(?)' for _ in columns)}", columns)
        conn.commit()
        self.rows = {table: [] for table in TABLES}


def _stored(conn: duckdb.DuckDBPyConnection, model_id: str) -> dict[str, list[tuple]]:
    runs = "(SELECT run_id FROM runs WHERE model_id = ?)"
    out = {"models": conn.execute("SELECT * FROM models WHERE id = ?", [model_id]).fetchall()}
    for table in TABLES[1:]:
        out[table] = sorted(conn.execute(f"SELECT * FROM {table} WHERE run_id IN {runs}", [model_id]).fetchall())
    return out


def fill(db: Path, submissions: int, data_dir: Path | None) -> None:
    pool = variants(data_dir)
    rng = random.Random(0)
    start = datetime(2026, 1, 1)
    first = submission(0, rng, pool, start)
    with Store(db) as store:  # the schema, and the first submission written by the store itself
        store.save_runs([result for result, _ in first])
    conn = duckdb.connect(str(db))
    try:
        bulk = BulkRows(conn, pool)
        bulk.add(first)
        expected = {table: sorted(rows) if table != "models" else rows for table, rows in bulk.rows.items()}
        if _stored(conn, first[0][0].model["id"]) != expected:
            sys.exit("bench_site: the bulk rows differ from what Store.save_runs wrote; update BulkRows")
        bulk.rows = {table: [] for table in TABLES}
        for number in range(1, submissions):
            bulk.add(submission(number, rng, pool, start))
            if number % 1000 == 0:
                bulk.insert(conn)
        bulk.insert(conn)
        conn.execute("CHECKPOINT")
    finally:
        conn.close()


STORE_MIB_PER_1000 = 150
PAGE_BYTES = 1_000_000
MEMORY_BYTES = 2 * 2**30


# One build in a fresh interpreter, as a user runs it: `nerbench site build` is the first thing
# imported (it sets up the process before numpy loads). Prints one JSON line of what it measured.
BUILD_ONCE = """
import json, resource, sys, time
from nerbench.cli import app
began = time.perf_counter()
app(["site", "build", "--db", sys.argv[1], "--out", sys.argv[2], *sys.argv[3:]], standalone_mode=False)
wall = time.perf_counter() - began
own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({
    "wall": wall,
    "cpu_main": own.ru_utime + own.ru_stime,
    "cpu_worker": children.ru_utime + children.ru_stime,
    # ru_maxrss is in KiB on Linux: this process's peak, and its forked worker's
    "peak_main": own.ru_maxrss * 1024,
    "peak_worker": children.ru_maxrss * 1024,
}))
"""


def _written(out: Path) -> dict:
    """The pages and downloads a build wrote."""
    files = [(path.stat().st_size, path.relative_to(out).as_posix()) for path in out.rglob("*") if path.is_file()]
    pages = [item for item in files if item[1].endswith(".html")]
    downloads = [item for item in files if item[1].startswith("data/")]
    return {
        "pages": len(pages),
        "largest_page": max(pages, default=(0, "-")),
        "largest_download": max(downloads, default=(0, "-")),
        "site_bytes": sum(size for size, _ in files),
    }


def _cpu_check() -> float:
    """Seconds a fixed pure-Python loop takes here now: on a shared virtual machine the speed of a
    CPU varies by half from one minute to the next, which says how to read a build's wall time."""
    began, total = time.perf_counter(), 0
    for i in range(10_000_000):
        total += i
    return time.perf_counter() - began


def _mib(size: float) -> str:
    return f"{size / 2**20:.1f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=1000, help="generated submissions (default 1000)")
    parser.add_argument("--repeats", type=int, default=3, help="builds to time (0: only fill the store)")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument(
        "--store",
        type=Path,
        default=None,
        help="Keep the generated store in this file and reuse it when it exists (filling takes minutes).",
    )
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="nerbench-bench-site-"))
    try:
        db = args.store or folder / "generated-test-data.duckdb"
        if not db.exists():
            began = time.perf_counter()
            fill(db, args.submissions, args.data_dir)
            print(
                f"generated store: {args.submissions} submissions x {len(DEFAULT_SUITE)} datasets "
                f"in {time.perf_counter() - began:.1f} s"
            )
        Store(db).close()  # migrated to the current schema, if an older nerbench wrote it
        conn = duckdb.connect(str(db), read_only=True)
        try:
            (submissions, runs) = conn.execute("SELECT count(DISTINCT model_id), count(*) FROM runs").fetchone() or (
                0,
                0,
            )
        finally:
            conn.close()
        wal = db.with_name(db.name + ".wal")
        size = db.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
        per_1000 = size / max(submissions, 1) * 1000
        store_ok = per_1000 <= STORE_MIB_PER_1000 * 2**20
        print(
            f"store: {_mib(size)} for {submissions} submissions x {len(DEFAULT_SUITE)} datasets "
            f"({_mib(per_1000)} per 1,000; target <= {STORE_MIB_PER_1000} MiB: {'met' if store_ok else 'MISSED'})"
        )
        if args.repeats <= 0:
            sys.exit(0 if store_ok else 1)
        builds = []
        for repeat in range(args.repeats):
            # A new folder each time: replacing an earlier build also deletes it (after writing the
            # new one), and on ext4 files are made slowly for minutes after many were deleted.
            site = folder / f"site-{repeat + 1}"
            command = [sys.executable, "-c", BUILD_ONCE, str(db), str(site)]
            if args.data_dir is not None:
                command += ["--data-dir", str(args.data_dir)]
            check = _cpu_check()
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                sys.exit(f"build {repeat + 1} failed:\n{done.stderr}")
            b = json.loads(done.stdout.strip().splitlines()[-1]) | _written(site)
            builds.append(b)
            # The worker is forked after the store is read and runs beside the main process: on an
            # idle 2-core machine the wall time lies between the larger of the two CPU times and their sum.
            print(
                f"build {repeat + 1}: {b['wall']:.2f} s wall; CPU {b['cpu_main']:.2f} s main, {b['cpu_worker']:.2f} s "
                f"worker; peak memory {_mib(b['peak_main'])} main, {_mib(b['peak_worker'])} worker "
                f"({b['pages']} pages, {submissions} models, {runs} runs, {_mib(b['site_bytes'])} in all; "
                f"CPU check before it {check:.2f} s)"
            )
        times = sorted(b["wall"] for b in builds)
        median = times[len(times) // 2]
        peak = max(b["peak_main"] + b["peak_worker"] for b in builds)
        page_size, page = builds[-1]["largest_page"]
        download_size, download = builds[-1]["largest_download"]
        target = 10.0 if args.submissions > 1000 else 3.0
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        checks = {
            f"build < {target:g} s": median < target,
            "peak < 2 GiB": peak < MEMORY_BYTES,
            "pages < 1 MB": page_size < PAGE_BYTES,
            f"store <= {STORE_MIB_PER_1000} MiB per 1,000": store_ok,
        }
        print(
            f"site build from {submissions} submissions: median {median:.2f} s, best {times[0]:.2f} s; "
            f"peak memory {_mib(peak)} (main + worker); largest page {page} {page_size / 1e6:.2f} MB; "
            f"largest download {download} {download_size / 1e6:.2f} MB"
        )
        print(
            "targets: "
            + ", ".join(f"{name} {'met' if ok else 'MISSED'}" for name, ok in checks.items())
            + f" (load average {load:.1f} on {os.cpu_count()} CPUs: other work on the machine slows the wall time)"
        )
        sys.exit(0 if all(checks.values()) else 1)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
