"""What the command modules share: option declarations (from nerbench.cli._options), safe output,
the training display, quieting.
"""

import logging
import shlex
import sys
from collections.abc import Callable
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TaskID, TextColumn
from rich.table import Column, Table
from rich.text import Text

# Declared in nerbench.cli._options, which imports no rich; re-exported for the commands.
from nerbench.cli._options import (  # noqa: F401
    DataDir,
    Db,
    Head,
    Json,
    LabelPolicy,
    Quantize,
    Quiet,
    Revision,
    TrainSeed,
    TrustRemoteCode,
    WordPosition,
)
from nerbench.safe_text import DEFAULT_LIMIT, shown

# The longest line of messages (errors, problems, progress) before `shown` cuts it.
LINE_LIMIT = 2000

# --------------------------------------------------------------------------- output


# The one way the CLI prints: consoles that read no markup, no emoji codes and highlight nothing, so
# that text from the store, a submission or a file prints as it is ('[/x]' neither raises nor
# vanishes); styling is given as `rich.text.Text` styles, never as markup. Every such value also
# passes `nerbench.safe_text.shown` (`cell`, `line`), so no control character reaches a terminal.


def plain_console(stderr: bool = False, **options: Any) -> Console:
    """A rich console without markup, emoji codes or highlighting: what it is given is what it prints."""
    return Console(stderr=stderr, markup=False, emoji=False, highlight=False, **options)


def wide_console(stderr: bool = False) -> Console:
    """A plain console; when output is not a terminal (logs, CI), wide enough that tables do not wrap."""
    console = plain_console(stderr)
    return console if console.is_terminal else plain_console(stderr, width=160)


def cell(value: object, style: str = "", limit: int | None = DEFAULT_LIMIT) -> Text:
    """A table cell (or title) of untrusted text: escaped and cut by `shown`, never read as markup."""
    return Text(shown(value, limit), style=style)


def line(*parts: object | tuple[object, str], limit: int | None = LINE_LIMIT) -> Text:
    """One printed line: each part is text, or (text, style); every part is escaped and cut by `shown`."""
    text = Text()
    for part in parts:
        value, style = part if isinstance(part, tuple) else (part, "")
        text.append(shown(value, limit), style=style)
    return text


def frac(value: float | None) -> str:
    """A score as the fraction (0-1) it is, with four decimals; '' for none. Every command prints
    scores on this one scale, as the store, the site and the README do."""
    return "" if value is None else f"{value:.4f}"


def fitted(console: Console, wide: Table, narrow: Table) -> Table:
    """`wide` where the console is wide enough for it (every column that does not wrap shown whole,
    the others wrapped at their longest word), else `narrow`: a layout that stacks or moves the less
    important fields."""
    return wide if needed_width(console, wide) <= console.width else narrow


def needed_width(console: Console, table: Table) -> int:
    """The fewest columns `table` takes with every no-wrap column whole (its longest cell) and the
    others wrapped at their longest word. (rich measures a no-wrap column's minimum by its longest
    word too, and then cuts its cells with an ellipsis: an id must never be cut.)"""
    unbounded = console.options.update(width=10_000)
    # rich's own per-column measure (cells with their padding); private, but there is no public one.
    widths = [table._measure_column(console, unbounded, column) for column in table.columns]
    content = sum(w.maximum if column.no_wrap else w.minimum for w, column in zip(widths, table.columns))
    return content + table._extra_width


def warn(console: Console, message: str) -> None:
    """A warning in plain words, one unwrapped line (a log keeps it whole)."""
    console.print(line(("warning:", "bold yellow"), " ", message), soft_wrap=True)


def rerun_command(drop: tuple[str, ...] = ()) -> str:
    """The command line this process was started with, for 'rerun ... to resume' (options in `drop` left out)."""
    return shlex.join(["nerbench", *(arg for arg in sys.argv[1:] if arg not in drop)])


def _clock(seconds: float) -> str:
    minutes, second = divmod(int(seconds), 60)
    hours, minute = divmod(minutes, 60)
    return f"{hours}:{minute:02d}:{second:02d}"


def _per_second(rate: float) -> str:
    return f"{rate:.1f}" if rate >= 10 else f"{rate:.2f}"


def _pace(task: Task) -> tuple[float, float | None] | None:
    """(rate per second, seconds left) of a task since it began, from the items done since then
    (field `base`: the count it began at); None before the first item."""
    elapsed = task.finished_time if task.finished_time is not None else task.elapsed
    done = task.completed - task.fields.get("base", 0)
    if not elapsed or done <= 0:
        return None
    rate = done / elapsed
    left = None if task.total is None else max(task.total - task.completed, 0) / rate
    return rate, left


class _Count(ProgressColumn):
    """'120/940 sentences': the items done of the total, in the task's unit."""

    def render(self, task: Task) -> Text:
        total = "?" if task.total is None else f"{int(task.total)}"
        return Text(f"{int(task.completed)}/{total} {task.fields.get('unit', '')}".rstrip())


