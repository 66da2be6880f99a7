"""Property tests for every variable type and constraint (the code both backends share)."""

from __future__ import annotations

import math

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from dspex_jupyter.errors import ValidationError
from dspex_jupyter.state.local import LocalState
from dspex_jupyter.variables import parse
from dspex_jupyter.variables.record import to_json_value
from dspex_jupyter.variables.table import VariableTable, define

finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
not_numbers = st.one_of(st.text(), st.booleans(), st.none(), st.lists(st.integers(), max_size=2))


def accepts(type_name, value, constraints=None):
    """Register with a valid initial, then set `value`: return what was stored."""
    state = LocalState()
    record, validator = define("v", type_name, value, constraints=constraints)
    state.register("v", type_name, value, constraints=constraints)
    assert state.set("v", value).value == record.value == validator(value)
    return record.value


def rejects(type_name, initial, value, constraints=None):
    """A bad write raises ValidationError and leaves the variable exactly as it was."""
    state = LocalState()
    state.register("v", type_name, initial, constraints=constraints)
    before = state.get("v")
    with pytest.raises(ValidationError):
        state.set("v", value)
    assert state.get("v") == before


# --------------------------------------------------------------------------- float


@given(lo=finite, span=st.floats(0, 1e6), frac=st.floats(0, 1))
def test_float_in_bounds_accepted(lo, span, frac):
    hi = lo + span
    assume(math.isfinite(hi))
    value = min(max(lo + span * frac, lo), hi)
    assert accepts("float", value, {"min": lo, "max": hi}) == value


@given(lo=st.floats(-1e6, 1e6), excess=st.floats(1e-3, 1e6))
def test_float_out_of_bounds_rejected(lo, excess):
    constraints = {"min": lo, "max": lo + 1}
    rejects("float", lo, lo + 1 + excess, constraints)
    rejects("float", lo, lo - excess, constraints)


@given(value=st.integers(-(10**12), 10**12))
def test_int_becomes_float(value):
    stored = accepts("float", value)
    assert type(stored) is float and stored == float(value)


@given(value=not_numbers)
def test_float_rejects_non_numbers(value):
    rejects("float", 0.0, value)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_float_rejects_non_finite(value):
    rejects("float", 0.0, value)


# --------------------------------------------------------------------------- int


@given(lo=st.integers(-1000, 1000), span=st.integers(0, 1000), data=st.data())
def test_int_range(lo, span, data):
    hi = lo + span
    inside = data.draw(st.integers(lo, hi))
    assert accepts("int", inside, {"min": lo, "max": hi}) == inside
    rejects("int", lo, hi + data.draw(st.integers(1, 100)), {"min": lo, "max": hi})


@given(value=st.one_of(finite, st.booleans(), st.text()))
def test_int_rejects_floats_bools_and_text(value):
    rejects("int", 0, value)


# --------------------------------------------------------------------------- str


@given(value=st.text(max_size=50), shortest=st.integers(0, 10), longest=st.integers(10, 40))
def test_str_lengths(value, shortest, longest):
    constraints = {"min_length": shortest, "max_length": longest}
    initial = "x" * shortest
    if shortest <= len(value) <= longest:
        assert accepts("str", value, constraints) == value
    else:
        rejects("str", initial, value, constraints)


@given(value=st.from_regex(r"[a-z]+-[0-9]{2}", fullmatch=True))
def test_str_pattern(value):
    constraints = {"pattern": r"[a-z]+-[0-9]{2}"}
    assert accepts("str", value, constraints) == value
    rejects("str", "ab-12", value + "!", constraints)


@given(value=st.one_of(st.integers(), finite, st.booleans(), st.none()))
def test_str_rejects_non_text(value):
    rejects("str", "", value)


# --------------------------------------------------------------------------- bool


def test_bool_is_strict():
    assert accepts("bool", True) is True
    for value in (0, 1, "true", None, 1.0):
        rejects("bool", False, value)


# --------------------------------------------------------------------------- choice / module

scalars = st.one_of(st.text(max_size=8), st.integers(-5, 5), st.booleans())


@given(
    choices=st.lists(scalars, min_size=1, max_size=6, unique_by=lambda c: (type(c), c)),
    data=st.data(),
)
def test_choice(choices, data):
    constraints = {"choices": choices}
    picked = data.draw(st.sampled_from(choices))
    assert accepts("choice", picked, constraints) == picked
    other = data.draw(scalars)
    if (type(other), other) not in {(type(c), c) for c in choices}:
        rejects("choice", choices[0], other, constraints)


