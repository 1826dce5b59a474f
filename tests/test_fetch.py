"""`nerbench datasets fetch` end to end from the real public source files.

The sources are the shared folder beside the data (`../shared/sources`, laid out like
raw.githubusercontent.com: `<owner>/<repo>/<commit>/<path>`), read as `file://` and over a local
HTTP server. Without that folder these tests skip. Also: a missing source, `--split`, the nearest
build of an approximate build (ChemProt train), the workflows' fetch commands and `make run`'s.
"""

import functools
import hashlib
import http.server
import importlib.util
import json
import os
import shlex
import shutil
import subprocess
import sys
import threading
import types
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

import nerbench.cli
from nerbench.datasets import DEFAULT_SUITE, REGISTRY, fetch, get_dataset, load_split
from nerbench.errors import NerbenchError

ROOT = Path(__file__).resolve().parent.parent
PUBLIC = [name for name, info in REGISTRY.items() if info.public]  # the five default sets, bc2gm, linnaeus


def _sources_dir() -> Path | None:
    candidates = [ROOT.parent / "shared" / "sources"]
    if os.environ.get("NERBENCH_DATA_DIR"):
        candidates.insert(0, Path(os.environ["NERBENCH_DATA_DIR"]).parent / "sources")
    return next((path for path in candidates if (path / "README.md").is_file()), None)


SOURCES = _sources_dir()
needs_sources = pytest.mark.skipif(SOURCES is None, reason="no shared sources folder (../shared/sources)")


@pytest.fixture(scope="module")
def app():
    if "datasets" not in [group.name for group in nerbench.cli.app.registered_groups]:
        nerbench.cli._register()
    return nerbench.cli.app


def _fetch_cli(app, *args, source_url: str | None = None):
    env = {"COLUMNS": "200", "NERBENCH_DATA_MIRROR": ""}
    if source_url:
        env["NERBENCH_SOURCE_URL"] = source_url
    return CliRunner().invoke(app, ["datasets", "fetch", *args], env=env)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _expected_files(names, splits=("train", "dev", "test")):
    return [
        (name, split.name, kind)
        for name in names
        for split in get_dataset(name).splits
        if split.name in splits
        for kind in (("conll", "docs") if split.docs else ("conll",))
    ]


def _registered(name: str, split: str, kind: str) -> str:
    info = get_dataset(name).split(split)
    if kind == "conll":
        assert info.sha256 is not None
        return info.sha256
    assert info.docs is not None
    return info.docs.sha256


def _chemprot_train_build() -> str:
    """'missing' while nerbench.builds.chemprot_train does not exist, else 'present'."""
    return "present" if importlib.util.find_spec("nerbench.builds.chemprot_train") else "missing"


# ---------------------------------------------------------------- every public split, file://


@needs_sources
def test_full_fetch_from_the_public_sources_gives_the_registered_bytes(app, tmp_path):
    assert SOURCES is not None
    target = tmp_path / "data"
    result = _fetch_cli(app, *PUBLIC, "--data-dir", str(target), "--json", source_url=SOURCES.as_uri())
    rows = json.loads(result.stdout)
    progress = result.stderr.splitlines()
    by_file = {(r["dataset"], r["split"], r["kind"]): r for r in rows}
    chemprot_train = by_file[("chemprot", "train", "conll")]
    exact_chemprot_train = chemprot_train["action"] == "fetched"
    expected = _expected_files(PUBLIC)
    if not exact_chemprot_train:
        expected.remove(("chemprot", "train", "docs"))  # no sidecar without its .conll
    assert [(r["dataset"], r["split"], r["kind"]) for r in rows] == expected
    # One progress line per file, in order, then the summary.
    assert progress[0] == f"fetching into {target}"
    assert [line.split(":")[0] for line in progress[1 : len(rows) + 1]] == [
        f"{name}/{split}.{kind}" for name, split, kind in expected
    ]
    for row in rows:
        key = (row["dataset"], row["split"], row["kind"])
        if key == ("chemprot", "train", "conll") and not exact_chemprot_train:
            continue
        assert row["action"] == "fetched", row
        assert row["sha256"] == _registered(*key), key
        assert _sha256(Path(row["path"])) == _registered(*key), key
        assert row["build"] == ("documents" if key[2] == "docs" else get_dataset(key[0]).split(key[1]).build)
    if exact_chemprot_train:
        assert result.exit_code == 0, result.output
        assert progress[-1] == f"{len(rows)} files in {target}: {len(rows)} fetched"
    else:
        # Reported in one line, never placed, and the exit status says so.
        assert result.exit_code == 1
        assert not (target / "chemprot" / "train.conll").exists()
        line = next(line for line in progress if line.startswith("chemprot/train.conll: "))
        if _chemprot_train_build() == "missing":
            assert chemprot_train["action"] == "failed"
            assert "nerbench.builds.chemprot_train is missing" in line
        else:
            assert chemprot_train["action"] == "different"
            assert "the exact rebuild was not possible" in line and "--allow-nearest" in line
        assert progress[-1] == "not placed: chemprot/train.conll"
    # The files equal the shared data folder's, where there is one beside the sources.
    shared = SOURCES.parent / "data"
    if (shared / "MANIFEST.json").is_file():
        for path in target.rglob("*.*"):
            assert path.read_bytes() == (shared / path.relative_to(target)).read_bytes(), path
    # Everything in place is left as it is the second time.
    again = _fetch_cli(app, *PUBLIC, "--data-dir", str(target), "--json", source_url=(target / "none").as_uri())
    actions = {(r["dataset"], r["split"], r["kind"]): r["action"] for r in json.loads(again.stdout)}
    assert {action for key, action in actions.items() if key[:2] != ("chemprot", "train")} == {"present"}


