"""The builds of nerbench/builds (reserialise, jnlpba_genia_train, chemprot_span_json) on small
hand-made sources, their errors, and the dispatch by name. The real sources, end to end:
tests/test_fetch.py."""

import io
import json
import sys
import tarfile
import types

import pytest

from nerbench import builds
from nerbench.builds import APPROXIMATE, BUILDS, Source, builder, documents_builder
from nerbench.builds.chemprot import ConversionCounts, documents_to_bio, read_span_json, sentence_tags
from nerbench.builds.jnlpba import genia_abstracts, read_member
from nerbench.conll import parse_conll
from nerbench.datasets import REGISTRY
from nerbench.errors import NerbenchError

SOURCE = Source("owner/repo", "0123456789abcdef0123456789abcdef01234567", "dir/file.txt")


def _reader(content: dict[str, bytes]):
    def read(source: Source) -> bytes:
        try:
            return content[source.path]
        except KeyError:
            raise NerbenchError(f"{source.label}: download failed (not found)") from None

    return read


def _one(name: str, data: bytes, source: Source = SOURCE) -> bytes:
    return builder(name)([source], _reader({source.path: data}))


# ---------------------------------------------------------------- dispatch


def test_every_registered_build_is_known_and_dispatches():
    used = {split.build for info in REGISTRY.values() if info.public for split in info.splits}
    assert used == set(BUILDS)
    assert APPROXIMATE == {"chemprot_rebuild_train"}
    for name in ("reserialise", "jnlpba_genia_train", "chemprot_span_json"):
        assert callable(builder(name))
    with pytest.raises(NerbenchError, match=r"unknown build 'copy'; known: reserialise, jnlpba_genia_train"):
        builder("copy")


def test_a_missing_build_module_is_reported_as_unavailable(monkeypatch):
    monkeypatch.setitem(builds._BUILDS, "chemprot_rebuild_train", ("no_such_module", "build_train"))
    with pytest.raises(NerbenchError) as info:
        builder("chemprot_rebuild_train")
    assert str(info.value) == (
        "build 'chemprot_rebuild_train' is not available in this nerbench (nerbench.builds.no_such_module is missing)"
    )
    monkeypatch.setitem(sys.modules, "nerbench.builds.empty_module", types.ModuleType("nerbench.builds.empty_module"))
    monkeypatch.setitem(builds._BUILDS, "chemprot_rebuild_train", ("empty_module", "build_train"))
    with pytest.raises(NerbenchError, match=r"nerbench\.builds\.empty_module has no build_train\(\)"):
        builder("chemprot_rebuild_train")
    monkeypatch.setitem(sys.modules, "nerbench.builds.documents", types.ModuleType("nerbench.builds.documents"))
    with pytest.raises(NerbenchError, match=r"the document sidecar build is not available .* no build_documents\(\)"):
        documents_builder()


def test_source_url_and_label():
    source = Source("a/b", "c" * 40, "some dir/x#1.txt")
    assert source.url("file:///srv/") == f"file:///srv/a/b/{'c' * 40}/some%20dir/x%231.txt"
    assert source.label == "a/b@cccccccccccc:some dir/x#1.txt"


# ---------------------------------------------------------------- reserialise


def test_reserialise_drops_the_layout_of_the_source():
    data = b"-DOCSTART-\tO\n\nIL-2\tNN\tB-protein\ngene\tNN\tI-protein\n\n\n\n-DOCSTART-\tO\n\nx\tO\r\n\n\n"
    assert _one("reserialise", data) == b"IL-2\tB-protein\ngene\tI-protein\n\nx\tO\n"


def test_reserialise_errors_name_the_source():
    with pytest.raises(NerbenchError, match=r"^owner/repo@0123456789ab:dir/file\.txt:2: invalid tag 'X-1'"):
        _one("reserialise", b"a\tO\nb\tX-1\n")
    with pytest.raises(NerbenchError, match=r"dir/file\.txt: holds no sentences"):
        _one("reserialise", b"\n\n-DOCSTART-\tO\n")
    with pytest.raises(NerbenchError, match="exactly one source, got 2"):
        builder("reserialise")([SOURCE, SOURCE], _reader({}))
    with pytest.raises(NerbenchError, match="download failed"):
        builder("reserialise")([SOURCE], _reader({}))


# ---------------------------------------------------------------- jnlpba


def _tar(members: dict[str, bytes], mode: str = "w:gz") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _genia(abstracts: int) -> bytes:
    blocks = []
    for number in range(1, abstracts + 1):
        blocks.append(f"###MEDLINE:{90000000 + number}\n\nAbstract\tO\n{number}\tB-protein\n.\tO\n\nSecond\tO\n.\tO\n")
    return "\n".join(blocks).encode()


