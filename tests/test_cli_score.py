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
    assert "strict F1 50.00" in result.output and "long-entity F1 0.00" in result.output


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
