"""`nerbench score` and `nerbench compare` through the real command line."""

import json

import pytest
from typer.testing import CliRunner

import nerbench.cli as cli

runner = CliRunner()


@pytest.fixture(scope="module", autouse=True)
def _commands():
    cli._register()


def write(path, sentences):
    path.write_text("\n\n".join("\n".join(f"{t}\t{g}" for t, g in s) for s in sentences) + "\n", encoding="utf-8")
    return path


GOLD = [
    [("Aspirin", "B-Chemical"), ("causes", "O"), ("renal", "B-Disease"), ("failure", "I-Disease")],
    [("No", "O"), ("effect", "O")],
]
PRED = [
    [("Aspirin", "B-Chemical"), ("causes", "O"), ("renal", "O"), ("failure", "I-Disease")],
    [("No", "O"), ("effect", "O")],
]


def test_score_json(tmp_path):
    gold, pred = write(tmp_path / "gold.conll", GOLD), write(tmp_path / "pred.conll", PRED)
    result = runner.invoke(cli.app, ["score", str(gold), str(pred), "--json", "--bootstrap", "100"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["strict"] == {"tp": 1.0, "n_pred": 2, "n_gold": 2, "precision": 0.5, "recall": 0.5, "f1": 0.5}
    assert out["partial"]["f1"] == pytest.approx(0.75)
    assert out["ill_formed"] == {"gold": 0, "pred": 1}
    assert set(out["per_type"]) == {"Chemical", "Disease"}
    assert set(out["per_length"]) == {"1", "2", "3+"}
    low, high = out["ci95"]["f1"]
    assert 0 <= low <= high <= 1


def test_score_table(tmp_path):
    gold, pred = write(tmp_path / "gold.conll", GOLD), write(tmp_path / "pred.conll", PRED)
    result = runner.invoke(cli.app, ["score", str(gold), str(pred)])
    assert result.exit_code == 0, result.output
    # Fractions, as the store, the site and the README print them (never percentages).
    assert "strict F1 0.5000" in result.output and "long-entity F1 0.0000" in result.output
    assert "50.00" not in result.output


def test_token_mismatch_names_sentence_and_token(tmp_path, capsys):
    gold = write(tmp_path / "gold.conll", GOLD)
    bad = [GOLD[0], [("No", "O"), ("effects", "O")]]
    pred = write(tmp_path / "pred.conll", bad)
    result = runner.invoke(cli.app, ["score", str(gold), str(pred)])
    assert result.exit_code != 0
    message = str(result.exception)
    assert "pred.conll:7: sentence 2, token 2 is 'effects'" in message and "gold.conll:7 has 'effect'" in message


def test_sentence_count_and_length_mismatch(tmp_path):
    gold = write(tmp_path / "gold.conll", GOLD)
    short = write(tmp_path / "short.conll", GOLD[:1])
    result = runner.invoke(cli.app, ["score", str(gold), str(short)])
    assert "1 sentences, but" in str(result.exception)
    longer = write(tmp_path / "longer.conll", [GOLD[0], GOLD[1] + [("here", "O")]])
    result = runner.invoke(cli.app, ["score", str(gold), str(longer)])
    assert "sentence 2 has 3 tokens" in str(result.exception)


def test_main_prints_one_line_error(tmp_path, monkeypatch, capsys):
    gold = write(tmp_path / "gold.conll", GOLD)
    monkeypatch.setattr("sys.argv", ["nerbench", "score", str(gold), str(tmp_path / "missing.conll")])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "missing.conll: file not found" in err and "Traceback" not in err


def test_compare_files(tmp_path):
    gold = write(tmp_path / "gold.conll", GOLD * 30)
    same = write(tmp_path / "same.conll", GOLD * 30)
    worse = write(tmp_path / "worse.conll", PRED * 30)
    result = runner.invoke(cli.app, ["compare", str(gold), str(same), str(worse), "--json", "--resamples", "500"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["f1_a"] == 1.0 and out["f1_b"] == 0.5 and out["delta"] == 0.5
    assert out["p_value"] < 0.01


def test_score_and_compare_use_a_sidecar_beside_gold(tmp_path):
    gold = write(tmp_path / "gold.conll", GOLD * 6)
    pred = write(tmp_path / "pred.conll", PRED * 6)
    args = ["score", str(gold), str(pred), "--json", "--bootstrap", "50"]
    out = json.loads(runner.invoke(cli.app, args).output)
    assert out["bootstrap"] == {"resamples": 50, "seed": 0, "unit": "sentence", "units": 12}
    (tmp_path / "gold.docs").write_text("".join(f"doc{i // 4}\n" for i in range(12)), encoding="utf-8")
    out = json.loads(runner.invoke(cli.app, args).output)
    assert out["bootstrap"] == {"resamples": 50, "seed": 0, "unit": "document", "units": 3}
    result = runner.invoke(cli.app, ["score", str(gold), str(pred)])
    assert result.exit_code == 0, result.output
    assert "1000 resamples of 3 documents" in result.output

    result = runner.invoke(cli.app, ["compare", str(gold), str(gold), str(pred), "--resamples", "200"])
    assert result.exit_code == 0, result.output
    assert "(approximate randomization over 3 documents, 200 rounds)" in result.output
    assert "seeds:" not in result.output
    # The sides are named by their files, the scores are fractions.
    lines = result.output.splitlines()
    assert f"  {gold}: 1.0000" in lines and f"  {pred}: 0.5000" in lines
    assert f"  difference {gold} − {pred}: 0.5000 (95% CI" in result.output


def test_score_with_a_dataset_refuses_labels_outside_its_set(tmp_path):
    """Old code scored 'B-Chemicals' as an entity type of its own: macro F1 halved without a word."""
    gold = write(tmp_path / "gold.conll", GOLD)
    typo = [[("Aspirin", "B-Chemicals"), ("causes", "O"), ("renal", "B-Disease"), ("failure", "I-Disease")], GOLD[1]]
    pred = write(tmp_path / "pred.conll", typo)
    result = runner.invoke(cli.app, ["score", str(gold), str(pred), "--dataset", "bc5cdr"])
    assert result.exit_code != 0
    assert f"{pred}:1: tag 'B-Chemicals' is not one of bc5cdr's labels" in str(result.exception)
    result = runner.invoke(cli.app, ["score", str(gold), str(pred), "--dataset", "ncbi_disease"])
    assert f"{gold}:1: tag 'B-Chemical' is not one of ncbi_disease's labels" in str(result.exception)
    result = runner.invoke(cli.app, ["score", str(gold), str(gold), "--dataset", "bc5cdr", "--json"])
    assert result.exit_code == 0, result.output
    assert list(json.loads(result.output)["per_type"]) == ["Chemical", "Disease"]  # the dataset's order
    # Without --dataset the file is scored as it is (types are whatever the files hold).
    result = runner.invoke(cli.app, ["score", str(gold), str(pred), "--json"])
    assert result.exit_code == 0 and "Chemicals" in json.loads(result.output)["per_type"]


def test_docs_option_names_the_sidecar(tmp_path):
    gold = write(tmp_path / "gold.conll", GOLD * 3)
    pred = write(tmp_path / "pred.conll", PRED * 3)
    docs = tmp_path / "elsewhere.txt"
    docs.write_text("a\na\nb\nb\nc\nc\n", encoding="utf-8")
    result = runner.invoke(cli.app, ["score", str(gold), str(pred), "--json", "--docs", str(docs)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["bootstrap"]["units"] == 3
    result = runner.invoke(cli.app, ["compare", str(gold), str(gold), str(pred), "--json", "--docs", str(docs)])
    assert result.exit_code == 0, result.output
    assert (json.loads(result.output)["unit"], json.loads(result.output)["units"]) == ("document", 3)

    docs.write_text("a\na\nb\n", encoding="utf-8")
    result = runner.invoke(cli.app, ["score", str(gold), str(pred), "--docs", str(docs)])
    assert result.exit_code != 0
    assert f"{docs}:4: 3 lines, but {gold} has 6 sentences" in str(result.exception)


def test_help_says_where_documents_come_from():
    for command in ("score", "compare"):
        result = runner.invoke(cli.app, [command, "--help"], env={"COLUMNS": "200", "TERM": "dumb"})
        assert result.exit_code == 0
        text = " ".join(result.output.split())
        assert "--docs" in text and "<stem>.docs beside it" in text


# ------------------------------------------------------------------ file-derived text is never markup or control

# Entity types and file names come from the files scored: rich markup that would raise or vanish,
# terminal controls, bidi overrides.
HOSTILE = ["[/x]", "[bold]x[/bold]", "\x1b[31mred\x1b[0m", "\x9bC1", "x\u202ey", "\u2066a\u2069", ":thumbs_up:"]


@pytest.mark.parametrize("hostile", HOSTILE, ids=[f"hostile{i}" for i in range(len(HOSTILE))])
def test_score_table_prints_entity_types_and_file_names_as_text(tmp_path, hostile):
    from nerbench.safe_text import UNSAFE_RE, shown

    sentences = [[("Aspirin", f"B-{hostile}"), ("works", "O")]]
    gold = write(tmp_path / "gold.conll", sentences)
    name = hostile.replace("/", "_")  # a file name has no '/'
    pred = write(tmp_path / f"pred{name}.conll", sentences)
    result = runner.invoke(cli.app, ["score", str(gold), str(pred), "--bootstrap", "10"])
    assert result.exit_code == 0, (result.exception, result.output)
    assert not UNSAFE_RE.search(result.output.replace("\n", "")), ascii(result.output)
    assert f"strict, type {shown(hostile)}" in result.output
    assert f"pred{shown(name)}.conllagainst" in "".join(result.output.split())  # the title may wrap


@pytest.mark.parametrize("hostile", HOSTILE, ids=[f"hostile{i}" for i in range(len(HOSTILE))])
def test_main_prints_errors_about_hostile_names_as_text(tmp_path, monkeypatch, capsys, hostile):
    from nerbench.safe_text import UNSAFE_RE, shown

    gold = write(tmp_path / "gold.conll", GOLD)
    missing = tmp_path / f"missing{hostile.replace('/', '_')}.conll"
    monkeypatch.setattr("sys.argv", ["nerbench", "score", str(gold), str(missing)])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and not UNSAFE_RE.search(err.replace("\n", "")), ascii(err)
    assert f"error: {shown(missing)}: file not found" in " ".join(err.split("\n"))