def test_jnlpba_train_is_the_first_1800_abstracts_without_medline_lines():
    archive = _tar({"README.txt": b"x", "Genia4ERtask2.iob2": _genia(2000)})
    built = _one("jnlpba_genia_train", archive).decode()
    sentences = parse_conll(built)
    assert len(sentences) == 3600
    assert sentences[-2].tokens == ("Abstract", "1800", ".")
    assert "###MEDLINE" not in built and built.endswith(".\tO\n") and "\n\n\n" not in built


def test_jnlpba_abstracts_keep_their_ids_and_sentences():
    abstracts = genia_abstracts(_genia(3), "f")
    assert [a.medline for a in abstracts] == ["90000001", "90000002", "90000003"]
    assert [len(a.sentences) for a in abstracts] == [2, 2, 2]
    # A marker ends a sentence even without a blank line before it.
    glued = genia_abstracts(b"###MEDLINE:1\na\tO\n###MEDLINE:2\nb\tO\n", "f")
    assert [(a.medline, [s.tokens for s in a.sentences]) for a in glued] == [("1", [("a",)]), ("2", [("b",)])]


@pytest.mark.parametrize(
    ("archive", "message"),
    [
        (b"not an archive", r"^owner/repo@0123456789ab:dir/file\.txt: not a readable tar\.gz archive"),
        (_tar({"other.iob2": b""}), r"dir/file\.txt: the archive has no member 'Genia4ERtask2\.iob2'"),
        (_tar({"Genia4ERtask2.iob2": _genia(1799)}), r"Genia4ERtask2\.iob2: 1799 abstracts .* expected at least 1800"),
        (
            _tar({"Genia4ERtask2.iob2": b"a\tO\n###MEDLINE:1\nb\tO\n"}),
            r"iob2:1: text before the first ###MEDLINE: line",
        ),
        (_tar({"Genia4ERtask2.iob2": b"\na\tO\n"}), r"iob2:2: text before the first ###MEDLINE: line"),
        (_tar({"Genia4ERtask2.iob2": b"###MEDLINE:1\n\n###MEDLINE:2\na\tO\n"}), r"iob2:1: abstract 1 has no sentences"),
        (_tar({"Genia4ERtask2.iob2": b"###MEDLINE:\na\tO\n"}), r"iob2:1: ###MEDLINE: line without an id"),
        (_tar({"Genia4ERtask2.iob2": b"###MEDLINE:1\na\tB-\n"}), r"Genia4ERtask2\.iob2:2: invalid tag 'B-'"),
        (_tar({"Genia4ERtask2.iob2": b"###MEDLINE:1\na\xff\tO\n"}), r"Genia4ERtask2\.iob2:2: not valid UTF-8"),
    ],
)
def test_jnlpba_errors_name_the_source_member_and_line(archive, message):
    with pytest.raises(NerbenchError, match=message):
        _one("jnlpba_genia_train", archive)


def test_jnlpba_reads_plain_tar_and_refuses_a_directory_member():
    assert read_member(_tar({"m": b"abc"}, mode="w"), "m", "w") == b"abc"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("Genia4ERtask2.iob2")
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
    with pytest.raises(NerbenchError, match="member 'Genia4ERtask2.iob2' is not a regular file"):
        _one("jnlpba_genia_train", buffer.getvalue())


# ---------------------------------------------------------------- chemprot span JSON


def _doc(key, sentences, ner) -> str:
    return json.dumps({"doc_key": key, "sentences": sentences, "ner": ner, "relations": [[] for _ in sentences]})


def test_chemprot_spans_become_bio_per_sentence_with_document_offsets():
    lines = [
        _doc("1", [["a", "b", "c"], ["d", "e"]], [[[0, 1, "CHEMICAL"]], [[4, 4, "GENE-Y"], [3, 3, "GENE-N"]]]),
        _doc("2", [["f"]], [[]]),
    ]
    built = _one("chemprot_span_json", ("\n".join(lines) + "\n").encode())
    assert built == b"a\tB-CHEMICAL\nb\tI-CHEMICAL\nc\tO\n\nd\tB-GENE\ne\tB-GENE\n\nf\tO\n"


