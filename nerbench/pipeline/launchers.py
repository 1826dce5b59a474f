"""Launchers: run a plan's cells through submitit, as a Slurm job array or as local processes.

One submitit job per training identity (usually one cell; the serving conditions of one LLM
checkpoint share a job), submitted together with `map_array` (for Slurm: one job array, at most
`max_parallel` running at once). Each job runs `run_job` in its own process — on a cluster node,
or here — which writes one shard per cell and never opens the store. This process waits for the
jobs and ingests each job's shards as it finishes (one transaction each); a job that failed, was
cancelled, killed or ran out of time is listed with its log files, and leaves no shard, so running
the same command again submits exactly the cells still missing.

submitit pickles the job function and its arguments (the cells, as plain data) into its own folder:
that is submitit's protocol between this process and its own workers. Results come back only as
shards (JSON).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from nerbench.errors import NerbenchError
from nerbench.pipeline.cells import Cell, Plan, jobs_of, run_cells
from nerbench.shards import Ingested, ingest_shards

Launcher = Literal["local", "slurm"]
LAUNCHERS: tuple[str, ...] = ("local", "slurm")
JOB_NAME = "nerbench-cell"


@dataclass(frozen=True)
class ClusterSettings:
    partition: str | None = None
    gpus_per_cell: int = 1
    time: str = "24:00:00"  # Slurm's time limit per job: minutes, HH:MM:SS or D-HH:MM:SS
    max_parallel: int | None = None  # array tasks running at once (None: Slurm's and submitit's default)
    account: str | None = None
    cpus_per_cell: int | None = None
    mem_gb: int | None = None


def minutes(text: str) -> int:
    """Slurm's time formats: 'M', 'H:MM:SS', 'D-H', 'D-H:MM', 'D-H:MM:SS', 'M:SS' — in whole minutes (at least 1)."""
    match = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", text.strip())
    if not match:
        raise NerbenchError(f"--time: {text!r} is not a Slurm time (minutes, HH:MM:SS or D-HH:MM:SS)")
    days, first, second, third = match.groups()
    if days is not None:
        hours, mins, secs = int(first), int(second or 0), int(third or 0)
    elif third is not None:
        hours, mins, secs = int(first), int(second), int(third)
    elif second is not None:
        hours, mins, secs = 0, int(first), int(second)
    else:
        hours, mins, secs = 0, int(first), 0
    total = int(days or 0) * 1440 + hours * 60 + mins + (1 if secs else 0)
    if total < 1:
        raise NerbenchError(f"--time: {text!r} is no time at all")
    return total


def job_info() -> dict[str, Any]:
    """Who runs this job: the scheduler, its job id (array job and task for Slurm) and the host."""
    info: dict[str, Any] = {}
    try:
        import submitit

        env = submitit.JobEnvironment()
        info = {"scheduler": env.name(), "job_id": str(env.job_id), "hostname": env.hostname}
    except RuntimeError:  # not inside a submitit job
        info = {"scheduler": None, "job_id": None}
    for key in ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID"):
        if key in os.environ:
            info[key.lower()] = os.environ[key]
    return info


def run_job(cells: list[dict[str, Any]], shard_dir: str) -> list[str]:
    """The function each job runs (in its own process): its cells, into their shards."""
    return run_cells([Cell.model_validate(cell) for cell in cells], Path(shard_dir), job=job_info())


def executor(launcher: str, folder: Path, settings: ClusterSettings):
    """submitit's executor for `launcher`, its logs and pickles under `folder`."""
    import submitit

    limit = minutes(settings.time)
    if launcher == "slurm":
        slurm = submitit.SlurmExecutor(folder=folder, max_num_timeout=0)
        params: dict[str, Any] = {"time": limit, "job_name": JOB_NAME, "nodes": 1, "ntasks_per_node": 1}
        if settings.partition:
            params["partition"] = settings.partition
        if settings.account:
            params["account"] = settings.account
        if settings.gpus_per_cell:
            params["gpus_per_node"] = settings.gpus_per_cell
        if settings.max_parallel:
            params["array_parallelism"] = settings.max_parallel
        if settings.cpus_per_cell:
            params["cpus_per_task"] = settings.cpus_per_cell
        if settings.mem_gb:
            params["mem"] = f"{settings.mem_gb}G"
        slurm.update_parameters(**params)
        return slurm
    if launcher == "local":
        local = submitit.LocalExecutor(folder=folder)
        local.update_parameters(timeout_min=limit, gpus_per_node=settings.gpus_per_cell)
        return local
    raise NerbenchError(f"--launcher: unknown launcher {launcher!r} (known: {', '.join(LAUNCHERS)})")