class _Pace(ProgressColumn):
    """'18.20/s, 0:00:45 left': the rate (in the unit of the count beside it) since the task began,
    and the time left at that rate."""

    def render(self, task: Task) -> Text:
        pace = _pace(task)
        if pace is None:
            return Text("")
        rate, left = pace
        rest = "" if left is None or task.finished else f", {_clock(left)} left"
        return Text(f"{_per_second(rate)}/s{rest}")


class _Elapsed(ProgressColumn):
    def render(self, task: Task) -> Text:
        elapsed = task.finished_time if task.finished_time is not None else task.elapsed
        return Text("" if elapsed is None else _clock(elapsed))


class _Note(ProgressColumn):
    """Training's mean loss and dev score; nothing for prediction."""

    def render(self, task: Task) -> Text:
        loss, dev = task.fields.get("loss"), task.fields.get("dev")
        return Text(" ".join(([] if loss is None else [f"loss {loss:.4f}"]) + ([dev] if dev else [])))


class TrainingBars:
    """Rich progress bars for fine-tuning (one per epoch, counting its steps) and for the timed
    prediction (one per phase: the warm-up and each timed pass, counting sentences), each with its
    rate and time left; the instance is the training `progress` callback, `prediction` the
    callback of `nerbench.timing.run_timed`.

    With `transient` the bars vanish when done (and rich draws none in logs), so each epoch's dev
    score and each finished prediction phase is also printed as a line that stays; the bars of one
    dataset are removed when the next message is said. The display starts with the first event: a
    command that fails or finishes before any training prints no empty display (no blank line);
    transient bars start none outside an interactive terminal. The display redraws from rich's own thread, twice
    a second: the callbacks only update counters (they run inside timed passes).
    """

    def __init__(
        self,
        console: Console,
        *,
        label: str = "epoch",
        transient: bool = False,
        get_time: Callable[[], float] | None = None,
    ) -> None:
        self._label = label
        self._transient = transient
        self._tasks: dict[int, TaskID] = {}
        self._phases: dict[str, TaskID] = {}
        self._bar = Progress(
            TextColumn("{task.description}", markup=False),
            BarColumn(bar_width=20),
            _Count(table_column=Column(no_wrap=True)),
            _Pace(table_column=Column(no_wrap=True)),
            _Elapsed(table_column=Column(no_wrap=True)),
            _Note(table_column=Column(no_wrap=True)),
            console=console,
            transient=transient,
            refresh_per_second=2,
            get_time=get_time,
        )

        self._started = False

    def __enter__(self) -> "TrainingBars":
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._started:
            self._bar.__exit__(kind, error, trace)

    def _start(self) -> None:
        # Transient bars draw nothing outside an interactive terminal (logs, pipes, TERM=dumb) but a
        # blank line when they stop: there, the lasting lines are all there is to show, so no display
        # is started.
        if not self._started and (self._transient is False or self._bar.console.is_interactive):
            self._bar.start()
            self._started = True

    def __call__(self, event) -> None:
        """Take one `nerbench.models.training.TrainingProgress` event."""
        self._start()
        if event.epoch not in self._tasks:
            self._tasks[event.epoch] = self._bar.add_task(
                f"{self._label} {event.epoch}/{event.max_epochs}",
                total=event.steps,
                completed=event.step,
                base=event.step,  # the rate counts the steps after this one, which the task began at
                unit="steps",
                loss=event.loss,
                dev="",
            )
        dev = "" if event.dev_f1 is None else f"dev strict F1 {event.dev_f1:.4f}"
        self._bar.update(self._tasks[event.epoch], completed=event.step, loss=event.loss, dev=dev)
        if self._transient and event.dev_f1 is not None:
            self._bar.console.print(
                line(f"  epoch {event.epoch}/{event.max_epochs}: mean loss {event.loss:.4f}, {dev}")
            )

    def prediction(self, phase: str, done: int, total: int) -> None:
        """Take one event of the timed prediction: `done` of `total` sentences of `phase` ("warm-up",
        "timed pass 1/3", ...)."""
        self._start()
        task = self._phases.get(phase)
        if task is None:
            task = self._phases[phase] = self._bar.add_task(f"  {phase}", total=total, base=done, unit="sentences")
        self._bar.update(task, completed=done)
        if self._transient and done >= total:
            done_task = next(t for t in self._bar.tasks if t.id == task)
            pace = _pace(done_task)
            took = "" if pace is None else f" in {_clock(done_task.finished_time or 0)} ({_per_second(pace[0])}/s)"
            self._bar.console.print(line(f"  {phase}: {total} sentences{took}"))

    def say(self, message: str) -> None:
        """Print a line above the bars; the next training (another dataset) starts bars of its own."""
        if self._transient:
            for task in [*self._tasks.values(), *self._phases.values()]:
                self._bar.remove_task(task)
        self._bar.console.print(line(message))
        self._tasks.clear()
        self._phases.clear()


# --------------------------------------------------------------------------- libraries


def quiet_libraries() -> None:
    """Silence library chatter that would break the progress display; errors still surface."""
    # bitsandbytes warns on every import, on CPUs with AVX512-BF16, that it could not fetch an
    # optional kernel from the model hub (unreachable offline); its own CPU kernels are used instead.
    logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
    # Load reports and shard bars of transformers.
    from transformers.utils import logging as transformers_logging

    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
