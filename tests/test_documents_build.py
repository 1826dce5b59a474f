"""The document sidecars (`<name>/<split>.docs`) built from their public sources by
nerbench.builds.documents: byte-identical to the shared data's for all 15 splits, and a source that
does not match is a NerbenchError naming the dataset, split and abstract, never a guess.

The source files are read from the shared sources folder (laid out `<owner>/<repo>/<commit>/<path>`):
`$NERBENCH_SOURCE_URL` when it is a file:// URL, else `sources/` beside the data folder; the tests
that need it skip without it. The synthetic tests at the end need no data.
"""

import hashlib
import json
import os
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from nerbench.builds.documents import build_documents
from nerbench.datasets import Source
from nerbench.errors import NerbenchError

DATASETS = ("jnlpba", "bc5cdr", "biored", "chemprot", "ncbi_disease")
SPLITS = ("train", "dev", "test")


@pytest.fixture(scope="module")
def sources_dir(data_dir: Path) -> Path:
    url = os.environ.get("NERBENCH_SOURCE_URL", "")
    candidates = [Path(unquote(urlparse(url).path))] if url.startswith("file://") else []
    candidates.append(data_dir.parent / "sources")  # ../shared/sources beside ../shared/data
    for candidate in candidates:
        if (candidate / "spyysalo").is_dir():
            return candidate
    pytest.skip(f"no shared sources folder (looked in {', '.join(map(str, candidates))})")


@pytest.fixture(scope="module")
def manifest(data_manifest: dict) -> dict:
    return data_manifest["datasets"]


def docs_sources(manifest: dict, dataset: str, split: str) -> list[Source]:
    return [Source(s["repository"], s["commit"], s["path"]) for s in manifest[dataset][split]["docs_sources"]]


def reader(sources_dir: Path, patch=None):
    """Reads a source from the folder; `patch(path, data)` may change its bytes."""

    def read(source: Source) -> bytes:
        data = (sources_dir / source.repository / source.commit / source.path).read_bytes()
        return patch(source.path, data) if patch else data

    return read


@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize("dataset", DATASETS)
def test_the_built_sidecar_equals_the_shared_one(dataset, split, data_dir, sources_dir, manifest):
    entry = manifest[dataset][split]
    conll = (data_dir / dataset / f"{split}.conll").read_bytes()
    assert hashlib.sha256(conll).hexdigest() == entry["sha256"]
    built = build_documents(dataset, split, conll, docs_sources(manifest, dataset, split), reader(sources_dir))
    assert hashlib.sha256(built).hexdigest() == entry["docs_sha256"]
    assert built == (data_dir / dataset / f"{split}.docs").read_bytes()
    assert len(set(built.decode("utf-8").split())) == entry["docs_count"]


