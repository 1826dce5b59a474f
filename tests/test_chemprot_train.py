"""The ChemProt train split rebuilt from the original corpus (nerbench.builds.chemprot_train).

Built from the pinned public sources, the bytes equal the registered chemprot/train.conll exactly.
The sentence splitter also reproduces the registry's `reconstruction_validation`: its boundaries equal
those of the released span JSON for 267 of 327 dev and 630 of 800 test abstracts.

The source files are read from the shared sources folder (laid out `<owner>/<repo>/<commit>/<path>`):
`$NERBENCH_SOURCE_URL` when it is a file:// URL, else the sources folder beside the data folder. The tests that need it
skip without it. The synthetic tests need no data. Building takes about 1.5 s.
"""

import csv
import hashlib
import json
import os
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from nerbench.builds.chemprot_train import (
    Entity,
    build_train,
    convert_abstract,
    rebuild,
    split_sentences,
    tokenise,
)
from nerbench.datasets import Source
from nerbench.errors import NerbenchError

TRAIN_SHA256 = "5e454cf29e3c546b87988d18c80d0805d6314581175e7683e4eff84ef11d9983"

CORPUS = ("Aitslab/nlp_2021_alexander_petter", "1784721ed0b1fa1252f2359486f84e9b3514a6b3")
CORPUS_DIR = "utils/chemprot/chemprot"
RELEASED = ("bionlproc/end-to-end-ChemProt", "a42a0a1637d489c257a4eb36ee30aa0817c7718a")
RELEASED_DIR = "chemprot_data/processed_data/json"

SOURCES = (
    Source(*CORPUS, f"{CORPUS_DIR}/chemprot_training/chemprot_training_abstracts.tsv"),
    Source(*CORPUS, f"{CORPUS_DIR}/chemprot_training/chemprot_training_entities.tsv"),
    Source(*CORPUS, f"{CORPUS_DIR}/chemprot_development/chemprot_development_abstracts.tsv"),
    Source(*CORPUS, f"{CORPUS_DIR}/chemprot_development/chemprot_development_entities.tsv"),
    Source(*RELEASED, f"{RELEASED_DIR}/dev.json"),
)


@pytest.fixture(scope="module")
def sources_dir(data_dir: Path) -> Path:
    url = os.environ.get("NERBENCH_SOURCE_URL", "")
    candidates = [Path(unquote(urlparse(url).path))] if url.startswith("file://") else []
    candidates.append(data_dir.parent / "sources")  # ../shared/sources beside ../shared/data
    for candidate in candidates:
        if all((candidate / s.repository / s.commit / s.path).is_file() for s in SOURCES):
            return candidate
    pytest.skip(f"no ChemProt source files (looked in {', '.join(map(str, candidates))})")


def folder_reader(folder: Path):
    def read(source: Source) -> bytes:
        return (folder / source.repository / source.commit / source.path).read_bytes()

    return read


def test_the_rebuilt_train_split_equals_the_registered_file(sources_dir):
    data = build_train(SOURCES, folder_reader(sources_dir))
    assert hashlib.sha256(data).hexdigest() == TRAIN_SHA256
    assert len(data) == 3_494_578
    assert data.endswith(b"\tO\n") and not data.endswith(b"\n\n")


def test_the_conversion_counts_are_the_registrys(sources_dir):
    sentences, counts = rebuild(SOURCES, folder_reader(sources_dir))
    assert (counts.documents, counts.sentences, counts.tokens) == (1305, 13_090, 400_107)
    assert len(sentences) == 13_090
    assert counts.entities == 32_880
    assert counts.entities_dropped_by_alignment == 66  # "Entities dropped by alignment: 66."
    assert (counts.spans_labeled, counts.overlapping_spans_dropped) == (30_801, 2013)
    assert counts.per_type == {"CHEMICAL": 14_923, "GENE": 15_878}


def test_the_sources_may_come_in_any_order_and_among_others(sources_dir):
    extra = Source(*RELEASED, f"{RELEASED_DIR}/test.json")
    data = build_train([extra, *reversed(SOURCES)], folder_reader(sources_dir))
    assert hashlib.sha256(data).hexdigest() == TRAIN_SHA256