@dataclass
class Failure:
    cells: list[Cell]
    job_id: str
    state: str
    stdout: Path
    stderr: Path
    message: str


@dataclass
class Submitted:
    job: Any  # submitit.Job
    cells: list[Cell]

    @property
    def job_id(self) -> str:
        return str(self.job.job_id)


@dataclass
class LaunchReport:
    launcher: str
    folder: Path
    submitted: list[Submitted] = field(default_factory=list)
    ingested: list[Ingested] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)
    waiting: bool = True


def shard_dir(folder: Path) -> Path:
    return Path(folder) / "shards"


def ticket_dir(folder: Path) -> Path:
    """One small JSON file per submitted cell: which job runs it (so a rerun does not submit it twice)."""
    return Path(folder) / "jobs"


def _write_tickets(report: LaunchReport) -> None:
    folder = ticket_dir(report.folder)
    folder.mkdir(parents=True, exist_ok=True)
    host = socket.gethostname()
    for entry in report.submitted:
        ticket = {"launcher": report.launcher, "job_id": entry.job_id, "host": host, "submitted": time.time()}
        for cell in entry.cells:
            path = folder / f"{cell.key}.json"
            temporary = path.with_suffix(".tmp")
            temporary.write_text(json.dumps(ticket), encoding="utf-8")
            os.replace(temporary, path)


def _drop_tickets(folder: Path, cells: Sequence[Cell]) -> None:
    for cell in cells:
        (ticket_dir(folder) / f"{cell.key}.json").unlink(missing_ok=True)


def _local_job_alive(job_id: str, host: str | None) -> bool:
    """A local job is its submitit process, on the host that started it."""
    if host != socket.gethostname() or not job_id.isdigit():
        return False
    try:
        os.kill(int(job_id), 0)
    except (ProcessLookupError, PermissionError):
        return False
    # A reused process id runs something else; an empty command line is a process being started.
    cmdline = Path(f"/proc/{job_id}/cmdline")
    try:
        command = cmdline.read_bytes()
    except OSError:
        return True  # no /proc here: the process id is all there is to go by
    return not command or b"submitit" in command


def running(folder: Path) -> dict[str, str]:
    """Cells that an earlier launch submitted and whose job has not ended: cell key -> job id.
    A Slurm job counts while squeue lists it (or while squeue cannot answer: better to wait than to
    run a cell twice); a local job while its process lives. A ticket that cannot be read is ignored."""
    tickets = {}
    for path in sorted(ticket_dir(folder).glob("*.json")):
        try:
            ticket = json.loads(path.read_text(encoding="utf-8"))
            tickets[path.stem] = (str(ticket["launcher"]), str(ticket["job_id"]), ticket.get("host"))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    queue = _slurm_queue() if any(launcher == "slurm" for launcher, _, _ in tickets.values()) else None
    alive = {}
    for key, (launcher, job_id, host) in tickets.items():
        if launcher == "slurm" and (queue is None or job_id in queue):
            alive[key] = job_id if queue is not None else f"{job_id} (squeue did not answer: taken as running)"
        elif launcher == "local" and _local_job_alive(job_id, host):
            alive[key] = job_id
    return alive


def log_dir(folder: Path) -> Path:
    return Path(folder) / "logs"


def ingest_ready(plan: Plan, folder: Path, db: Path) -> list[Ingested]:
    """Shards already written (by an earlier launch) but not stored yet: ingested first."""
    return ingest_shards([p.shard for p in plan.cells if p.status == "shard"], db)


