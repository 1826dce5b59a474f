"""The generative answer format and its parser: hand-written answers with exact tags and counts."""

from hypothesis import given, settings
from hypothesis import strategies as st

from nerbench.models.generative import ParseCounts, build_prompt, parse_generation, target_text

LABELS = ("O", "B-Chemical", "I-Chemical", "B-Disease", "I-Disease")
TOKENS = ["Naloxone", "reverses", "clonidine", "hypotension", "."]
GOLD = ["B-Chemical", "O", "B-Chemical", "B-Disease", "O"]


def counts(**kw) -> dict:
    return ParseCounts(sentences=1, **kw).to_dict()


def parse(text, tokens=TOKENS):
    return parse_generation(text, tokens, LABELS)


def test_prompt_is_the_papers_alpaca_format():
    prompt = build_prompt(["Aspirin", "helps", "."], ["Chemical", "Disease"])
    assert prompt == (
        "Below is an instruction that describes a task, paired with an input that provides further "
        "context. Write a response that appropriately completes the request.\n\n"
        "### Instruction:\nYour task is to identify entities within the text and apply the BIO "
        "labeling scheme. Use the following labels to categorize each entity: Chemical, Disease.\n\n"
        "### Input:\nAspirin helps .\n\n### Response:\n"
    )
    assert target_text(["Aspirin", "helps"], ["B-Chemical", "O"]) == "Aspirin:B-Chemical\nhelps:O\n"


def test_perfect_output():
    r = parse(target_text(TOKENS, GOLD))
    assert r.tags == GOLD
    assert r.counts.to_dict() == counts(lines=5, matched=5)


def test_missing_line_in_the_middle_resynchronises():
    text = "Naloxone:B-Chemical\nclonidine:B-Chemical\nhypotension:B-Disease\n.:O\n"
    r = parse(text)
    assert r.tags == GOLD  # 'reverses' gets O, which is also its gold tag
    assert r.counts.to_dict() == counts(lines=4, matched=4, missing=1)


def test_extra_line_is_dropped():
    text = "Naloxone:B-Chemical\nreverses:O\nthe:O\nclonidine:B-Chemical\nhypotension:B-Disease\n.:O\n"
    r = parse(text)
    assert r.tags == GOLD
    assert r.counts.to_dict() == counts(lines=6, matched=5, extra=1)


def test_renamed_token_keeps_its_tag():
    text = "naloxone:B-Chemical\nreverses:O\nclonidin:B-Chemical\nhypotension:B-Disease\n.:O\n"
    r = parse(text)
    assert r.tags == GOLD
    assert r.counts.to_dict() == counts(lines=5, matched=3, renamed=2)


def test_swapped_lines_count_as_missing_and_extra_not_two_renames():
    tokens = ["A", "B", "C"]
    r = parse_generation("A:O\nC:B-Chemical\nB:B-Disease\n", tokens, LABELS)
    assert r.tags == ["O", "O", "B-Chemical"]
    assert r.counts.to_dict() == counts(lines=3, matched=2, missing=1, extra=1)


def test_spaces_around_token_and_tag_are_accepted_and_counted():
    text = "Naloxone : B-Chemical\nreverses:O\nclonidine:\tB-Chemical \nhypotension:B-Disease\n.:O\n"
    r = parse(text)
    assert r.tags == GOLD
    assert r.counts.to_dict() == counts(lines=5, matched=5, spaced=2)


def test_unicode_tokens():
    tokens = ["α-tocopherol", "and", "Δ9-THC", "–", "naïve"]
    tags = ["B-Chemical", "O", "B-Chemical", "O", "O"]
    r = parse_generation(target_text(tokens, tags), tokens, LABELS)
    assert r.tags == tags and r.counts.matched == 5
    # an ASCII-fied word is renamed, not lost
    r = parse_generation(target_text(["a-tocopherol", *tokens[1:]], tags), tokens, LABELS)
    assert r.tags == tags
    assert r.counts.to_dict() == counts(lines=5, matched=4, renamed=1)


def test_colons_inside_tokens_split_on_the_last_one():
    tokens = ["ratio", "1:2", ":", "IL-2:IL-4"]
    tags = ["O", "O", "O", "B-Chemical"]
    text = target_text(tokens, tags)
    assert text == "ratio:O\n1:2:O\n::O\nIL-2:IL-4:B-Chemical\n"
    r = parse_generation(text, tokens, LABELS)
    assert r.tags == tags
    assert r.counts.to_dict() == counts(lines=4, matched=4)