def test_chemprot_overlaps_are_resolved_longest_first_then_first_listed():
    counts = ConversionCounts()
    # [0-1] CHEMICAL and [1-2] GENE tie on length: the first listed wins; [0-3] is longer than both.
    assert sentence_tags(5, [(0, 1, "CHEMICAL"), (1, 2, "GENE")], counts) == (
        "B-CHEMICAL",
        "I-CHEMICAL",
        "O",
        "O",
        "O",
    )
    assert sentence_tags(5, [(1, 2, "GENE"), (0, 1, "CHEMICAL")], counts) == ("O", "B-GENE", "I-GENE", "O", "O")
    assert sentence_tags(5, [(0, 0, "GENE"), (0, 3, "CHEMICAL"), (4, 4, "GENE")], counts) == (
        "B-CHEMICAL",
        "I-CHEMICAL",
        "I-CHEMICAL",
        "I-CHEMICAL",
        "B-GENE",
    )
    # An exact duplicate is removed, not counted as an overlap; the same tokens with another type overlap.
    assert sentence_tags(2, [(0, 0, "GENE"), (0, 0, "GENE"), (0, 0, "CHEMICAL")], counts) == ("B-GENE", "O")
    assert counts.to_dict() == {"spans_labeled": 5, "overlapping_spans_dropped": 4, "duplicate_spans_removed": 1}


def test_chemprot_gene_y_and_gene_n_on_the_same_tokens_are_duplicates_after_the_mapping():
    documents = read_span_json(_doc("9", [["x", "y"]], [[[0, 1, "GENE-Y"], [0, 1, "GENE-N"]]]).encode(), "f")
    sentences, counts = documents_to_bio(documents, "f")
    assert [s.tags for s in sentences] == [("B-GENE", "I-GENE")]
    # The types are merged first (the span JSON of dev and test already holds only GENE and CHEMICAL).
    assert counts.to_dict() == {"spans_labeled": 1, "overlapping_spans_dropped": 0, "duplicate_spans_removed": 1}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{", r"f\.json:2: not a JSON object"),
        ("[1, 2]", r"f\.json:2: expected a JSON object with doc_key, sentences and ner"),
        ('{"doc_key": "1", "sentences": []}', r"f\.json:2: no ner"),
        (_doc("1", [["a"]], []), r"f\.json:2: doc 1: sentences and ner must be lists of the same length"),
        (_doc("1", [["a", ""]], [[]]), r"f\.json:2: doc 1: sentence 0 is not a list of non-empty tokens"),
        (_doc("1", [["a"], ["b"]], [[], [[0, 0, "GENE"]]]), r"doc 1: sentence 1: span \[0, 0, 'GENE'\] is outside"),
        (_doc("1", [["a", "b"]], [[[1, 0, "GENE"]]]), r"span \[1, 0, 'GENE'\] is outside its sentence"),
        (_doc("1", [["a"]], [[[0, 0, "PROTEIN"]]]), r"doc 1: sentence 0: unknown entity type 'PROTEIN'"),
        (_doc("1", [["a"]], [[[0, "0", "GENE"]]]), r"span \[0, '0', 'GENE'\] is not \[start, end, type\]"),
        (_doc("1", [["a"]], [[[0, True, "GENE"]]]), r"is not \[start, end, type\]"),
        (_doc(None, [["a"]], [[]]), r"f\.json:2: doc_key None is not an id"),
    ],
)
def test_chemprot_errors_name_the_source_line_and_document(line, message):
    data = (_doc("0", [["ok"]], [[]]) + "\n" + line + "\n").encode()
    with pytest.raises(NerbenchError, match=message):
        read_span_json(data, "f.json")


def test_chemprot_empty_or_undecodable_sources_are_refused():
    with pytest.raises(NerbenchError, match=r"dir/file\.txt: no documents"):
        _one("chemprot_span_json", b"\n\n")
    with pytest.raises(NerbenchError, match=r"dir/file\.txt:1: not valid UTF-8"):
        _one("chemprot_span_json", b'{"doc_key": "\xff"}')


@pytest.mark.parametrize("split", ["dev", "test"])
def test_chemprot_conversion_counts_and_bytes_equal_the_manifest(data_dir, data_manifest, split):
    sources = data_dir.parent / "sources"
    if not (sources / "README.md").is_file():
        pytest.skip(f"no shared sources folder at {sources}")
    entry = data_manifest["datasets"]["chemprot"][split]
    [source] = REGISTRY["chemprot"].split(split).sources
    data = (sources / source.repository / source.commit / source.path).read_bytes()
    sentences, counts = documents_to_bio(read_span_json(data, source.label), source.label)
    assert {key: value for key, value in counts.to_dict().items() if key != "duplicate_spans_removed"} == entry[
        "conversion_counts"
    ]
    assert counts.duplicate_spans_removed == 0
    assert len(sentences) == entry["sentences"]
    assert _one("chemprot_span_json", data, source) == (data_dir / "chemprot" / f"{split}.conll").read_bytes()