def test_choice_does_not_confuse_true_and_one():
    rejects("choice", 1, True, {"choices": [1, 2]})
    rejects("choice", True, 1, {"choices": [True, False]})


def test_choice_constraints_checked():
    for bad in (None, [], "ab", [1, 1], [[1]]):
        with pytest.raises(ValidationError):
            define("v", "choice", 1, constraints={"choices": bad})


def test_module():
    assert accepts("module", "ChainOfThought") == "ChainOfThought"
    constraints = {"choices": ["Predict", "ChainOfThought"]}
    rejects("module", "Predict", "ReAct", constraints)
    rejects("module", "Predict", "")


# --------------------------------------------------------------------------- embedding / tensor


@given(vector=st.lists(finite, min_size=1, max_size=16))
def test_embedding(vector):
    constraints = {"dimensions": len(vector)}
    assert accepts("embedding", vector, constraints) == tuple(float(x) for x in vector)
    rejects("embedding", vector, vector + [1.0], constraints)
    rejects("embedding", vector, [True] * len(vector), constraints)


@given(rows=st.integers(1, 4), cols=st.integers(1, 4), data=st.data())
def test_tensor_shape(rows, cols, data):
    grid = [[data.draw(finite) for _ in range(cols)] for _ in range(rows)]
    constraints = {"shape": [rows, None]}
    assert to_json_value(accepts("tensor", grid, constraints)) == grid
    rejects("tensor", grid, grid + [[0.0] * (cols + 1)], {"shape": [None, None]})
    rejects("tensor", grid, [[0.0] * cols] * (rows + 1), {"shape": [rows, cols]})


def test_tensor_must_be_rectangular():
    for ragged in ([[1, 2], [3]], [3, [1, 2]], [[1, 2], 3], [["a"]]):
        rejects("tensor", [[0.0]], ragged)


def test_tensor_accepts_tolist_objects():
    class ArrayLike:
        def tolist(self):
            return [[1, 2], [3, 4]]

    assert accepts("tensor", ArrayLike(), {"shape": [2, 2]}) == ((1.0, 2.0), (3.0, 4.0))


# --------------------------------------------------------------------------- definitions


@pytest.mark.parametrize(
    "type_,constraints",
    [
        ("float", {"min": 2, "max": 1}),
        ("float", {"min": "0"}),
        ("int", {"max": float("inf")}),
        ("str", {"pattern": "("}),
        ("str", {"min_length": 5, "max_length": 1}),
        ("embedding", {"dimensions": -1}),
        ("tensor", {"shape": "2x2"}),
        ("bool", {"min": 0}),
        ("float", ["min", 0]),
    ],
)
def test_inconsistent_constraints_rejected(type_, constraints):
    with pytest.raises(ValidationError):
        define("v", type_, None, constraints=constraints)


def test_python_types_accepted_as_type_names():
    assert define("v", float, 1)[0].type == "float"
    assert define("v", bool, True)[0].type == "bool"


# --------------------------------------------------------------------------- parse


@given(value=finite)
def test_parse_float_round_trip(value):
    assert parse("float", repr(value)) == value


@pytest.mark.parametrize(
    "type_,text,expected",
    [
        ("int", " 42 ", 42),
        ("bool", "True", True),
        ("bool", "off", False),
        ("str", "'quoted'", "quoted"),
        ("choice", "gpt-4", "gpt-4"),
        ("choice", "3", 3),
        ("embedding", "[1, 2.5]", [1, 2.5]),
    ],
)
def test_parse(type_, text, expected):
    assert parse(type_, text) == expected


@pytest.mark.parametrize("type_,text", [("float", "hot"), ("int", "1.5"), ("bool", "maybe")])
def test_parse_errors_are_validation_errors(type_, text):
    with pytest.raises(ValidationError, match=type_):
        parse(type_, text)


# --------------------------------------------------------------------------- snapshots


@given(
    values=st.dictionaries(
        st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True),
        st.tuples(st.integers(-100, 100), st.integers(0, 5)),
        max_size=8,
    )
)
def test_export_import_round_trip(values):
    table = VariableTable()
    for name, (value, writes) in values.items():
        table.register(*define(name, "int", value))
        for step in range(writes):
            table.set(name, value + step)
    copy = VariableTable()
    copy.import_(table.export())
    assert copy.export() == table.export()
    assert copy.records() == table.records()