# ---------------------------------------------------------------- over HTTP


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        pass


@pytest.fixture
def http_sources(monkeypatch):
    assert SOURCES is not None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(SOURCES)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@needs_sources
def test_fetch_over_http(http_sources, tmp_path, monkeypatch):
    monkeypatch.delenv("NERBENCH_DATA_MIRROR", raising=False)
    monkeypatch.setenv("NERBENCH_SOURCE_URL", http_sources + "/")
    target = tmp_path / "data"
    # biored's sidecar source has a space in its path ("NER BioRED/..."); jnlpba's is a tar.gz.
    results = fetch(["biored", "jnlpba", "chemprot"], target, splits=["dev"])
    assert [(r.dataset, r.split, r.kind) for r in results] == _expected_files(["biored", "jnlpba", "chemprot"], ["dev"])
    for r in results:
        assert r.action == "fetched", r
        assert r.url is not None and r.url.startswith(http_sources + "/")
        assert _sha256(r.path) == _registered(r.dataset, r.split, r.kind)
    assert results[1].url.endswith("/NER%20BioRED/BioRED/Dev.PubTator")
    results = fetch(["jnlpba"], target, splits=["train"])
    assert [(r.kind, r.action) for r in results] == [("conll", "fetched"), ("docs", "fetched")]
    assert _sha256(target / "jnlpba" / "train.conll") == _registered("jnlpba", "train", "conll")
    # A file the server does not have: reported with the URL and the HTTP status.
    monkeypatch.setenv("NERBENCH_SOURCE_URL", http_sources + "/nowhere")
    [failed] = fetch(["bc2gm"], tmp_path / "other", splits=["test"])
    assert failed.action == "failed"
    assert failed.reason.startswith(http_sources + "/nowhere/cambridgeltl/MTL-Bioinformatics-2016/")
    assert failed.reason.endswith("/data/BC2GM-IOB/test.tsv: download failed (HTTP 404 File not found)")


# ---------------------------------------------------------------- a missing source


@needs_sources
def test_a_missing_source_fails_its_split_and_the_others_are_built(app, tmp_path):
    assert SOURCES is not None
    mirror = tmp_path / "sources"
    shutil.copytree(SOURCES, mirror, copy_function=os.symlink)  # links: the same bytes, one removed
    missing = get_dataset("ncbi_disease").split("dev").sources[0]
    (mirror / missing.repository / missing.commit / missing.path).unlink()
    target = tmp_path / "data"
    result = _fetch_cli(app, "ncbi_disease", "bc2gm", "--data-dir", str(target), source_url=mirror.as_uri())
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[3] == (
        f"ncbi_disease/dev.conll: failed: {missing.url(mirror.as_uri())}: download failed "
        f"([Errno 2] No such file or directory: '{mirror / missing.repository / missing.commit / missing.path}')"
    )
    assert [line.split()[:2] for line in lines[1:-2]] == [
        ["ncbi_disease/train.conll:", "fetched"],
        ["ncbi_disease/train.docs:", "fetched"],
        ["ncbi_disease/dev.conll:", "failed:"],
        ["ncbi_disease/test.conll:", "fetched"],
        ["ncbi_disease/test.docs:", "fetched"],
        ["bc2gm/train.conll:", "fetched"],
        ["bc2gm/dev.conll:", "fetched"],
        ["bc2gm/test.conll:", "fetched"],
    ]
    assert lines[-2:] == [f"8 files in {target}: 7 fetched, 1 failed", "not placed: ncbi_disease/dev.conll"]
    assert sorted(p.name for p in (target / "ncbi_disease").iterdir()) == [
        "test.conll",
        "test.docs",
        "train.conll",
        "train.docs",
    ]


