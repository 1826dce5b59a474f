import shutil
from pathlib import Path

import pytest

from nerbench import datasets
from nerbench.conll import Sentence, read_conll
from nerbench.datasets import (
    DEFAULT_SUITE,
    REGISTRY,
    fetch,
    get_dataset,
    load_documents,
    load_split,
    read_documents,
    resolve_data_dir,
    statistics,
    verify,
)
from nerbench.errors import NerbenchError


@pytest.fixture(scope="module")
def manifest(data_manifest) -> dict:
    return data_manifest


def _public_splits():
    return [(name, split.name) for name, info in REGISTRY.items() if info.public for split in info.splits]


# ---------------------------------------------------------------- registry


def test_suite_order_and_registry_contents():
    assert DEFAULT_SUITE == ("jnlpba", "bc5cdr", "biored", "chemprot", "ncbi_disease")
    assert list(REGISTRY) == [*DEFAULT_SUITE, "bc2gm", "linnaeus", "reddit_impacts"]
    assert [n for n, i in REGISTRY.items() if i.suite == "default"] == list(DEFAULT_SUITE)
    paper_sets = {n for n, i in REGISTRY.items() if i.paper_set}
    assert paper_sets == {"jnlpba", "bc5cdr", "biored", "chemprot", "reddit_impacts"}
    for info in REGISTRY.values():
        assert [s.name for s in info.splits] == ["train", "dev", "test"]
        assert info.title and info.citation and info.licence and info.entity_types


def test_registry_sha256_sources_and_types_equal_the_manifest(manifest):
    assert set(manifest["datasets"]) == {n for n, i in REGISTRY.items() if i.public}
    for name, splits in manifest["datasets"].items():
        info = get_dataset(name)
        for split, entry in splits.items():
            pinned = info.split(split)
            assert pinned.sha256 == entry["sha256"], (name, split)
            assert pinned.bytes == entry["bytes"]
            assert pinned.made == entry["conversion"]
            assert [(s.repository, s.commit, s.path) for s in pinned.sources] == [
                (s["repository"], s["commit"], s["path"]) for s in entry["sources"]
            ]
            assert set(info.entity_types) == set(entry["entity_mentions_per_type"])


def test_every_public_split_names_its_build_and_sidecar(manifest):
    builds = {(n, s.name): s.build for n, i in REGISTRY.items() if i.public for s in i.splits}
    assert {key: build for key, build in builds.items() if build != "reserialise"} == {
        ("jnlpba", "train"): "jnlpba_genia_train",
        ("chemprot", "train"): "chemprot_rebuild_train",
        ("chemprot", "dev"): "chemprot_span_json",
        ("chemprot", "test"): "chemprot_span_json",
    }
    for (name, split), build in builds.items():
        pinned = get_dataset(name).split(split)
        # A re-serialised file equals its one source up to layout (trailing blank lines, -DOCSTART-).
        assert pinned.source_reserialises == (build == "reserialise")
        entry = manifest["datasets"][name][split]
        if build == "reserialise":
            identical = entry.get("written_file_identical_to_source_except_trailing_newlines")
            assert identical or "DOCSTART" in entry["conversion"]
        # The sidecar: sha256 and sources as the data's MANIFEST records them.
        if "docs_sha256" in entry:
            assert pinned.docs is not None
            assert pinned.docs.sha256 == entry["docs_sha256"]
            assert [(s.repository, s.commit, s.path) for s in pinned.docs.sources] == [
                (s["repository"], s["commit"], s["path"]) for s in entry["docs_sources"]
            ]
        else:
            assert pinned.docs is None
    assert {n for n, i in REGISTRY.items() if any(s.docs for s in i.splits)} == set(DEFAULT_SUITE)
    assert all(s.build == "" and s.docs is None for s in get_dataset("reddit_impacts").splits)


def test_an_unknown_build_in_the_registry_is_refused():
    with pytest.raises(NerbenchError, match=r"datasets\.json: bc2gm dev: unknown build 'copy' \(known: reserialise, "):
        datasets._build_name("bc2gm", "dev", "copy")