def submit(plan: Plan, launcher: str, folder: Path, settings: ClusterSettings) -> LaunchReport:
    """Submit the plan's cells still to run, one job per training identity (one job array)."""
    report = LaunchReport(launcher, Path(folder))
    todo = [p.cell for p in plan.to_run]
    if not todo:
        return report
    groups = jobs_of(todo)
    ex = executor(launcher, log_dir(folder), settings)
    shards = str(shard_dir(folder).absolute())
    jobs = ex.map_array(
        run_job, [[c.model_dump(mode="json") for c in group] for group in groups], [shards] * len(groups)
    )
    report.submitted = [Submitted(job, group) for job, group in zip(jobs, groups)]
    _write_tickets(report)
    return report


def _slurm_queue() -> set[str] | None:
    """Job ids Slurm still holds (array tasks as JOB_TASK); None when squeue cannot answer."""
    try:
        out = subprocess.run(["squeue", "-h", "-r", "-o", "%i"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    return {line.strip() for line in out.stdout.splitlines() if line.strip()}


def _finished(entry: Submitted, launcher: str, queue: set[str] | None, gone: dict[str, int]) -> bool:
    job = entry.job
    if job.paths.result_pickle.exists():
        return True
    if launcher == "slurm":
        # Without Slurm accounting (sacct), submitit cannot tell a killed job from a running one:
        # one that left the queue without a result has ended (twice in a row, against races).
        if queue is not None and entry.job_id not in queue:
            gone[entry.job_id] = gone.get(entry.job_id, 0) + 1
            return gone[entry.job_id] >= 2
        return False
    return bool(job.done())


def _outcome(entry: Submitted) -> str | None:
    """None when the job returned; else why it did not."""
    job = entry.job
    if not job.paths.result_pickle.exists():
        return "ended without a result (killed, cancelled, out of time or out of memory)"
    try:
        error = job.exception()
    except Exception as err:  # noqa: BLE001 — submitit's own reading of its result file failed
        return f"its result could not be read ({type(err).__name__})"
    if error is None:
        return None
    lines = [line for line in str(error).strip().splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__


def collect(
    report: LaunchReport, db: Path, *, poll_seconds: float = 10.0, say: Callable[[str], None] = print
) -> LaunchReport:
    """Wait for every submitted job; ingest each one's shards as it ends; list those that failed."""
    pending = list(report.submitted)
    gone: dict[str, int] = {}
    while pending:
        queue = _slurm_queue() if report.launcher == "slurm" else None
        still = []
        for entry in pending:
            if not _finished(entry, report.launcher, queue, gone):
                still.append(entry)
                continue
            problem = _outcome(entry)
            _drop_tickets(report.folder, entry.cells)
            shards = [c.shard_path(shard_dir(report.folder)) for c in entry.cells]
            written = [s for s in shards if s.is_file()]
            if written:
                report.ingested.extend(done := ingest_shards(written, db))
                for item in done:
                    extra = f" ({item.message})" if item.message else ""
                    say(f"job {entry.job_id}: {item.path.name}: {item.status}{extra}")
            if problem is not None or len(written) < len(shards):
                failure = Failure(
                    [c for c, s in zip(entry.cells, shards) if not s.is_file()] or entry.cells,
                    entry.job_id,
                    str(entry.job.state) if report.launcher == "local" else "ended",
                    entry.job.paths.stdout,
                    entry.job.paths.stderr,
                    problem or "no shard written",
                )
                report.failed.append(failure)
                say(f"job {entry.job_id}: failed: {failure.message}; log {failure.stderr}")
        pending = still
        if pending:
            time.sleep(poll_seconds)
    return report


def launch(
    plan: Plan,
    launcher: str,
    folder: Path,
    settings: ClusterSettings,
    db: Path,
    *,
    wait: bool = True,
    poll_seconds: float = 10.0,
    say: Callable[[str], None] = print,
) -> LaunchReport:
    """Ingest shards already there, submit what is missing, and (with `wait`) collect the results."""
    if launcher not in LAUNCHERS:
        raise NerbenchError(f"--launcher: unknown launcher {launcher!r} (known: {', '.join(LAUNCHERS)})")
    ready = ingest_ready(plan, folder, db)
    report = submit(plan, launcher, folder, settings)
    report.ingested.extend(ready)
    report.waiting = wait
    if wait:
        collect(report, db, poll_seconds=poll_seconds, say=say)
    return report


def describe_failures(failures: Sequence[Failure]) -> list[str]:
    lines = []
    for failure in failures:
        for cell in failure.cells:
            lines.append(f"{cell.describe()}: job {failure.job_id} {failure.message}")
        lines.append(f"  logs: {failure.stdout} and {failure.stderr}")
    return lines


def describe_plan(plan: Plan, launcher: str, settings: ClusterSettings) -> list[str]:
    """The plan as lines of plain text: each cell's status, what it trains and its estimate; the
    totals in GPU-hours and USD; and, for Slurm, the job array it becomes."""
    from nerbench.pipeline.compute_bound import REFERENCE_PEAK_SOURCE
    from nerbench.pipeline.estimate import about
    from nerbench.protocol import PROTOCOL, price_for

    statuses = ("to run", "running", "shard", "stored")
    counts = {status: sum(1 for p in plan.cells if p.status == status) for status in statuses}
    running = f"{counts['running']} still running in an earlier launch's jobs, " if counts["running"] else ""
    lines = [
        f"cell plan ({launcher}): {len(plan.cells)} cells: {counts['to run']} to run, {running}{counts['shard']} with "
        f"a shard to ingest, {counts['stored']} already stored"
    ]
    for p in plan.cells:
        status = {
            "to run": "to run",
            "running": f"running in job {p.job}",
            "shard": f"shard there ({p.run_id})",
            "stored": f"stored ({p.run_id})",
        }[p.status]
        lines.append(f"  [{status}] {p.cell.describe()}")
        lines.append(f"      trains: {p.trains}")
        if p.status != "to run":
            continue
        if p.seconds is not None:
            lines.append(f"      estimate: {about(p.seconds)} on 1 GPU ({p.note})")
        elif p.peak_seconds is not None:
            lines.append(f"      floor: {about(p.peak_seconds)} on 1 GPU at its bf16 peak ({p.note})")
        else:
            lines.append(f"      estimate: none ({p.note}; its size or its data is not known here)")
    todo = plan.to_run
    gpus = max(settings.gpus_per_cell, 1)
    reference = PROTOCOL.reference_device_names[0]
    price = price_for(reference, todo[0].cell.price_per_hour if todo else None)

    def cost(hours: float) -> str:
        return f", ${hours * price.usd_per_hour:,.0f} at ${price.usd_per_hour:.2f} per GPU-hour" if price else ""

    measured = [p for p in todo if p.seconds is not None]
    if measured:
        lines.append(
            f"estimated: {plan.gpu_hours:.1f} GPU-hours{cost(plan.gpu_hours)} for {len(measured)} of {len(todo)} cells "
            f"to run ({gpus} GPU(s) per cell; {plan.speeds_from})"
        )
    bounded = [p for p in plan.unestimated if p.peak_seconds is not None]
    if bounded:
        hours = plan.peak_gpu_hours
        lines.append(
            f"floor, at the GPU peak: {hours:.1f} GPU-hours{cost(hours)} for {len(bounded)} of {len(todo)} cells "
            f"to run with no measured GPU speed ({plan.speeds_from}): their FLOPs (2 x parameters per token forward, 6 "
            "training a whole encoder, 4 with a frozen QLoRA base; words counted as tokens) at "
            f"{REFERENCE_PEAK_SOURCE}. "
            "Real runs reach a fraction of the peak, so this is a floor; a stored GPU run of each model and head "
            "gives a measured estimate in its place"
        )
    if plan.unbounded:
        lines.append(f"not estimated: {len(plan.unbounded)} of {len(todo)} cells to run (size or data not known here)")
    if price and (measured or bounded):
        lines.append(f"price: {price.source}")
    if launcher == "slurm":
        lines.append(
            f"slurm: one job array of {len({c.cell.training_key for c in todo})} job(s)"
            f"{f', partition {settings.partition}' if settings.partition else ''}"
            f"{f', account {settings.account}' if settings.account else ''}, {settings.gpus_per_cell} GPU(s) per cell, "
            f"time {settings.time}{f', at most {settings.max_parallel} at once' if settings.max_parallel else ''}"
        )
    return lines