@needs_sources
def test_a_reader_that_fails_for_one_source_fails_only_what_needs_it(tmp_path):
    assert SOURCES is not None
    genia = get_dataset("jnlpba").split("train").sources[0]

    def read(source):
        if source.path == genia.path:
            raise NerbenchError(f"{source.label}: download failed (refused by the test)")
        return (SOURCES / source.repository / source.commit / source.path).read_bytes()

    results = fetch(["jnlpba"], tmp_path, reader=read)
    # train is built from the training package, dev's sidecar too; dev.conll and test are not.
    assert [(r.file, r.action) for r in results] == [
        ("jnlpba/train.conll", "failed"),
        ("jnlpba/dev.conll", "fetched"),
        ("jnlpba/dev.docs", "failed"),
        ("jnlpba/test.conll", "fetched"),
        ("jnlpba/test.docs", "fetched"),
    ]
    assert all(
        "Genia4ERtraining.tar.gz: download failed (refused by the test)" in r.reason for r in results if not r.ok
    )


# ---------------------------------------------------------------- --split


@needs_sources
def test_split_test_fetches_only_the_test_splits(app, tmp_path):
    assert SOURCES is not None
    target = tmp_path / "data"
    args = ("jnlpba", "chemprot", "linnaeus", "--split", "test", "--data-dir", str(target))
    result = _fetch_cli(app, *args, source_url=SOURCES.as_uri())
    assert result.exit_code == 0, result.output
    assert sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file()) == [
        "chemprot/test.conll",
        "chemprot/test.docs",
        "jnlpba/test.conll",
        "jnlpba/test.docs",
        "linnaeus/test.conll",
    ]
    assert result.output.splitlines()[-1] == f"5 files in {target}: 5 fetched"


# ---------------------------------------------------------------- an approximate build (ChemProt train)


@pytest.fixture
def nearest_build(monkeypatch):
    """A stand-in for nerbench.builds.chemprot_train whose rebuild is not the registered file."""
    module = types.ModuleType("nerbench.builds.chemprot_train")
    built = b"Aspirin\tB-CHEMICAL\ninhibits\tO\nCOX-1\tB-GENE\n"
    module.build_train = lambda sources, read: built  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "nerbench.builds.chemprot_train", module)
    monkeypatch.setenv("NERBENCH_SOURCE_URL", "file:///nonexistent")
    return built


def test_an_inexact_rebuild_is_not_placed_but_offered_in_one_line(app, tmp_path, nearest_build):
    result = _fetch_cli(app, "chemprot", "--split", "train", "--data-dir", str(tmp_path))
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert len(lines) == 4  # "fetching into", the one line, the summary, "not placed"
    registered = get_dataset("chemprot").split("train").sha256
    assert lines[1] == (
        "chemprot/train.conll: different: the exact rebuild was not possible: build 'chemprot_rebuild_train' gives "
        f"sha256 {hashlib.sha256(nearest_build).hexdigest()} ({len(nearest_build)} bytes), not the registry's "
        f"{registered} (3,494,578 bytes); not placed. Pass --allow-nearest to place this nearest build (recorded as "
        "modified: `nerbench eval --allow-modified` then trains on it), or fetch the registered file from a mirror "
        "(--mirror URL)"
    )
    assert not any(tmp_path.rglob("*.*"))


def test_allow_nearest_places_it_recorded_and_load_split_refuses_it_unless_allowed(app, tmp_path, nearest_build):
    result = _fetch_cli(app, "chemprot", "--split", "train", "--allow-nearest", "--data-dir", str(tmp_path), "--json")
    assert result.exit_code == 0, result.output
    conll, docs = json.loads(result.stdout)
    assert (conll["action"], conll["nearest"], conll["ok"]) == ("fetched", True, True)
    assert (docs["kind"], docs["action"]) == ("docs", "skipped")
    assert "chemprot/train.conll: fetched (the nearest build, not the registered file)" in result.stderr
    assert (tmp_path / "chemprot" / "train.conll").read_bytes() == nearest_build
    assert not (tmp_path / "chemprot" / "train.docs").exists()
    record = json.loads((tmp_path / "chemprot" / "train.nearest.json").read_text())
    assert record["sha256"] == hashlib.sha256(nearest_build).hexdigest()
    assert record["registry_sha256"] == get_dataset("chemprot").split("train").sha256
    assert record["build"] == "chemprot_rebuild_train"
    # Recorded as modified: refused unless allowed, and then marked.
    with pytest.raises(NerbenchError, match="differs from the registry's .* --allow-modified"):
        load_split("chemprot", "train", tmp_path)
    assert load_split("chemprot", "train", tmp_path, allow_modified=True).modified
    # Kept on the next fetch with --allow-nearest; without it, reported (and still kept).
    again = fetch(["chemprot"], tmp_path, splits=["train"], allow_nearest=True)
    assert [(r.kind, r.action, r.nearest) for r in again] == [("conll", "present", True), ("docs", "skipped", False)]
    [refused] = fetch(["chemprot"], tmp_path, splits=["train"])
    assert refused.action == "failed" and "is the nearest build placed by --allow-nearest" in refused.reason
    assert (tmp_path / "chemprot" / "train.conll").read_bytes() == nearest_build


