import io
import logging
import re

import pytest
from rich.console import Console
from rich.table import Table

from nerbench.cli._util import TrainingBars, cell, frac, line, plain_console, quiet_libraries, wide_console
from nerbench.models.training import TrainingProgress
from nerbench.safe_text import UNSAFE_RE, shown


def _console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=120, force_terminal=False), out


def _epoch(bars, epoch, dev_f1):
    for step in (1, 2):
        bars(TrainingProgress(epoch=epoch, max_epochs=2, step=step, steps=2, loss=0.5 / step))
    bars(TrainingProgress(epoch=epoch, max_epochs=2, step=2, steps=2, loss=0.25, dev_f1=dev_f1))


def test_transient_bars_leave_one_line_per_epoch_and_each_training_gets_its_own():
    console, out = _console()
    with TrainingBars(console, label="  training epoch", transient=True) as bars:
        bars.say("bc5cdr: training")
        _epoch(bars, 1, 0.5)
        _epoch(bars, 2, 0.75)
        first = dict(bars._tasks)
        bars.say("ncbi_disease: training")
        _epoch(bars, 1, 0.25)
        assert len(first) == 2 and len(bars._tasks) == 1 and bars._tasks[1] not in first.values()
    lines = out.getvalue().splitlines()  # no display outside a terminal: no blank line when it ends
    assert lines == [
        "bc5cdr: training",
        "  epoch 1/2: mean loss 0.2500, dev strict F1 0.5000",
        "  epoch 2/2: mean loss 0.2500, dev strict F1 0.7500",
        "ncbi_disease: training",
        "  epoch 1/2: mean loss 0.2500, dev strict F1 0.2500",
    ]


def test_lasting_bars_print_no_extra_lines():
    console, out = _console()
    with TrainingBars(console) as bars:
        _epoch(bars, 1, 0.5)
        task = bars._bar.tasks[0]
        assert task.description == "epoch 1/2" and task.completed == 2 and task.fields["dev"] == "dev strict F1 0.5000"
    assert "mean loss" not in out.getvalue()


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _shown(bars) -> str:
    """What the display draws now, as plain text."""
    out = io.StringIO()
    Console(file=out, width=200, force_terminal=False).print(bars._bar.get_renderable())
    return out.getvalue()


def test_bars_show_counts_rate_and_time_left_of_training_steps_and_prediction_phases():
    clock = _Clock()
    console, _ = _console()
    with TrainingBars(console, get_time=clock) as bars:
        bars(TrainingProgress(epoch=1, max_epochs=2, step=1, steps=5, loss=0.5))
        clock.now += 2.0
        bars(TrainingProgress(epoch=1, max_epochs=2, step=3, steps=5, loss=0.4))
        # two steps in two seconds after the first: one step/s, two steps left
        assert "epoch 1/2" in _shown(bars) and re.search(r"3/5 steps +1\.00/s, 0:00:02 left", _shown(bars))
        assert "loss 0.4000" in _shown(bars)
        bars.prediction("timed pass 1/3", 0, 940)
        clock.now += 4.0
        bars.prediction("timed pass 1/3", 100, 940)
        shown = _shown(bars)
        assert "timed pass 1/3" in shown and re.search(r"100/940 sentences +25\.0/s, 0:00:33 left", shown)


def test_transient_bars_outside_a_terminal_leave_one_line_per_prediction_phase():
    clock = _Clock()
    console, out = _console()
    with TrainingBars(console, label="  training epoch", transient=True, get_time=clock) as bars:
        bars.say("ncbi_disease: predicting")
        for phase, total in (("warm-up", 24), ("timed pass 1/2", 960), ("timed pass 2/2", 960)):
            bars.prediction(phase, 0, total)
            for done in range(8, total, 8):
                clock.now += 0.5
                bars.prediction(phase, done, total)
            clock.now += 0.5
            bars.prediction(phase, total, total)
        assert not bars._started  # no display in a log: the lines are all it gets
    assert out.getvalue().splitlines() == [
        "ncbi_disease: predicting",
        "  warm-up: 24 sentences in 0:00:01 (16.0/s)",
        "  timed pass 1/2: 960 sentences in 0:01:00 (16.0/s)",
        "  timed pass 2/2: 960 sentences in 0:01:00 (16.0/s)",
    ]


def test_a_new_dataset_removes_the_last_ones_bars_from_a_transient_display():
    console, _ = _console()
    with TrainingBars(console, transient=True) as bars:
        bars.say("bc5cdr: predicting")
        bars.prediction("warm-up", 0, 8)
        bars.prediction("warm-up", 8, 8)
        bars.say("ncbi_disease: predicting")
        assert bars._bar.tasks == []
        bars.prediction("warm-up", 0, 8)
        assert [t.description for t in bars._bar.tasks] == ["  warm-up"] and bars._bar.tasks[0].completed == 0


def test_scores_print_as_fractions():
    assert frac(0.81234) == "0.8123" and frac(1.0) == "1.0000" and frac(None) == ""


