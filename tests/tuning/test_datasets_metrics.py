"""Devsets in every accepted form, and the metrics (built-in and kernel callables)."""

from __future__ import annotations

import json

import pytest

from dspex_jupyter import load_dataset
from dspex_jupyter.errors import ValidationError
from dspex_jupyter.tuning import contains, exact_match, f1
from dspex_jupyter.tuning.metrics import normalize, resolve_metric

ROWS = [{"question": "2+2?", "answer": "4"}, {"question": "Capital of France?", "answer": "Paris"}]


def _check(data):
    assert len(data) == 2
    assert data.input_keys == ("question",)
    assert data[1].inputs == {"question": "Capital of France?"}
    assert data[1].expected == {"answer": "Paris"}
    assert data.expected_keys == ("answer",)


def test_list_of_dicts():
    _check(load_dataset(ROWS, inputs=["question"]))


def test_without_inputs_every_key_is_kept_for_the_program_to_split():
    data = load_dataset(ROWS)
    assert data.input_keys == () and data[0].expected == ROWS[0]
    _check(load_dataset(data, inputs=["question"]))


def test_dataframe():
    import pandas

    _check(load_dataset(pandas.DataFrame(ROWS), inputs=["question"]))


def test_dspy_examples_use_their_marked_inputs():
    import dspy

    examples = [dspy.Example(**r).with_inputs("question") for r in ROWS]
    _check(load_dataset(examples))


def test_jsonl_and_csv(tmp_path):
    jsonl = tmp_path / "dev.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in ROWS) + "\n\n")
    _check(load_dataset(jsonl, inputs=["question"]))
    csv_path = tmp_path / "dev.csv"
    csv_path.write_text('question,answer\n2+2?,4\n"Capital of France?",Paris\n')
    _check(load_dataset(str(csv_path), inputs=["question"]))


def test_a_row_missing_an_input_is_named():
    with pytest.raises(ValidationError, match=r"row 1 lacks the input field\(s\) \['question'\]"):
        load_dataset([ROWS[0], {"answer": "x"}], inputs=["question"])


def test_bad_lines_and_files_are_named(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(ROWS[0]) + "\n{not json\n")
    with pytest.raises(ValidationError, match="bad.jsonl line 2 is not valid JSON"):
        load_dataset(bad)
    listy = tmp_path / "list.jsonl"
    listy.write_text("[1, 2]\n")
    with pytest.raises(ValidationError, match="list.jsonl line 1 is not a mapping"):
        load_dataset(listy)
    short = tmp_path / "short.csv"
    short.write_text("question,answer\nonly one cell\n")
    with pytest.raises(ValidationError, match="short.csv line 2 has not as many cells"):
        load_dataset(short)
    jsonl = tmp_path / "dev.jsonl"
    jsonl.write_text(json.dumps(ROWS[0]) + "\n" + json.dumps({"answer": "x"}) + "\n")
    with pytest.raises(ValidationError, match="dev.jsonl line 2 lacks the input"):
        load_dataset(jsonl, inputs=["question"])
    with pytest.raises(ValidationError, match="cannot read the dataset"):
        load_dataset(tmp_path / "missing.jsonl")
    with pytest.raises(ValidationError, match=r"must be \.jsonl or \.csv"):
        load_dataset(tmp_path / "dev.txt")


@pytest.mark.parametrize("bad", [42, {"question": "x"}, ["not a row"], [{1: "x"}]])
def test_not_a_dataset(bad):
    with pytest.raises(ValidationError):
        load_dataset(bad)


def test_exact_match_normalizes_case_and_whitespace_only():
    metric = exact_match().bind(["answer"])
    assert metric({"answer": "  New   York "}, {"answer": "new york"}) == 1.0
    assert metric({"answer": "New York"}, {"answer": "New York."}) == 0.0
    assert metric({"answer": 4}, {"answer": "4"}) == 1.0
    assert normalize("A\tB\n c") == "a b c"


def test_contains_and_f1():
    assert contains().bind(["answer"])({"answer": "paris"}, {"answer": "It is Paris."}) == 1.0
    assert contains().bind(["answer"])({"answer": "Rome"}, {"answer": "Paris"}) == 0.0
    score = f1().bind(["answer"])({"answer": "the cat sat"}, {"answer": "The cat ran"})
    assert score == pytest.approx(2 / 3)
    assert f1().bind(["answer"])({"answer": "x"}, {"answer": ""}) == 0.0


def test_field_is_required_with_several_expected_fields_and_checked():
    with pytest.raises(ValidationError, match="needs field="):
        resolve_metric("exact_match").bind(["a", "b"])
    with pytest.raises(ValidationError, match="'c' is not an expected field"):
        resolve_metric("f1", field="c").bind(["a", "b"])
    assert resolve_metric("f1", field="b").bind(["a", "b"]).field == "b"


def test_callable_metrics_and_bad_ones():
    metric = resolve_metric(lambda example, outputs: outputs["n"] > example["min"])
    assert metric({"min": 1}, {"n": 2}) == 1.0
    with pytest.raises(ValidationError, match="returned 3"):
        resolve_metric(lambda e, o: 3)({}, {})
    with pytest.raises(ValidationError, match="unknown metric 'bleu'"):
        resolve_metric("bleu")
    with pytest.raises(ValidationError, match="a metric is a built-in name or a callable"):
        resolve_metric(3)
    with pytest.raises(ValidationError, match="produced no 'answer' output"):
        exact_match("answer")({"answer": "x"}, {"other": "x"})