@pytest.mark.parametrize(
    ("abstracts", "released", "identical"),
    [
        (("chemprot_development/chemprot_development_abstracts.tsv",), "dev.json", 267),
        (("chemprot_test_gs/chemprot_test_abstracts_gs.tsv",), "test.json", 630),
    ],
)
def test_the_splitter_matches_the_released_sentences_as_the_registry_says(sources_dir, abstracts, released, identical):
    # reconstruction_validation: exact_with_rule_based_splitter (dev 267, test 630 of 800 abstracts).
    # dev.json's abstracts come from the training and development files.
    names = ("chemprot_training/chemprot_training_abstracts.tsv", *abstracts)
    texts: dict[str, str] = {}
    for name in names:
        path = sources_dir / CORPUS[0] / CORPUS[1] / CORPUS_DIR / name
        if not path.is_file():
            pytest.skip(f"{path} is missing")
        with path.open(encoding="utf-8", newline="") as handle:
            for pmid, title, abstract in csv.reader(handle, delimiter="\t"):
                texts[pmid] = title + " " + abstract
    same = total = 0
    lines = (sources_dir / RELEASED[0] / RELEASED[1] / RELEASED_DIR / released).read_text("utf-8").splitlines()
    for line in lines:
        document = json.loads(line)
        text = texts[document["doc_key"]]
        ours = [[token for token, _, _ in tokenise(text[start:end])] for start, end in split_sentences(text)]
        same += ours == document["sentences"]
        total += 1
    assert (same, total) == (identical, 800 if released == "test.json" else 327)


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        ("Effects of aspirin. The drug was given.", ["Effects of aspirin.", "The drug was given."]),
        (
            "Grown in E. coli cells. Then 37 degrees C. We saw it.",
            ["Grown in E. coli cells.", "Then 37 degrees C. We saw it."],
        ),
        ("As shown (e.g. Fig 2) and vs. Control. Done.", ["As shown (e.g. Fig 2) and vs. Control.", "Done."]),
        ("In studies. 1. The effects were small. 2. None.", ["In studies.", "1. The effects were small.", "2. None."]),
        (
            "Seen in cells. siRNA knockdown of it. body wt. or more.",
            ["Seen in cells.", "siRNA knockdown of it. body wt. or more."],
        ),
        ("Is it true? (2) Yes it is.", ["Is it true?", "(2) Yes it is."]),
        ('a "master clock." As such, it works.', ['a "master clock."', "As such, it works."]),
        # a heading without a colon stands alone; "RESULTS:" starts its sentence
        (
            "Of diabetes. OBJECTIVE Recent data. RESULTS: At base.",
            ["Of diabetes.", "OBJECTIVE", "Recent data.", "RESULTS: At base."],
        ),
        ("In 15 min. RESULTS Following it.", ["In 15 min. RESULTS", "Following it."]),
        ("Bound to (PDE10A). cDNA encoding it.", ["Bound to (PDE10A). cDNA encoding it."]),
    ],
)
def test_the_sentence_splitter(text, sentences):
    assert [text[start:end] for start, end in split_sentences(text)] == sentences


def test_tokens_split_words_into_letters_digits_and_other_characters():
    tokens = tokenise("Na+Cl- α-MeDA 5-HT(2A)")
    assert [t for t, _, _ in tokens] == ["Na", "+", "Cl", "-", "α", "-", "MeDA", "5", "-", "HT", "(", "2", "A", ")"]
    assert tokens[4][1:] == (7, 8)


def test_entities_must_fall_on_token_boundaries_and_inside_one_sentence():
    text = "Aspirin\u00a0inhibits COX-2. Then Na+ rose. In mice."
    entities = [
        Entity("T1", "CHEMICAL", 0, 7, "Aspirin"),
        Entity("T2", "GENE-Y", 17, 22, "COX-2"),
        Entity("T3", "GENE-N", 17, 20, "COX"),  # nested in T2: the longer span wins
        Entity("T4", "CHEMICAL", 29, 31, "Na"),
        Entity("T5", "CHEMICAL", 18, 20, "OX"),  # not on a token start: dropped
        Entity("T6", "CHEMICAL", 20, 30, "-2. Then N"),  # crosses a sentence: dropped
    ]
    sentences = convert_abstract(text, entities)
    assert [s.tokens for s in sentences] == [
        ("Aspirin", "inhibits", "COX", "-", "2", "."),
        ("Then", "Na", "+", "rose", "."),
        ("In", "mice", "."),
    ]
    assert sentences[0].tags == ("B-CHEMICAL", "O", "B-GENE", "I-GENE", "I-GENE", "O")
    assert sentences[1].tags == ("O", "B-CHEMICAL", "O", "O", "O")


def synthetic_reader(abstracts: str, entities: str, dev_keys: list[str]):
    files = {
        "chemprot_training_abstracts.tsv": abstracts,
        "chemprot_training_entities.tsv": entities,
        "chemprot_development_abstracts.tsv": "3\tKept title.\tKept text.\n",
        "chemprot_development_entities.tsv": "",
        "dev.json": "".join(json.dumps({"doc_key": key, "sentences": []}) + "\n" for key in dev_keys),
    }

    def read(source: Source) -> bytes:
        return files[source.path.rsplit("/", 1)[1]].encode("utf-8")

    return read


def test_offsets_after_quotes_the_csv_reader_drops_are_moved_with_the_text():
    # As in PMID 23194825: the abstract starts with a quoted word, which the csv reader unquotes.
    abstracts = '1\tOn "ecstasy" use.\t"Ecstasy" (MDMA) is abused.\n2\tLeft out.\tText.\n'
    # Offsets count in the raw line: T2 starts after the dropped quote, T3 after both.
    entities = "1\tT1\tCHEMICAL\t4\t11\tecstasy\n1\tT2\tCHEMICAL\t19\t26\tEcstasy\n1\tT3\tCHEMICAL\t29\t33\tMDMA\n"
    sentences, counts = rebuild(SOURCES, synthetic_reader(abstracts, entities, ["2"]))
    assert [" ".join(s.tokens) for s in sentences] == [
        'On " ecstasy " use .',
        "Ecstasy ( MDMA ) is abused .",
        "Kept title .",
        "Kept text .",
    ]
    assert sentences[0].tags == ("O", "O", "B-CHEMICAL", "O", "O", "O")
    assert sentences[1].tags == ("B-CHEMICAL", "O", "B-CHEMICAL", "O", "O", "O", "O")
    assert (counts.documents, counts.entities_dropped_by_alignment) == (2, 0)


@pytest.mark.parametrize("missing", range(len(SOURCES)))
def test_a_missing_source_is_an_error_naming_it(missing):
    sources = [s for i, s in enumerate(SOURCES) if i != missing]
    name = SOURCES[missing].path.rsplit("/", 1)[1]
    with pytest.raises(NerbenchError, match=name):
        build_train(sources, synthetic_reader("", "", []))


def test_a_dev_key_outside_the_pool_is_an_error():
    with pytest.raises(NerbenchError, match="doc_keys are not among"):
        build_train(SOURCES, synthetic_reader("1\tT.\tA.\n", "", ["99"]))
