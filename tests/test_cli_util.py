import io
import logging

from rich.console import Console

from nerbench.cli._util import TrainingBars, pct, quiet_libraries
from nerbench.models.training import TrainingProgress


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
    lines = out.getvalue().rstrip("\n").splitlines()  # rich ends a stopped display with a newline
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


def test_pct():
    assert pct(0.81234) == "81.23" and pct(None) == ""


def test_quiet_libraries():
    from transformers.utils import logging as transformers_logging

    quiet_libraries()
    assert logging.getLogger("bitsandbytes.backends.cpu.ops").level == logging.ERROR
    assert transformers_logging.get_verbosity() == transformers_logging.ERROR
    assert not transformers_logging.is_progress_bar_enabled()