def test_only_an_approximate_build_may_be_placed_as_nearest(tmp_path, monkeypatch):
    # A reserialised split whose source changed is refused even with allow_nearest.
    source = get_dataset("bc2gm").split("test").sources[0]
    folder = tmp_path / "raw" / source.repository / source.commit / Path(source.path).parent
    folder.mkdir(parents=True)
    (folder / Path(source.path).name).write_text("a\tO\n")
    monkeypatch.setenv("NERBENCH_SOURCE_URL", (tmp_path / "raw").as_uri())
    [result] = fetch(["bc2gm"], tmp_path / "data", splits=["test"], allow_nearest=True)
    assert result.action == "different" and not result.nearest
    assert not (tmp_path / "data").exists()


def test_a_build_that_crashes_is_reported_with_its_type(tmp_path, monkeypatch):
    module = types.ModuleType("nerbench.builds.chemprot_train")

    def broken(sources, read):
        raise ValueError("boom")

    module.build_train = broken  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "nerbench.builds.chemprot_train", module)
    [result] = fetch(["chemprot"], tmp_path, splits=["train"], reader=lambda source: b"")
    assert (result.action, result.reason) == ("failed", "build 'chemprot_rebuild_train' failed: ValueError: boom")


# ---------------------------------------------------------------- the commands that fetch


def _fetch_commands(text: str) -> list[list[str]]:
    commands = []
    for line in text.splitlines():
        line = line.strip().removeprefix("run:").strip()
        if "nerbench datasets fetch" in line and not line.startswith("#"):
            commands.append(shlex.split(line.split("nerbench datasets fetch", 1)[1]))
    return commands


def test_the_workflows_fetch_without_a_mirror_with_valid_commands(app):
    command = typer.main.get_command(app).commands["datasets"].commands["fetch"]  # type: ignore[attr-defined]
    found = 0
    for path in sorted((ROOT / ".github" / "workflows").glob("*.yml")):
        text = path.read_text()
        assert "NERBENCH_DATA_MIRROR" not in text and "data-mirror" not in text and "--mirror" not in text, path
        for args in _fetch_commands(text):
            found += 1
            context = command.make_context("fetch", list(args))  # parses the options, runs nothing
            names = context.params["names"] or DEFAULT_SUITE
            assert set(names) <= set(PUBLIC), (path.name, args)
            assert set(context.params["split"] or ()) <= {"train", "dev", "test"}, (path.name, args)
    assert found == 6  # ci.yml: test, explore and wheel; pages.yml; submission.yml; reference.yml


@pytest.mark.skipif(shutil.which("make") is None, reason="no make")
def test_make_run_fetches_into_the_cache_only_without_shared_data(tmp_path):
    repo = tmp_path / "repo"
    (repo / ".venv").mkdir(parents=True)
    shutil.copy(ROOT / "Makefile", repo / "Makefile")
    (repo / "pyproject.toml").touch()
    (repo / ".venv" / ".installed-stamp").touch()  # newer than both: nothing to install
    env = {k: v for k, v in os.environ.items() if k not in ("NERBENCH_DATA_DIR", "MAKEFLAGS", "MAKELEVEL")}

    def dry_run() -> list[str]:
        done = subprocess.run(["make", "-n", "run"], cwd=repo, env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout.splitlines()

    commands = dry_run()
    assert any("no ../shared/data and no NERBENCH_DATA_DIR" in line for line in commands)
    assert ".venv/bin/nerbench datasets fetch --allow-nearest" in commands
    assert "HF_HUB_OFFLINE=1 .venv/bin/nerbench eval minilm-l6 --profile quick --allow-modified" in commands
    assert not any("datasets verify" in line for line in commands)
    (tmp_path / "shared" / "data").mkdir(parents=True)
    (tmp_path / "shared" / "data" / "MANIFEST.json").write_text("{}")
    commands = dry_run()
    assert ".venv/bin/nerbench datasets verify" in commands
    assert "HF_HUB_OFFLINE=1 .venv/bin/nerbench eval minilm-l6 --profile quick" in commands
    assert not any("datasets fetch" in line for line in commands)
