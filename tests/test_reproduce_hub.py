"""`nerbench reproduce` of weights named on the Hugging Face hub: `[weights]` hf_id + revision, and
a PEFT adapter on it (adapter_id + adapter_revision).

Nothing of nerbench is patched. Offline, the weights come from a hub cache in a temporary folder,
laid out as huggingface_hub lays it out (blobs/, snapshots/<commit>/, refs/main), which
huggingface_hub's own constants point at (it reads HF_HUB_CACHE and HF_HUB_OFFLINE once, at
import). Online, a local stand-in for the hub serves the repositories and `reproduce` runs in a
subprocess whose environment names it and an empty cache: what is downloaded is what a real
download fetches. refs/main always names other weights than the pinned commit, so a revision that
is not passed through changes the tags. Tiny random models (allow_random_init, tests only).
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import torch
from huggingface_hub import constants
from huggingface_hub.file_download import repo_folder_name
from safetensors.torch import load_file, save_file

from nerbench import cli
from nerbench.datasets import load_split
from nerbench.errors import NerbenchError
from nerbench.models.registry import resolve_model
from nerbench.pipeline import reproduce as rp
from nerbench.store import Store
from nerbench.submissions import TOML_NAME, validate
from tests._submitted import packaged
from tests._tiny_llm import save_tiny, train_tiny_adapter
from tests._tiny_models import NCBI_LABELS, save_tiny_bert

ENCODER, BASE, ADAPTER = "org/tiny-encoder", "org/tiny-base", "org/tiny-adapter"
REVISION = "969e491c78042d7d761d8d413578dc91a0b64a2d"  # the commit the submissions pin their bases to
ADAPTER_REVISION = "ed607e641c2c16bea70484d02cd1d8271fd0da0f"
MAIN = "cbdfb370e7e264014d6280879a3764b74335d526"  # what refs/main names: other weights
MISSING = "944de77d82a2bc6a8cbc01c4f2a2ea78ce9a736f"  # in no cache


class _Touch:
    """Unpickled, it creates the file at `path`: shows whether anything unpickled it."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def cache_snapshot(cache: Path, repo_id: str, revision: str, files: dict[str, bytes], *, main: bool = False) -> Path:
    """Lay `files` out as huggingface_hub's cache does: the content in blobs/ (named by a digest, as
    the hub's ETag names it), snapshots/<revision>/<name> a relative link to its blob; with `main`,
    refs/main names `revision`."""
    repo = cache / repo_folder_name(repo_id=repo_id, repo_type="model")
    snapshot = repo / "snapshots" / revision
    snapshot.mkdir(parents=True)
    (repo / "blobs").mkdir(exist_ok=True)
    for name, data in files.items():
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        (snapshot / name).symlink_to(os.path.relpath(blob, snapshot))
    if main:
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / "main").write_text(revision, encoding="utf-8")
    return snapshot


def files_of(folder: Path, **json_changes: dict) -> dict[str, bytes]:
    """A repository's files; `json_changes` updates JSON files (config_json= for config.json)."""
    files = {p.name: p.read_bytes() for p in sorted(folder.iterdir())}
    for key, change in json_changes.items():
        name = key.replace("_json", ".json")
        files[name] = json.dumps(json.loads(files[name]) | change).encode()
    return files


def offline(mp: pytest.MonkeyPatch, cache: Path) -> None:
    mp.setattr(constants, "HF_HUB_CACHE", str(cache))
    mp.setattr(constants, "HF_HUB_OFFLINE", True)
    mp.setenv("HF_HUB_OFFLINE", "1")  # what nerbench.models.registry reads at call time


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    # Tiny models spend their time in thread hand-offs; one thread is much faster on a busy machine.
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


@dataclass
class Hub:
    root: Path
    repos: Path  # each repository's files at its pinned commit, as the hub holds them
    cache: Path  # the hub cache holding them (and other weights at refs/main)
    encoder_submission: Path  # packaged, without [weights]
    adapter_submission: Path
    touched: Path  # created when a pickle of the repositories is unpickled, or their code imported

    def with_weights(self, submission: Path, folder: Path, weights: str) -> Path:
        """A copy of `submission` in `folder` with a [weights] section."""
        copy = folder / submission.name
        shutil.copytree(submission, copy)
        with open(copy / TOML_NAME, "a", encoding="utf-8") as toml:
            toml.write("\n[weights]\n" + weights)
        return copy


