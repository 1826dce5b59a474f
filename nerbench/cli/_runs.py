"""What `eval` and `train` say around their work: the cost on a CPU before it starts, plain-word
warnings when a model learnt next to nothing, and what an interrupt (Ctrl-C) kept.

Everything here reads what the library returns (outcomes, training records, the store); none of
it changes what is trained or stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from nerbench.cli._util import line, rerun_command

# A strict or dev F1 below this is "near zero": the model tags (almost) every word O.
NEAR_ZERO_F1 = 0.01
# The exit status of a command stopped by Ctrl-C (128 + SIGINT), as shells report it.
INTERRUPTED = 130


def on_cpu(device: str | None) -> bool:
    """Whether the work runs on the CPU: the given torch device, else the default (cuda if present)."""
    if device is None:
        from nerbench.pipeline.evaluate import default_device

        device = default_device()
    return device.split(":")[0] == "cpu"


def print_cpu_notice(
    console: Console,
    model: str,
    datasets: Sequence[str],
    *,
    head: str | None,
    data_dir: Path | None,
    allow_modified: bool,
    test: bool,
    seeds: int = 1,
) -> None:
    """Before the paper profile trains on a CPU: its estimated time and how to ask for the quick one."""
    from nerbench.models.catalogue import REGISTRY
    from nerbench.pipeline.estimate import paper_on_cpu_notice, split_sizes
    from nerbench.protocol import PROTOCOL

    if model not in REGISTRY:
        return  # a folder or hub model: its size and recipe are not known before it loads
    sizes = split_sizes(datasets, data_dir, allow_modified=allow_modified, test=test)
    lines = paper_on_cpu_notice(model, sizes, head=head, test_passes=PROTOCOL.repeats if test else 0, seeds=seeds)
    if lines and test:
        lines.append("Datasets already stored, and checkpoints already fine-tuned, are reused and cost less.")
    for text in lines:
        console.print(line(text), soft_wrap=True)


def best_dev_f1(training: dict | None) -> float | None:
    """The dev strict F1 of the epoch a training record kept (None without one)."""
    if not training or not training.get("dev_f1") or not training.get("best_epoch"):
        return None
    return float(training["dev_f1"][training["best_epoch"] - 1])


def low_dev_advice(profile: str | None, learning_rate: float | None = None) -> str:
    """Why a fine-tuning may have learnt nothing, and what to try."""
    if learning_rate is not None:
        return f"the learning rate given ({learning_rate:g}) may not suit this budget; try another --lr"
    if profile == "quick":
        return "the quick budget may be too small for this model and dataset"
    return (
        "on a small budget the recipe's learning rate leaves every word tagged O; --profile quick uses "
        "a learning rate chosen for a small budget"
    )


def training_warning(best: float, profile: str | None, learning_rate: float | None = None) -> str | None:
    """The warning for a training whose best dev strict F1 is near zero, else None."""
    if best >= NEAR_ZERO_F1:
        return None
    return (
        f"the best dev strict F1 of this training is {best:.4f} (below {NEAR_ZERO_F1}): the model learnt next to "
        f"nothing; {low_dev_advice(profile, learning_rate)}"
    )


def eval_warnings(outcomes: Sequence) -> list[str]:
    """One warning per run `eval` stored with a near-zero strict F1, from its outcome (and the
    training record it carries)."""
    warnings = []
    for o in outcomes:
        if o.status != "stored" or o.strict_f1 is None or o.strict_f1 >= NEAR_ZERO_F1:
            continue
        text = (
            f"{o.dataset}: run {o.run_id} was stored with strict F1 {o.strict_f1:.4f} (below {NEAR_ZERO_F1}): "
            "the model found next to none of the test set's entities"
        )
        best = best_dev_f1((o.details or {}).get("training"))
        if best is not None:
            text += f"; its fine-tuning kept an epoch of dev strict F1 {best:.4f}"
        if o.profile is None:
            text += "; it was evaluated as it is: is it fine-tuned for this dataset's labels?"
        else:
            text += f"; {low_dev_advice(o.profile)}"
        warnings.append(text)
    return warnings


def stored_runs(db: Path) -> dict[str, str]:
    """Run id -> dataset of every run in the store (empty when there is none yet)."""
    if not Path(db).is_file():
        return {}
    from nerbench.store import Store

    with Store(db, create=False) as store:
        return {row["run_id"]: row["dataset"] for row in store.summary()}


def interrupted_eval(console: Console, db: Path, before: dict[str, str], runs_dir: Path) -> None:
    """After Ctrl-C in `eval`: the runs it stored (they stay), the checkpoints kept, how to resume."""
    try:
        new = {run: dataset for run, dataset in stored_runs(db).items() if run not in before}
    except Exception as err:  # the store may be mid-write or locked: say so, never hide the interrupt
        new = None
        console.print(line(f"(could not read {db} to list the runs kept: {err})"), soft_wrap=True)
    console.print(line(("interrupted (Ctrl-C).", "bold")), soft_wrap=True)
    if new:
        runs = ", ".join(f"{dataset} (run {run})" for run, dataset in new.items())
        console.print(line(f"Kept: the {len(new)} run(s) this eval stored in {db}: {runs}."), soft_wrap=True)
    elif new is not None:
        console.print(line(f"No run of this eval was stored in {db} yet."), soft_wrap=True)
    console.print(
        line(
            f"Fine-tuned checkpoints finished before the interrupt stay in {runs_dir} and are reused; "
            "a training cut short starts again."
        ),
        soft_wrap=True,
    )
    console.print(line(f"To resume: {_resume()} (stored datasets are skipped)"), soft_wrap=True)


def interrupted_train(console: Console, folder: Path | None) -> None:
    """After Ctrl-C in `train`: nothing finished was kept; how to start again."""
    console.print(line(("interrupted (Ctrl-C).", "bold")), soft_wrap=True)
    if folder is None:
        console.print(line("Training had not started; nothing was written."), soft_wrap=True)
        return
    console.print(
        line(f"The training was cut short: {folder} holds no finished checkpoint (eval does not use it)."),
        soft_wrap=True,
    )
    command = _resume()
    if "--overwrite" not in command.split():
        command += " --overwrite"
    console.print(line(f"To start it again: {command}"), soft_wrap=True)


def _resume() -> str:
    """The command line as given, less --force (which would redo what is stored)."""
    return rerun_command(drop=("--force",))