def test_source_urls_are_quoted_like_raw_github_urls():
    docs = get_dataset("biored").split("test").docs
    assert docs is not None
    source = docs.sources[0]
    assert source.path == "NER BioRED/BioRED/Test.PubTator"
    assert source.url("https://raw.githubusercontent.com/") == (
        "https://raw.githubusercontent.com/ndlongvn/BioRED-NER-RE/637e02c9746de045ef56dbf543d77602783d63d9/"
        "NER%20BioRED/BioRED/Test.PubTator"
    )
    assert datasets.Source is type(source)  # nerbench.datasets re-exports nerbench.builds.Source


def test_labels_follow_the_entity_type_order():
    assert get_dataset("bc5cdr").labels == ("O", "B-Chemical", "I-Chemical", "B-Disease", "I-Disease")
    assert get_dataset("jnlpba").entity_types == ("protein", "DNA", "RNA", "cell_type", "cell_line")
    assert len(get_dataset("biored").labels) == 13


def test_unknown_dataset_and_split():
    with pytest.raises(NerbenchError, match=r"unknown dataset 'conll2003'; known: jnlpba, bc5cdr, .*reddit_impacts"):
        get_dataset("conll2003")
    with pytest.raises(NerbenchError, match=r"dataset 'bc5cdr' has no split 'validation'"):
        load_split("bc5cdr", "validation")


def test_reddit_impacts_is_known_but_not_public():
    info = get_dataset("reddit_impacts")
    assert not info.public and info.paper_set
    assert all(s.sha256 is None and not s.sources for s in info.splits)


# ---------------------------------------------------------------- data directory