def test_quiet_libraries():
    from transformers.utils import logging as transformers_logging

    quiet_libraries()
    assert logging.getLogger("bitsandbytes.backends.cpu.ops").level == logging.ERROR
    assert transformers_logging.get_verbosity() == transformers_logging.ERROR
    assert not transformers_logging.is_progress_bar_enabled()


# --------------------------------------------------------------------------- one way to print untrusted text

HOSTILE = [
    "[/x]",
    "[bold]x[/bold]",
    "[link=http://evil.example]click[/link]",
    "\x1b[2J\x1b[31mred",
    "\x9b31m\x85\x7f",
    "abc\u202edef\u2066g\u2069",
    "a\nb\u2028c",
    ":thumbs_up:",
]
_IDS = [f"hostile{i}" for i in range(len(HOSTILE))]


def _printed(console_of, renderable) -> str:
    out = io.StringIO()
    console = console_of(out)
    console.print(renderable)
    return out.getvalue()


@pytest.mark.parametrize("hostile", HOSTILE, ids=_IDS)
def test_plain_and_wide_consoles_print_markup_as_text(hostile):
    escaped = shown(hostile)
    assert _printed(lambda out: plain_console(file=out, width=200), escaped) == escaped + "\n"
    console = wide_console()
    assert not (console._markup or console._emoji or console._highlight)  # what is given is what is printed


@pytest.mark.parametrize("hostile", HOSTILE, ids=_IDS)
def test_cells_and_lines_are_escaped_text_even_on_a_console_with_markup(hostile):
    def marked(out):  # a console as rich makes it by default: markup, emoji and highlighting on
        return Console(file=out, width=200, force_terminal=False)

    table = Table(title=cell(hostile))
    table.add_column("value")
    table.add_row(cell(hostile, style="bold"))
    printed = _printed(marked, table)
    assert printed.count(shown(hostile)) == 2 and not UNSAFE_RE.search(printed.replace("\n", ""))
    printed = _printed(marked, line(("✗", "red"), " ", hostile, " ", (hostile, "dim")))
    assert printed == f"✗ {shown(hostile)} {shown(hostile)}\n"


def test_cells_and_lines_are_cut():
    assert cell("x" * 250).plain == "x" * 200 + "… (50 more characters)"
    assert cell("x" * 250, limit=None).plain == "x" * 250
    assert line("y" * 3000).plain == "y" * 2000 + "… (1000 more characters)"
    assert line(("a" * 3, "red"), "b" * 3, limit=2).plain == "aa… (1 more character)bb… (1 more character)"


@pytest.mark.parametrize("hostile", HOSTILE, ids=_IDS)
def test_training_messages_are_printed_as_text(hostile):
    console, out = _console()
    with TrainingBars(console, transient=True) as bars:
        bars.say(f"{hostile}: training")
    assert out.getvalue().rstrip("\n").splitlines() == [f"{shown(hostile)}: training"]


# --------------------------------------------------------------------------- --db and the training display


def test_db_in_a_missing_folder_is_refused_by_every_command_that_takes_it(tmp_path):
    """Old code created the folders (and an empty store) wherever a mistyped --db pointed."""
    from typer.testing import CliRunner

    import nerbench.cli as cli
    from nerbench.errors import NerbenchError

    cli._register()
    db = tmp_path / "nonexistent" / "dir" / "n.duckdb"
    commands = [
        ["results"],
        ["eval", "minilm-l6", "--dataset", "ncbi_disease"],
        ["compare", "a", "b"],
        ["submit", "a", "--out", str(tmp_path / "sub")],
        ["ingest", str(tmp_path)],
        ["site", "build", "--out", str(tmp_path / "site")],
    ]
    for args in commands:
        result = CliRunner().invoke(cli.app, [*args, "--db", str(db)])
        assert isinstance(result.exception, NerbenchError), (args, result.output)
        assert str(result.exception).startswith(f"--db {db}: the folder {db.parent} does not exist"), args
    assert not (tmp_path / "nonexistent").exists()
    result = CliRunner().invoke(cli.app, ["results"], env={"NERBENCH_DB": str(db)})
    assert f"the folder {db.parent} does not exist" in str(result.exception)
    (tmp_path / "file").write_text("x")
    result = CliRunner().invoke(cli.app, ["results", "--db", str(tmp_path / "file" / "n.duckdb")])
    assert str(result.exception) == f"--db {tmp_path / 'file' / 'n.duckdb'}: {tmp_path / 'file'} is not a folder"


def test_bars_draw_nothing_before_the_first_training_event():
    """Old code started the display on entry: an error before any training came after a blank line."""
    console, out = _console()
    with pytest.raises(ValueError), TrainingBars(console, transient=True):
        raise ValueError("refused")
    assert out.getvalue() == ""
    with TrainingBars(console, transient=True) as bars:
        bars.say("bc5cdr: using the checkpoint")
    assert out.getvalue() == "bc5cdr: using the checkpoint\n"