def test_truncated_generation():
    # the budget ran out inside the fourth line
    text = "Naloxone:B-Chemical\nreverses:O\nclonidine:B-Chemical\nhypoten"
    r = parse(text)
    assert r.tags == ["B-Chemical", "O", "B-Chemical", "O", "O"]
    assert r.counts.to_dict() == counts(lines=4, matched=3, malformed=1, missing=2, truncated=1)


def test_stopping_early_leaves_the_last_words_missing_not_earlier_repeats():
    tokens = ["A", "B", "A"]
    r = parse_generation("A:B-Chemical\n", tokens, LABELS)
    assert r.tags == ["B-Chemical", "O", "O"]
    assert r.counts.to_dict() == counts(lines=1, matched=1, missing=2, truncated=1)


def test_labels_outside_the_set_become_O():
    text = "Naloxone:B-Drug\nreverses:O\nclonidine:b-chemical\nhypotension:B-Disease\n.:O\n"
    r = parse(text)
    assert r.tags == ["O", "O", "O", "B-Disease", "O"]
    assert r.counts.to_dict() == counts(lines=5, matched=5, unknown_tag=2)


def test_malformed_lines():
    text = "Naloxone B-Chemical\nreverses:O\nclonidine:\nhypotension:B-Disease\n.:O\n"
    r = parse(text)
    assert r.tags == ["O", "O", "O", "B-Disease", "O"]
    assert r.counts.to_dict() == counts(lines=5, matched=3, malformed=2, missing=2)


def test_blank_lines_inside_are_counted_trailing_ones_are_not():
    text = "\nNaloxone:B-Chemical\nreverses:O\n\nclonidine:B-Chemical\nhypotension:B-Disease\n.:O\n\n\n"
    r = parse(text)
    assert r.tags == GOLD
    assert r.counts.to_dict() == counts(lines=5, matched=5, blank=2)


def test_crlf_line_ends():
    r = parse(target_text(TOKENS, GOLD).replace("\n", "\r\n"))
    assert r.tags == GOLD and r.counts.to_dict() == counts(lines=5, matched=5)


def test_empty_output():
    r = parse("")
    assert r.tags == ["O"] * 5
    assert r.counts.to_dict() == counts(missing=5, truncated=1, empty=1)
    r = parse("  \n\n")
    assert r.counts.empty == 1 and r.counts.blank == 0


def test_empty_sentence_makes_every_line_extra():
    r = parse_generation("a:O\n", [], LABELS)
    assert r.tags == [] and r.counts.to_dict() == counts(lines=1, extra=1)


def test_ill_formed_iob_is_returned_as_written():
    r = parse("Naloxone:I-Chemical\nreverses:O\nclonidine:O\nhypotension:I-Disease\n.:O\n")
    assert r.tags == ["I-Chemical", "O", "O", "I-Disease", "O"]


def test_counts_add_up():
    a = parse("Naloxone:B-Chemical\n").counts
    b = parse(target_text(TOKENS, GOLD)).counts
    total = a + b
    assert total.sentences == 2 and total.matched == 6 and total.missing == 4 and total.truncated == 1


_word = st.sampled_from(["A", "B", "the", ":", "1:2", "α", "x y", ""])
_line = st.one_of(
    st.builds(lambda w, t: f"{w}:{t}", _word, st.sampled_from([*LABELS, "B-X", " O", ""])),
    st.sampled_from(["", "garbage", "  ", "::", "A : O"]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_word.filter(bool), max_size=8), st.lists(_line, max_size=12))
def test_invariants_on_arbitrary_output(tokens, lines):
    r = parse_generation("\n".join(lines), tokens, LABELS)
    c = r.counts
    assert len(r.tags) == len(tokens) and set(r.tags) <= set(LABELS)
    assert c.matched + c.renamed + c.missing == len(tokens)
    assert c.matched + c.renamed + c.extra + c.malformed == c.lines
    assert c.unknown_tag <= c.matched + c.renamed
    assert c.truncated <= min(1, c.missing) and c.empty <= 1
    if c.empty:
        assert c.missing == len(tokens)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_word.filter(bool), st.sampled_from(LABELS)), max_size=10))
def test_the_gold_answer_always_parses_back_exactly(pairs):
    tokens, tags = [p[0] for p in pairs], [p[1] for p in pairs]
    r = parse_generation(target_text(tokens, tags), tokens, LABELS)
    assert r.tags == tags
    assert r.counts.matched == len(tokens) and r.counts.lines == len(tokens)