def test_data_dir_resolution(monkeypatch, tmp_path):
    monkeypatch.setenv("NERBENCH_DATA_DIR", str(tmp_path / "env"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert resolve_data_dir(tmp_path / "flag") == tmp_path / "flag"
    assert resolve_data_dir(None) == tmp_path / "env"
    monkeypatch.delenv("NERBENCH_DATA_DIR")
    assert resolve_data_dir(None) == tmp_path / "xdg" / "nerbench" / "data"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert resolve_data_dir(None) == tmp_path / "home" / ".cache" / "nerbench" / "data"


# ---------------------------------------------------------------- statistics


def test_statistics_equal_the_manifest_for_every_split(data_dir, manifest):
    for name, split in _public_splits():
        loaded = load_split(name, split, data_dir)
        assert not loaded.modified
        assert loaded.sha256 == get_dataset(name).split(split).sha256
        stats = statistics(loaded.sentences, get_dataset(name).entity_types)
        entry = manifest["datasets"][name][split]
        assert list(stats.mentions_per_type) == list(get_dataset(name).entity_types)
        got = stats.to_dict()
        for key in (
            "sentences",
            "tokens",
            "entity_mentions",
            "entity_mentions_per_type",
            "entities_ge3_tokens",
            "entities_ge3_tokens_share",
            "max_sentence_length_tokens",
        ):
            assert got[key] == entry[key], (name, split, key)


def test_statistics_read_entities_the_conlleval_way():
    sentences = [
        Sentence(("a", "b", "c", "d"), ("B-X", "I-X", "I-X", "O"), 1),
        # an orphan I- opens a chunk; I-Y after X opens a new chunk of type Y
        Sentence(("a", "b", "c"), ("I-X", "I-Y", "I-Y"), 6),
    ]
    stats = statistics(sentences, ("X", "Z"))
    assert stats.mentions_per_type == {"X": 2, "Z": 0, "Y": 1}
    assert stats.mentions == 3 and stats.long_entities == 1
    assert stats.long_share == pytest.approx(1 / 3)
    assert stats.to_dict()["entities_ge3_tokens_share"] == 0.3333
    assert (stats.sentences, stats.tokens, stats.longest_sentence) == (2, 7, 4)
    empty = statistics([], ("X",))
    assert (empty.mentions, empty.long_share, empty.longest_sentence) == (0, 0.0, 0)


# ---------------------------------------------------------------- load_split errors


def _copy_dataset(data_dir: Path, target: Path, name: str) -> Path:
    shutil.copytree(data_dir / name, target / name)
    for path in (target / name).iterdir():
        path.chmod(0o644)
    return target


def test_modified_copy_is_refused_unless_allowed(data_dir, tmp_path):
    root = _copy_dataset(data_dir, tmp_path, "ncbi_disease")
    path = root / "ncbi_disease" / "test.conll"
    path.write_bytes(path.read_bytes() + b"\nextra\tO\n")
    expected = get_dataset("ncbi_disease").split("test").sha256
    with pytest.raises(NerbenchError) as info:
        load_split("ncbi_disease", "test", root)
    message = str(info.value)
    assert message.startswith(f"{path}: sha256 ")
    assert expected in message and datasets.sha256_bytes(path.read_bytes()) in message
    assert "--allow-modified" in message and "allow_modified=True" in message
    docs = root / "ncbi_disease" / "test.docs"
    with pytest.raises(NerbenchError, match=rf"^{docs}:941: 940 lines, but {path} has 941 sentences"):
        load_split("ncbi_disease", "test", root, allow_modified=True)  # the sidecar no longer fits
    docs.write_bytes(docs.read_bytes() + b"extra-doc\n")
    loaded = load_split("ncbi_disease", "test", root, allow_modified=True)
    assert loaded.modified and loaded.path == path
    assert loaded.sentences[-1].tokens == ("extra",)
    assert loaded.documents is not None and loaded.documents[-1] == "extra-doc"


def test_missing_split_says_how_to_get_it(tmp_path):
    with pytest.raises(NerbenchError) as info:
        load_split("bc5cdr", "test", tmp_path)
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'bc5cdr' / 'test.conll'}: not found")
    assert "nerbench datasets fetch bc5cdr" in message and "--data-dir" in message


def test_missing_reddit_impacts_says_it_was_not_released(tmp_path):
    with pytest.raises(NerbenchError) as info:
        load_split("reddit_impacts", "test", tmp_path)
    message = str(info.value)
    assert "not released publicly" in message and "request it from its authors" in message
    assert f"{tmp_path / 'reddit_impacts'}/{{train,dev,test}}.conll" in message


def test_user_supplied_reddit_impacts_is_read_and_its_labels_checked(tmp_path):
    folder = tmp_path / "reddit_impacts"
    folder.mkdir()
    (folder / "test.conll").write_text("I\tO\nlost\tO\nmy\tB-SocialImpacts\njob\tI-SocialImpacts\n")
    loaded = load_split("reddit_impacts", "test", tmp_path)
    assert not loaded.modified and loaded.sentences[0].tags[2] == "B-SocialImpacts"
    (folder / "dev.conll").write_text("a\tO\n\nb\tO\nc\tB-Employment\n")
    with pytest.raises(NerbenchError, match=r"dev\.conll:4: tag 'B-Employment' is not one of reddit_impacts's labels"):
        load_split("reddit_impacts", "dev", tmp_path)


def test_bad_conll_in_a_modified_copy_names_file_and_line(tmp_path):
    folder = tmp_path / "bc5cdr"
    folder.mkdir()
    (folder / "dev.conll").write_text("a\tO\n\nb\tX-Foo\n")
    with pytest.raises(NerbenchError, match=r"dev\.conll:3: invalid tag 'X-Foo'"):
        load_split("bc5cdr", "dev", tmp_path, allow_modified=True)


# ---------------------------------------------------------------- document sidecars


def test_bc5cdr_test_has_500_documents(data_dir):
    if not (data_dir / "bc5cdr" / "test.docs").is_file():
        pytest.skip("the data dir has no bc5cdr/test.docs")
    split = load_split("bc5cdr", "test", data_dir)
    assert split.documents is not None and len(split.documents) == len(split.sentences) == 4797
    assert len(set(split.documents)) == 500
    assert split.documents[0] == (data_dir / "bc5cdr" / "test.docs").read_text("utf-8").split("\n")[0]


def test_sets_without_a_sidecar_have_no_documents(data_dir, tmp_path):
    if (data_dir / "bc2gm" / "test.conll").is_file():
        assert load_split("bc2gm", "test", data_dir).documents is None
    assert read_documents(tmp_path / "nothing.conll", 3) is None


def _sidecar(tmp_path, data: bytes) -> Path:
    (tmp_path / "gold.docs").write_bytes(data)
    return tmp_path / "gold.conll"


def test_sidecar_is_read_beside_any_conll_file(tmp_path):
    assert read_documents(_sidecar(tmp_path, b"d1\nd1\nd2\n"), 3) == ("d1", "d1", "d2")
    assert read_documents(_sidecar(tmp_path, b"d1\nd1\nd2"), 3) == ("d1", "d1", "d2")  # no final LF
    assert read_documents(_sidecar(tmp_path, "PMID\u00e9\n".encode()), 1) == ("PMID\u00e9",)
    assert datasets.documents_path(Path("x/test.conll")) == Path("x/test.docs")


@pytest.mark.parametrize(
    ("data", "n", "message"),
    [
        (b"d1\nd2\n", 3, r"gold\.docs:3: 2 lines, but .*gold\.conll has 3 sentences"),
        (b"d1\nd2\nd3\nd4\n", 3, r"gold\.docs:4: 4 lines, but .*gold\.conll has 3 sentences"),
        (b"d1\n\nd3\n", 3, r"gold\.docs:2: empty document id"),
        (b"d1\nd2\r\n", 2, r"gold\.docs:2: document id 'd2\\r' has surrounding whitespace"),
        (b"d1\nd\xff2\n", 2, r"gold\.docs:2: not valid UTF-8"),
    ],
)
def test_a_sidecar_that_does_not_fit_names_file_and_line(tmp_path, data, n, message):
    conll = _sidecar(tmp_path, data)
    with pytest.raises(NerbenchError, match=message):
        read_documents(conll, n)
    with pytest.raises(NerbenchError, match=message.replace(r".*gold\.conll", r"the gold file")):
        load_documents(tmp_path / "gold.docs", n)


def test_an_explicit_sidecar_must_exist(tmp_path):
    with pytest.raises(NerbenchError, match=r"missing\.docs: file not found"):
        load_documents(tmp_path / "missing.docs", 1)


# ---------------------------------------------------------------- verify / overview


def test_verify_reports_ok_modified_and_missing(data_dir, tmp_path):
    root = _copy_dataset(data_dir, tmp_path, "biored")
    (root / "biored" / "dev.conll").write_text("x\tO\n")
    (root / "biored" / "test.conll").unlink()
    statuses = {(s.dataset, s.split): s.status for s in verify(["biored", "bc5cdr"], root)}
    assert statuses == {
        ("biored", "train"): "ok",
        ("biored", "dev"): "modified",
        ("biored", "test"): "missing",
        ("bc5cdr", "train"): "missing",
        ("bc5cdr", "dev"): "missing",
        ("bc5cdr", "test"): "missing",
    }
    assert all(s.status == "ok" for s in verify(DEFAULT_SUITE, data_dir))
    with pytest.raises(NerbenchError, match="unknown dataset 'nope'"):
        verify(["biored", "nope"], root)


def test_overview_shows_missing_sets_without_failing(data_dir, tmp_path):
    root = _copy_dataset(data_dir, tmp_path, "ncbi_disease")
    rows = datasets.overview(["ncbi_disease", "reddit_impacts"], root)
    assert [(r.status.split, r.status.status, r.statistics is None) for r in rows] == [
        ("train", "ok", False),
        ("dev", "ok", False),
        ("test", "ok", False),
        ("train", "missing", True),
        ("dev", "missing", True),
        ("test", "missing", True),
    ]


# ---------------------------------------------------------------- fetch
# (end to end from the real sources: tests/test_fetch.py)


def _files(results):
    return [(r.file, r.action) for r in results]


def test_fetch_from_a_file_mirror(data_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("NERBENCH_DATA_MIRROR", raising=False)
    target = tmp_path / "cache"
    results = fetch(["ncbi_disease", "chemprot"], target, mirror=data_dir.as_uri())
    assert _files(results) == [
        (f"{name}/{split}.{kind}", "fetched")
        for name in ("ncbi_disease", "chemprot")
        for split in ("train", "dev", "test")
        for kind in ("conll", "docs")
    ]
    assert results[0].url == f"{data_dir.as_uri()}/ncbi_disease/train.conll"
    assert results[1].url == f"{data_dir.as_uri()}/ncbi_disease/train.docs"
    assert all(r.ok and r.build is None and r.sha256 for r in results)
    for name in ("ncbi_disease", "chemprot"):
        for split in ("train", "dev", "test"):
            for suffix in (".conll", ".docs"):
                got = (target / name / f"{split}{suffix}").read_bytes()
                assert got == (data_dir / name / f"{split}{suffix}").read_bytes()
    # The mirror may also come from the environment; files already in place are kept.
    monkeypatch.setenv("NERBENCH_DATA_MIRROR", (tmp_path / "nowhere").as_uri())
    assert {r.action for r in fetch(["ncbi_disease"], target)} == {"present"}
    # --split: only the splits named.
    (target / "ncbi_disease" / "dev.docs").unlink()
    results = fetch(["ncbi_disease"], target, mirror=data_dir.as_uri(), splits=["dev"])
    assert _files(results) == [("ncbi_disease/dev.conll", "present"), ("ncbi_disease/dev.docs", "fetched")]


def test_fetch_refuses_a_mismatching_download_leaves_nothing_and_goes_on(data_dir, tmp_path):
    mirror = _copy_dataset(data_dir, tmp_path / "mirror", "ncbi_disease")
    bad = mirror / "ncbi_disease" / "train.conll"
    bad.write_bytes(bad.read_bytes().replace(b"B-Disease", b"O", 1))
    target = tmp_path / "cache"
    results = fetch(["ncbi_disease"], target, mirror=mirror.as_uri())
    assert _files(results) == [
        ("ncbi_disease/train.conll", "different"),
        ("ncbi_disease/dev.conll", "fetched"),
        ("ncbi_disease/dev.docs", "fetched"),
        ("ncbi_disease/test.conll", "fetched"),
        ("ncbi_disease/test.docs", "fetched"),
    ]
    first = results[0]
    assert not first.ok and first.sha256 != get_dataset("ncbi_disease").split("train").sha256
    assert "sha256" in first.reason and get_dataset("ncbi_disease").split("train").sha256 in first.reason
    assert "refused" in first.reason
    # Neither the refused file nor its sidecar nor a temporary file is left.
    assert sorted(p.name for p in (target / "ncbi_disease").iterdir()) == [
        "dev.conll",
        "dev.docs",
        "test.conll",
        "test.docs",
    ]


def test_fetch_never_overwrites_a_differing_local_file(data_dir, tmp_path):
    target = tmp_path / "cache"
    (target / "ncbi_disease").mkdir(parents=True)
    mine = target / "ncbi_disease" / "train.conll"
    mine.write_text("mine\tO\n")
    (target / "ncbi_disease" / "dev.docs").write_text("mine\n")
    results = fetch(["ncbi_disease"], target, mirror=data_dir.as_uri())
    assert _files(results) == [
        ("ncbi_disease/train.conll", "failed"),
        ("ncbi_disease/dev.conll", "fetched"),
        ("ncbi_disease/dev.docs", "failed"),
        ("ncbi_disease/test.conll", "fetched"),
        ("ncbi_disease/test.docs", "fetched"),
    ]
    assert "not overwriting" in results[0].reason and "not overwriting" in results[2].reason
    assert mine.read_text() == "mine\tO\n"
    assert (target / "ncbi_disease" / "dev.docs").read_text() == "mine\n"


def _fake_raw_sources(data_dir: Path, root: Path, name: str, corrupt: bool = False) -> None:
    """Lay out the public source files as raw.githubusercontent.com would serve them: same
    sentences, with -DOCSTART- lines and extra trailing blank lines."""
    for split in get_dataset(name).splits:
        source = split.sources[0]
        path = root / source.repository / source.commit / source.path
        path.parent.mkdir(parents=True, exist_ok=True)
        sentences = read_conll(data_dir / name / f"{split.name}.conll")
        blocks = ["\n".join(f"{t}\t{g}" for t, g in zip(s.tokens, s.tags)) for s in sentences]
        if corrupt:
            blocks[0] = blocks[0].replace("\tO", "\tB-Species", 1)
        half = len(blocks) // 2
        text = (
            "-DOCSTART-\tO\n\n"
            + "\n\n".join(blocks[:half])
            + "\n\n-DOCSTART-\tO\n\n\n"
            + "\n\n".join(blocks[half:])
            + "\n\n\n"
        )
        path.write_text(text, encoding="utf-8")


def test_fetch_re_serialises_the_pinned_public_source(data_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("NERBENCH_DATA_MIRROR", raising=False)
    sources = tmp_path / "raw"
    _fake_raw_sources(data_dir, sources, "linnaeus")
    monkeypatch.setenv("NERBENCH_SOURCE_URL", sources.as_uri())
    target = tmp_path / "cache"
    results = fetch(["linnaeus"], target)
    assert _files(results) == [(f"linnaeus/{s}.conll", "fetched") for s in ("train", "dev", "test")]
    assert results[0].url.endswith(
        "/cambridgeltl/MTL-Bioinformatics-2016/df0df02fae6dbb87d88ffcf323b9096528f06f84/data/linnaeus-IOB/train.tsv"
    )
    assert results[0].build == "reserialise"
    assert results[0].sources == ("cambridgeltl/MTL-Bioinformatics-2016@df0df02fae6d:data/linnaeus-IOB/train.tsv",)
    for split in ("train", "dev", "test"):
        name = f"{split}.conll"
        assert (target / "linnaeus" / name).read_bytes() == (data_dir / "linnaeus" / name).read_bytes()


def test_fetch_refuses_a_source_whose_content_differs(data_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("NERBENCH_DATA_MIRROR", raising=False)
    sources = tmp_path / "raw"
    _fake_raw_sources(data_dir, sources, "linnaeus", corrupt=True)
    monkeypatch.setenv("NERBENCH_SOURCE_URL", sources.as_uri())
    target = tmp_path / "cache"
    results = fetch(["linnaeus"], target)
    assert [r.action for r in results] == ["different"] * 3
    assert all("differs from the registry's" in r.reason and "by build 'reserialise'" in r.reason for r in results)
    assert not target.exists() or not any(target.rglob("*"))


def test_a_split_that_cannot_be_built_is_reported_and_the_others_go_on(tmp_path, monkeypatch):
    monkeypatch.delenv("NERBENCH_DATA_MIRROR", raising=False)
    monkeypatch.setenv("NERBENCH_SOURCE_URL", (tmp_path / "raw").as_uri())
    seen = []
    results = fetch(["jnlpba", "biored"], tmp_path / "cache", on_start=lambda d, s: seen.append((d, s)))
    assert seen == [(name, split) for name in ("jnlpba", "biored") for split in ("train", "dev", "test")]
    assert _files(results) == [
        (f"{n}/{s}.conll", "failed") for n in ("jnlpba", "biored") for s in ("train", "dev", "test")
    ]
    assert results[0].build == "jnlpba_genia_train"
    assert results[0].reason.startswith((tmp_path / "raw").as_uri() + "/wolfe-pack/wolfe/")
    assert "Genia4ERtraining.tar.gz: download failed" in results[0].reason
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*"))


def test_fetch_reports_download_failures_and_refuses_bad_requests(tmp_path):
    results = fetch(["ncbi_disease"], tmp_path / "cache", mirror=(tmp_path / "empty").as_uri())
    assert [r.action for r in results] == ["failed"] * 3
    assert "/ncbi_disease/train.conll: download failed" in results[0].reason
    # Wrong requests fail before anything is fetched.
    with pytest.raises(NerbenchError, match="nothing to fetch: reddit_impacts was not released publicly"):
        fetch(["ncbi_disease", "reddit_impacts"], tmp_path / "cache")
    with pytest.raises(NerbenchError, match=r"unknown split 'validation'; splits: train, dev, test"):
        fetch(["ncbi_disease"], tmp_path / "cache", splits=["dev", "validation"])
    with pytest.raises(NerbenchError, match="unknown dataset 'conll2003'"):
        fetch(["ncbi_disease", "conll2003"], tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


def test_the_source_reader_downloads_each_file_once(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(datasets, "_download", lambda url: calls.append(url) or b"x")
    read = datasets.source_reader("file:///base")
    source = get_dataset("ncbi_disease").split("dev").sources[0]
    assert read(source) == b"x" and read(source) == b"x"
    assert calls == [source.url("file:///base")]

    def failing(url):
        calls.append(url)
        raise NerbenchError(f"{url}: download failed (no)")

    monkeypatch.setattr(datasets, "_download", failing)
    read = datasets.source_reader("file:///base")
    for _ in range(2):
        with pytest.raises(NerbenchError, match="download failed"):
            read(source)
    assert len(calls) == 2  # the failure is kept too