ENCODER_WEIGHTS = f'hf_id = "{ENCODER}"\nrevision = "{REVISION}"\n'
ADAPTER_WEIGHTS = (
    f'hf_id = "{BASE}"\nrevision = "{REVISION}"\nadapter_id = "{ADAPTER}"\nadapter_revision = "{ADAPTER_REVISION}"\n'
)


def _submission(root: Path, model: str, revision: str, name: str, data_dir: Path) -> Path:
    """A submission packaged from a stored run of `model` (predicted from the hub cache)."""
    return packaged(root, model, f"{name}-cpu", name, data_dir, revision=revision)


def _train_adapter(out: Path, data_dir: Path) -> Path:
    """A LoRA token head on the tiny base, trained by nerbench from the hub id (so its adapter_config
    names the base `org/tiny-base`, as a published adapter does). word_position="last" is a setting
    only its training.json carries: served without it, the head reads other sub-tokens."""
    train = load_split("ncbi_disease", "train", data_dir).sentences[:8]
    dev = load_split("ncbi_disease", "dev", data_dir).sentences[:3]
    base = resolve_model(BASE, REVISION)
    return train_tiny_adapter(base, out, train, dev, "token", word_position="last", device="cpu")


def _add_unloadable_files(folder: Path, pickle_name: str, touched: Path) -> None:
    """What a hub repository may also hold and nerbench must never load: pickled weights, and code
    that a tokenizer config's auto_map names (run only under trust_remote_code)."""
    (folder / pickle_name).write_bytes(pickle.dumps(_Touch(touched)))
    (folder / "tokenization_tiny.py").write_text(
        f"import pathlib\npathlib.Path({str(touched)!r}).touch()\n"
        "from transformers import PreTrainedTokenizerFast as TinyTokenizer\n",
        encoding="utf-8",
    )
    config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    config["auto_map"] = {"AutoTokenizer": [None, "tokenization_tiny.TinyTokenizer"]}
    (folder / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")


@pytest.fixture(scope="module")
def hub(tmp_path_factory, data_dir) -> Iterator[Hub]:
    """Three repositories (a tiny BERT token classifier, a tiny Llama, a LoRA token head on it), each
    also holding a pickle and tokenizer code nerbench must never load, in a cache whose refs/main
    names other weights; and two submissions predicted from them at the pinned commits."""
    root = tmp_path_factory.mktemp("hub")
    repos, cache, touched = root / "repos", root / "cache", root / "touched"
    with pytest.MonkeyPatch.context() as mp:
        offline(mp, cache)
        encoder = save_tiny_bert(repos / "encoder", NCBI_LABELS)
        _add_unloadable_files(encoder, "pytorch_model.bin", touched)
        cache_snapshot(cache, ENCODER, REVISION, files_of(encoder))
        other = save_tiny_bert(root / "other-encoder", NCBI_LABELS, seed=1)
        cache_snapshot(cache, ENCODER, MAIN, files_of(other), main=True)

        base = save_tiny(repos / "base", "llama")
        (base / "pytorch_model.bin").write_bytes(pickle.dumps(_Touch(touched)))
        cache_snapshot(cache, BASE, REVISION, files_of(base))
        cache_snapshot(cache, BASE, MAIN, files_of(save_tiny(root / "other-base", "llama", seed=1)), main=True)

        adapter = _train_adapter(repos / "adapter", data_dir)
        _add_unloadable_files(adapter, "adapter_model.bin", touched)
        cache_snapshot(cache, ADAPTER, ADAPTER_REVISION, files_of(adapter))
        negated = {k: -v for k, v in load_file(adapter / "adapter_model.safetensors").items()}
        other_adapter = files_of(adapter)
        save_file(negated, root / "negated.safetensors")
        other_adapter["adapter_model.safetensors"] = (root / "negated.safetensors").read_bytes()
        cache_snapshot(cache, ADAPTER, MAIN, other_adapter, main=True)

        encoder_submission = _submission(root, ENCODER, REVISION, "tiny-encoder-hub", data_dir)
        adapter_submission = _submission(root, str(adapter), REVISION, "tiny-adapter-hub", data_dir)
    yield Hub(root, repos, cache, encoder_submission, adapter_submission, touched)


# ----------------------------------------------------------------------------- offline, from the cache


def test_a_hub_checkpoint_is_reproduced_at_its_pinned_revision(hub, data_dir, tmp_path, monkeypatch):
    offline(monkeypatch, hub.cache)
    submission = hub.with_weights(hub.encoder_submission, tmp_path, ENCODER_WEIGHTS)
    assert validate(submission, data_dir).ok
    db = tmp_path / "site.duckdb"
    (done,) = rp.reproduce(
        submission, db=db, data_dir=data_dir, device="cpu", runs_dir=tmp_path / "runs", allow_random_init=True
    )
    link = done.link
    assert (done.status, link["agreement"], link["differing_tags"], link["reproduced"]) == ("stored", 1.0, 0, True)
    assert link["submission"] == "tiny-encoder-hub-cpu"
    with Store(db) as store:
        run = store.run(done.run_id)
    assert run["model_id"] == "tiny-encoder-hub" and run["details"]["reproduces"] == link
    weights = run["record"].weights
    assert (weights.source, weights.hf_id, weights.revision) == ("hub", ENCODER, REVISION)
    assert not hub.touched.exists()


def test_a_hub_adapter_is_reproduced_on_its_pinned_base(hub, data_dir, tmp_path, monkeypatch):
    # Both snapshots also hold a pickle (and the adapter code its tokenizer config's auto_map names):
    # loaded only from safetensors, never with the repository's code.
    offline(monkeypatch, hub.cache)
    submission = hub.with_weights(hub.adapter_submission, tmp_path, ADAPTER_WEIGHTS)
    db = tmp_path / "site.duckdb"
    (done,) = rp.reproduce(
        submission, db=db, data_dir=data_dir, device="cpu", runs_dir=tmp_path / "runs", allow_random_init=True
    )
    link = done.link
    assert (done.status, link["agreement"], link["differing_tags"], link["reproduced"]) == ("stored", 1.0, 0, True)
    with Store(db) as store:
        run = store.run(done.run_id)
    assert run["details"]["reproduces"] == link and run["record"].head == "token"
    weights = run["record"].weights
    assert weights.source == "adapter" and weights.base is not None
    # the adapter is named by its hub id and pinned commit, not by the cache folder it was fetched to
    assert (weights.name, weights.hf_id, weights.revision) == (ADAPTER, ADAPTER, ADAPTER_REVISION)
    assert (weights.base.source, weights.base.hf_id, weights.base.revision) == ("hub", BASE, REVISION)
    assert not hub.touched.exists()


def _cli(argv: list[str], monkeypatch, capsys) -> str:
    """`nerbench ARGV` as the console script runs it: its error, printed as one line (exit status 2)."""
    monkeypatch.setattr("sys.argv", ["nerbench", *argv])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, err
    assert "Traceback" not in err and err.startswith("error: ")
    return " ".join(err.split())  # the console may break a long line


def _reproduce_argv(submission: Path, tmp_path: Path, data_dir: Path) -> list[str]:
    db, runs = tmp_path / "site.duckdb", tmp_path / "runs"
    return ["reproduce", str(submission), "--db", str(db), "--data-dir", str(data_dir), "--runs-dir", str(runs)]


def test_an_adapter_for_another_base_is_refused_naming_both(hub, data_dir, tmp_path, monkeypatch, capsys):
    cache = tmp_path / "cache"
    offline(monkeypatch, cache)
    cache_snapshot(cache, BASE, REVISION, files_of(hub.repos / "base"))
    elsewhere = files_of(hub.repos / "adapter", adapter_config_json={"base_model_name_or_path": "org/other-base"})
    cache_snapshot(cache, ADAPTER, ADAPTER_REVISION, elsewhere)
    submission = hub.with_weights(hub.adapter_submission, tmp_path, ADAPTER_WEIGHTS)
    err = _cli(_reproduce_argv(submission, tmp_path, data_dir), monkeypatch, capsys)
    assert f"adapter {ADAPTER}: its adapter_config.json names the base 'org/other-base'" in err
    assert f"weights.hf_id is '{BASE}'" in err
    assert not (tmp_path / "site.duckdb").exists()


def test_an_adapter_in_pickled_weights_only_is_refused(hub, data_dir, tmp_path, monkeypatch, capsys):
    cache = tmp_path / "cache"
    offline(monkeypatch, cache)
    cache_snapshot(cache, BASE, REVISION, files_of(hub.repos / "base"))
    files = files_of(hub.repos / "adapter")
    del files["adapter_model.safetensors"]  # adapter_model.bin stays: PEFT would load it
    cache_snapshot(cache, ADAPTER, ADAPTER_REVISION, files)
    submission = hub.with_weights(hub.adapter_submission, tmp_path, ADAPTER_WEIGHTS)
    err = _cli(_reproduce_argv(submission, tmp_path, data_dir), monkeypatch, capsys)
    assert "holds no adapter_model.safetensors: nerbench loads safetensors adapters only" in err
    assert not hub.touched.exists() and not (tmp_path / "site.duckdb").exists()


@pytest.mark.parametrize("where", ["checkpoint", "base of the adapter"])
def test_a_config_asking_for_its_own_code_is_refused_before_anything_loads(
    hub, data_dir, tmp_path, monkeypatch, capsys, where
):
    cache = tmp_path / "cache"
    offline(monkeypatch, cache)
    ran = tmp_path / "ran"  # created if the repository's code is imported
    auto_map = {"AutoConfig": "modeling_tiny.TinyConfig", "AutoModelForTokenClassification": "modeling_tiny.Tiny"}
    if where == "checkpoint":
        repo, folder, submitted, weights = ENCODER, "encoder", hub.encoder_submission, ENCODER_WEIGHTS
    else:
        repo, folder, submitted, weights = BASE, "base", hub.adapter_submission, ADAPTER_WEIGHTS
        cache_snapshot(cache, ADAPTER, ADAPTER_REVISION, files_of(hub.repos / "adapter"))
    files = files_of(hub.repos / folder, config_json={"auto_map": auto_map})
    files["modeling_tiny.py"] = f"import pathlib\npathlib.Path({str(ran)!r}).touch()\n".encode()
    snapshot = cache_snapshot(cache, repo, REVISION, files)
    submission = hub.with_weights(submitted, tmp_path, weights)
    err = _cli(_reproduce_argv(submission, tmp_path, data_dir), monkeypatch, capsys)
    assert f"{snapshot / 'config.json'}: auto_map asks for the model's own code" in err
    assert not ran.exists() and not (tmp_path / "site.duckdb").exists()  # nothing loaded, nothing stored


@pytest.mark.parametrize(
    ("weights", "expected"),
    [
        (
            ENCODER_WEIGHTS.replace(REVISION, MISSING),
            f"model {ENCODER} at revision {MISSING} is neither a local folder nor in the Hugging Face cache",
        ),
        (
            ADAPTER_WEIGHTS.replace(ADAPTER_REVISION, MISSING),
            f"adapter {ADAPTER} at revision {MISSING}: cannot be downloaded",
        ),
        (
            ADAPTER_WEIGHTS.replace(REVISION, MISSING),
            f"base_model_name_or_path '{BASE}' is unavailable (model {BASE} at revision {MISSING} is neither",
        ),
    ],
    ids=["checkpoint", "adapter", "base of the adapter"],
)
def test_a_revision_missing_from_the_cache_is_named(hub, data_dir, tmp_path, monkeypatch, capsys, weights, expected):
    # refs/main names another commit, which is in the cache: a pinned revision never falls back to it.
    offline(monkeypatch, hub.cache)
    submitted = hub.adapter_submission if "adapter_id" in weights else hub.encoder_submission
    submission = hub.with_weights(submitted, tmp_path, weights)
    err = _cli(_reproduce_argv(submission, tmp_path, data_dir), monkeypatch, capsys)
    assert expected in err
    assert not (tmp_path / "site.duckdb").exists()


# ----------------------------------------------------------------------------- online, downloaded


class _StandInHub(BaseHTTPRequestHandler):
    """The hub endpoints snapshot_download uses for a pinned commit: the file list of a commit
    (GET /api/models/<id>/tree/<commit>) and each file (HEAD and GET /<id>/resolve/<commit>/<path>).
    `repos` maps (repo id, commit) to a folder; every request is logged as (method, id, commit, path)."""

    repos: dict[tuple[str, str], Path] = {}
    log: list[tuple[str, str, str, str | None]] = []

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        self._answer(head=False)

    def do_HEAD(self) -> None:
        self._answer(head=True)

    def _answer(self, *, head: bool) -> None:
        path = unquote(urlsplit(self.path).path)
        if tree := re.fullmatch(r"/api/models/([^/]+/[^/]+)/tree/([^/]+)", path):
            self.log.append(("tree", tree[1], tree[2], None))
            folder = self.repos.get((tree[1], tree[2]))
            if folder is not None:
                listing = [
                    {"type": "file", "path": p.name, "size": p.stat().st_size, "oid": _git_sha1(p.read_bytes())}
                    for p in sorted(folder.iterdir())
                ]
                return self._send(json.dumps(listing).encode(), {"Content-Type": "application/json"}, head)
        elif file := re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path):
            self.log.append(("HEAD" if head else "GET", file[1], file[2], file[3]))
            folder = self.repos.get((file[1], file[2]))
            if folder is not None and (folder / file[3]).is_file():
                data = (folder / file[3]).read_bytes()
                return self._send(data, {"X-Repo-Commit": file[2], "ETag": f'"{_git_sha1(data)}"'}, head)
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _send(self, body: bytes, headers: dict[str, str], head: bool) -> None:
        self.send_response(200)
        for key, value in (headers | {"Content-Length": str(len(body))}).items():
            self.send_header(key, value)
        self.end_headers()
        if not head:
            self.wfile.write(body)


