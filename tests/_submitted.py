"""TEST DATA: submissions packaged from a stored run of a (tiny, random) model on NCBI-disease test,
for the reproduce tests; optionally naming a local checkpoint, copied in, as their weights."""

import shutil
from pathlib import Path

from nerbench.pipeline import evaluate as ev
from nerbench.submissions import TOML_NAME, package


def packaged(root: Path, model: str, folder_name: str, name: str, data_dir: Path, revision: str | None = None) -> Path:
    """`model` evaluated on NCBI-disease test (stored under `name`) and packaged as submissions/`folder_name`."""
    options = ev.EvalOptions(
        datasets=("ncbi_disease",),
        data_dir=data_dir,
        db=root / "made.duckdb",
        runs_dir=root / "runs",
        device="cpu",
        revision=revision,
        name=name,
        allow_random_init=True,
    )
    (outcome,) = ev.evaluate(model, options)
    return package([outcome.run_id], root / "submissions" / folder_name, root / "made.duckdb")


def naming_local_weights(folder: Path, checkpoint: Path) -> Path:
    """The submission with `checkpoint` copied into its weights/ folder and named in [weights]."""
    shutil.copytree(checkpoint, folder / "weights" / "minilm")
    with open(folder / TOML_NAME, "a", encoding="utf-8") as toml:
        toml.write('\n[weights]\npath = "weights/minilm"\n')
    return folder
