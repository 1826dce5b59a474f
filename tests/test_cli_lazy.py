"""Commands load lazily: `nerbench --help` lists every command from one table without importing a
command module, and `score` / `compare` on files import what they use only (no torch,
transformers, duckdb, jinja2 or site code; with --json, no rich). Checked in fresh interpreters,
through `sys.modules`."""

import inspect
import json
import os
import subprocess
import sys

import pytest
import typer
from typer.testing import CliRunner

import nerbench.cli as cli
from nerbench.cli import commands

HEAVY = ("torch", "transformers", "duckdb", "jinja2", "peft", "accelerate", "bitsandbytes")
NOT_FOR_FILES = ("nerbench.store", "nerbench.comparison", "nerbench.record", "nerbench.pipeline", "nerbench.models")
# The dataset registry (and its builds) loads for `score --dataset` only.
NOT_WITHOUT_DATASET = ("nerbench.datasets", "nerbench.builds")
# What prints tables and lines (rich, through nerbench.cli._util): `--json` prints neither.
NOT_FOR_JSON = ("rich", "nerbench.cli._util")


def _modules_after(*argv: str) -> tuple[str, set[str]]:
    """Run `nerbench ARGV` in a fresh interpreter; its stdout and the modules it had imported."""
    code = (
        "import json, sys\n"
        "from nerbench.cli import main\n"
        f"sys.argv = ['nerbench', *{list(argv)!r}]\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "sys.stderr.write('\\nMODULES ' + json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)
    return done.stdout, set(json.loads(done.stderr.rsplit("MODULES ", 1)[1]))


def _heavy(modules: set[str]) -> list[str]:
    return sorted(
        m for m in modules if m.split(".")[0] in HEAVY or m.startswith(NOT_FOR_FILES) or m.startswith("nerbench.site")
    )


def _printing(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in NOT_FOR_JSON or m in NOT_FOR_JSON)


def _write(path, rows):
    path.write_text("\n\n".join("\n".join(f"{t}\t{g}" for t, g in s) for s in rows) + "\n", encoding="utf-8")
    return str(path)


GOLD = [[("Aspirin", "B-Chemical"), ("causes", "O"), ("renal", "B-Disease"), ("failure", "I-Disease")]]
PRED = [[("Aspirin", "B-Chemical"), ("causes", "O"), ("renal", "O"), ("failure", "I-Disease")]]


def test_the_table_holds_each_commands_own_help_line():
    for name, entry in commands.COMMANDS.items():
        target = commands.target(name)
        doc = target.info.help if isinstance(target, typer.Typer) else inspect.getdoc(target)
        assert entry.help == " ".join(doc.split("\n\n")[0].split()), name


def test_root_help_lists_every_command_without_importing_one():
    out, modules = _modules_after("--help")
    for name, entry in commands.COMMANDS.items():
        assert f"  {name} " in out
        assert " ".join(entry.help.split()[:4]) in " ".join(out.split())
    loaded = sorted(m for m in modules if m.startswith("nerbench.cli.") and m != "nerbench.cli.commands")
    assert loaded == [] and "numpy" not in modules and _heavy(modules) == []


def test_score_json_imports_only_what_it_uses(tmp_path):
    gold, pred = _write(tmp_path / "g.conll", GOLD), _write(tmp_path / "p.conll", PRED)
    out, modules = _modules_after("score", gold, pred, "--json", "--bootstrap", "20")
    assert json.loads(out)["strict"]["f1"] == 0.5
    assert _heavy(modules) == [] and _printing(modules) == []
    assert "nerbench.cli.score_cmd" in modules and "nerbench.cli.eval_cmd" not in modules
    assert not modules & set(NOT_WITHOUT_DATASET)
    out, modules = _modules_after("score", gold, pred, "--json", "--bootstrap", "20", "--dataset", "bc5cdr")
    assert json.loads(out)["strict"]["f1"] == 0.5 and "nerbench.datasets" in modules and _heavy(modules) == []


def test_compare_of_files_imports_only_what_it_uses(tmp_path):
    gold, pred = _write(tmp_path / "g.conll", GOLD), _write(tmp_path / "p.conll", PRED)
    out, modules = _modules_after("compare", gold, gold, pred, "--json", "--resamples", "20")
    assert json.loads(out)["delta"] == pytest.approx(0.5)
    assert _heavy(modules) == [] and _printing(modules) == [] and not modules & set(NOT_WITHOUT_DATASET)


def test_the_score_commands_default_store_is_the_stores():
    from nerbench.cli import score_cmd
    from nerbench.store import DEFAULT_DB

    assert score_cmd.DEFAULT_DB == DEFAULT_DB


def test_lazy_commands_run_show_help_and_suggest(tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli.app, ["datasets", "--help"], env={"COLUMNS": "200", "TERM": "dumb"})
    assert result.exit_code == 0 and "verify" in result.output
    result = runner.invoke(cli.app, ["scor"], env={"COLUMNS": "200", "TERM": "dumb"})
    assert result.exit_code == 2 and "Did you mean 'score'?" in result.output
    result = runner.invoke(cli.app, ["nosuch"], env={"COLUMNS": "200", "TERM": "dumb"})
    assert result.exit_code == 2 and "No such command 'nosuch'" in result.output


def test_registering_everything_gives_the_whole_click_group():
    cli._register()
    group = typer.main.get_command(cli.app)
    assert list(group.commands) == list(commands.COMMANDS)  # type: ignore[attr-defined]


def test_scoring_files_leaves_the_garbage_collector_as_it_found_it(tmp_path):
    import gc

    from nerbench.scorefiles import compare_files, score_files

    gold, pred = _write(tmp_path / "g.conll", GOLD), _write(tmp_path / "p.conll", PRED)
    assert gc.isenabled()
    assert score_files(gold, pred, bootstrap=10).strict.f1 == 0.5 and gc.isenabled()
    gc.disable()
    try:
        assert compare_files(gold, gold, pred, resamples=10).delta == 0.5 and not gc.isenabled()
    finally:
        gc.enable()
    with pytest.raises(Exception, match="file not found"):
        score_files(str(tmp_path / "missing.conll"), pred)
    assert gc.isenabled()


def test_score_gives_numpy_one_blas_thread_only_where_it_loads_numpy_and_the_user_did_not_choose():
    def threads(code: str, **env: str) -> str:
        clean = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"} | env
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=clean, check=True)
        return done.stdout.strip()

    ask = "import os\nimport nerbench.cli.score_cmd\nprint(os.environ.get('OPENBLAS_NUM_THREADS'))"
    assert threads(ask) == "1"
    assert threads(ask, OPENBLAS_NUM_THREADS="3") == "3"
    assert threads("import numpy\n" + ask) == "None"  # numpy already loaded: its threads are left as they are