def _git_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@pytest.fixture
def stand_in_hub(hub) -> Iterator[str]:
    """The hub at http://127.0.0.1:<port>, holding the repositories at their pinned commits only."""
    _StandInHub.repos = {(BASE, REVISION): hub.repos / "base", (ADAPTER, ADAPTER_REVISION): hub.repos / "adapter"}
    _StandInHub.log = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _StandInHub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()


REPRODUCE = """
import json, sys, torch
from pathlib import Path
from nerbench.pipeline.reproduce import reproduce
torch.set_num_threads(1)
submission, db, data_dir, runs = map(Path, sys.argv[1:])
(done,) = reproduce(submission, db=db, data_dir=data_dir, device="cpu", runs_dir=runs, allow_random_init=True)
print(json.dumps(done.link))
"""


def test_a_hub_adapter_downloads_what_it_loads_at_the_pinned_commits(hub, stand_in_hub, data_dir, tmp_path):
    # A fresh machine: an empty cache, the hub reachable. The adapter is served as `nerbench train`
    # wrote it (its training.json says how the head reads words) beside a pickle and tokenizer code.
    cache = tmp_path / "cache"
    env = {k: v for k, v in os.environ.items() if k not in {"HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"}} | {
        "HF_ENDPOINT": stand_in_hub,
        "HF_HUB_CACHE": str(cache),
        "HF_HOME": str(tmp_path / "hf-home"),  # no token of this machine's, no modules cache outside
        "HF_HUB_DISABLE_TELEMETRY": "1",
    }
    submission = hub.with_weights(hub.adapter_submission, tmp_path, ADAPTER_WEIGHTS)
    args = [submission, tmp_path / "site.duckdb", data_dir, tmp_path / "runs"]
    done = subprocess.run(
        [sys.executable, "-c", REPRODUCE, *map(str, args)], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    link = json.loads(done.stdout.strip().splitlines()[-1])
    assert (link["agreement"], link["differing_tags"], link["reproduced"]) == (1.0, 0, True)

    ours = [entry for entry in _StandInHub.log if entry[1] in (BASE, ADAPTER)]  # not other libraries' look-ups
    assert {(repo, commit) for _, repo, commit, _ in ours} == {(BASE, REVISION), (ADAPTER, ADAPTER_REVISION)}
    fetched = {repo: {path for method, r, _, path in ours if method == "GET" and r == repo} for repo in (BASE, ADAPTER)}
    assert {"adapter_model.safetensors", "adapter_config.json", "training.json"} <= fetched[ADAPTER]
    assert {"model.safetensors", "config.json"} <= fetched[BASE]
    assert not [p for paths in fetched.values() for p in paths if p.endswith((".bin", ".py"))]
    assert not hub.touched.exists()
    for repo, commit in ((BASE, REVISION), (ADAPTER, ADAPTER_REVISION)):  # the cache holds what was fetched
        snapshot = cache / repo_folder_name(repo_id=repo, repo_type="model") / "snapshots" / commit
        assert {p.name for p in snapshot.iterdir()} == fetched[repo]


def test_an_adapter_comes_from_the_cache_when_offline_is_set_after_import(hub, stand_in_hub, monkeypatch):
    # huggingface_hub read HF_HUB_OFFLINE before it was set: nerbench reads it at call time, for the
    # adapter as for its base, so nothing is asked of the hub (which would answer here, and log it).
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub.cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", stand_in_hub)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = rp._hub_adapter(ADAPTER, ADAPTER_REVISION, BASE)
    assert folder.name == ADAPTER_REVISION and (folder / "adapter_model.safetensors").is_file()
    assert _StandInHub.log == []
    with pytest.raises(NerbenchError, match=f"adapter {ADAPTER} at revision {MISSING}: cannot be downloaded"):
        rp._hub_adapter(ADAPTER, MISSING, BASE)
    assert _StandInHub.log == []