def _second_pubtator_document(data: bytes) -> tuple[str, bytes]:
    """The PMID of the second document of a PubTator file and the file with one word of its abstract changed."""
    lines = data.split(b"\n")
    abstracts = [index for index, line in enumerate(lines) if b"|a|" in line[:20]]
    index = abstracts[1]
    pmid, _, text = lines[index].partition(b"|a|")
    words = text.split(b" ")
    words[len(words) // 2] = words[len(words) // 2] + b"x"
    lines[index] = pmid + b"|a|" + b" ".join(words)
    return pmid.decode(), b"\n".join(lines)


def test_an_abstract_whose_text_was_changed_is_an_error_naming_its_pmid(data_dir, sources_dir, manifest):
    conll = (data_dir / "bc5cdr" / "test.conll").read_bytes()
    sources = docs_sources(manifest, "bc5cdr", "test")
    path = sources[0].path
    pmid, _ = _second_pubtator_document((sources_dir / sources[0].repository / sources[0].commit / path).read_bytes())
    with pytest.raises(NerbenchError) as caught:
        build_documents(
            "bc5cdr", "test", conll, sources, reader(sources_dir, lambda p, d: _second_pubtator_document(d)[1])
        )
    message = str(caught.value)
    assert message.startswith("bc5cdr/test: ") and f"abstract PMID {pmid} " in message, message
    assert "matches no run of whole sentences of test.conll at sentence" in message, message


def test_a_span_json_token_changed_is_an_error_naming_its_doc_key(data_dir, sources_dir, manifest):
    conll = (data_dir / "chemprot" / "dev.conll").read_bytes()

    def patch(path: str, data: bytes) -> bytes:
        first, rest = data.split(b"\n", 1)
        record = json.loads(first)
        record["sentences"][1][0] += "x"
        return json.dumps(record).encode() + b"\n" + rest

    with pytest.raises(
        NerbenchError, match=r"^chemprot/dev: doc_key \d+ \(dev.json line 1\): its sentence 2 has other"
    ):
        build_documents("chemprot", "dev", conll, docs_sources(manifest, "chemprot", "dev"), reader(sources_dir, patch))


def test_a_missing_source_is_an_error_naming_its_path(data_dir, sources_dir, manifest):
    conll = (data_dir / "chemprot" / "train.conll").read_bytes()
    sources = [s for s in docs_sources(manifest, "chemprot", "train") if not s.path.endswith("dev.json")]
    with pytest.raises(NerbenchError, match=r"chemprot/train: the document sources lack 'chemprot_data/processed_data"):
        build_documents("chemprot", "train", conll, sources, reader(sources_dir))


# ---------------------------------------------------------------------------- synthetic, no data needed

PUBTATOR = "original/CDR_TestSet.PubTator.txt"


def _conll(*sentences: str) -> bytes:
    return "\n".join("".join(f"{token}\tO\n" for token in sentence.split()) for sentence in sentences).encode()


def _build(pubtator: str, conll: bytes) -> str:
    source = Source("mahdi-khoshmaram/bc5cdr-xml-to-json-converter", "0" * 40, PUBTATOR)
    return build_documents("bc5cdr", "test", conll, [source], lambda s: pubtator.encode()).decode()


def _doc(pmid: str, title: str, abstract: str) -> str:
    return f"{pmid}|t|{title}\n{pmid}|a|{abstract}\n{pmid}\t0\t3\tabc\tDisease\tD1\n\n"


TWO = _doc("22", "Second title here.", "Its abstract text. Two sentences.") + _doc(
    "11", "First title here.", "Another abstract (with brackets)."
)


def test_synthetic_documents_match_in_any_order_whitespace_ignored():
    conll = _conll(
        "First title here .",
        "Another abstract ( with brackets ) .",
        "Second title here .",
        "Its abstract text .",
        "Two sentences .",
    )
    assert _build(TWO, conll) == "11\n11\n22\n22\n22\n"


def test_synthetic_second_identical_source_copy_may_be_absent_but_not_a_second_conll_copy():
    conll = _conll(
        "First title here .",
        "Another abstract ( with brackets ) .",
        "Second title here .",
        "Its abstract text .",
        "Two sentences .",
    )
    assert _build(TWO + _doc("11", "First title here.", "Another abstract (with brackets)."), conll) == (
        "11\n11\n22\n22\n22\n"
    )
    twice = conll + b"\n" + _conll("First title here .", "Another abstract ( with brackets ) .")
    with pytest.raises(NerbenchError, match=r"abstract PMID 11 .*2 runs of sentences .* lists it 1 time"):
        _build(TWO, twice)


def test_synthetic_a_run_that_is_not_whole_sentences_or_extra_sentences_are_errors():
    one = _doc("11", "First title here.", "Another abstract (with brackets).")
    split_inside = _conll("First title here .", "Another abstract ( with brackets ) . And more .")
    with pytest.raises(NerbenchError, match=r"abstract PMID 11 .* from sentence 1 but ends inside sentence 2"):
        _build(one, split_inside)
    extra = _conll(
        "First title here .",
        "Another abstract ( with brackets ) .",
        "Not in the source .",
        "Second title here .",
        "Its abstract text .",
        "Two sentences .",
    )
    with pytest.raises(NerbenchError, match=r"bc5cdr/test: no source abstract holds sentence 3 of test.conll"):
        _build(TWO, extra)
