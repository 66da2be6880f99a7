"""Devsets: one normalized form for lists of dicts, ``dspy.Example``s, DataFrames and files.

A row is an *example*: a flat mapping of field names to values. Which keys are
inputs is decided by ``inputs=`` or, by default, by the program (its input
fields, see :func:`program_inputs`); every other key is an expected value the
metric compares against. Errors name the row (``row 3``) or the file line
(``data.jsonl line 4``) so a bad example is found without a debugger.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, overload

from ..errors import ValidationError

__all__ = ["Dataset", "Example", "load_dataset", "program_inputs"]


@dataclass(frozen=True)
class Example:
    """One labelled row: ``inputs`` go to the program, ``expected`` to the metric."""

    index: int
    inputs: dict[str, Any]
    expected: dict[str, Any]
    origin: str

    def as_dict(self) -> dict[str, Any]:
        """Inputs and expected values in one mapping (what a metric callable receives)."""
        return {**self.inputs, **self.expected}


class Dataset(Sequence[Example]):
    """The normalized devset: a sequence of :class:`Example` with the same input keys."""

    def __init__(self, rows: Sequence[tuple[dict[str, Any], str]], inputs: Sequence[str]) -> None:
        self.input_keys = tuple(inputs)
        examples = []
        for index, (row, origin) in enumerate(rows):
            missing = [k for k in self.input_keys if k not in row]
            if missing:
                raise ValidationError(
                    f"{origin} lacks the input field(s) {missing} (it has {sorted(row)})"
                )
            examples.append(
                Example(
                    index,
                    {k: row[k] for k in self.input_keys},
                    {k: v for k, v in row.items() if k not in self.input_keys},
                    origin,
                )
            )
        self._examples = tuple(examples)

    @overload
    def __getitem__(self, index: int) -> Example: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Example]: ...
    def __getitem__(self, index: int | slice) -> Example | Sequence[Example]:
        return self._examples[index]

    def __len__(self) -> int:
        return len(self._examples)

    def __iter__(self) -> Iterator[Example]:
        return iter(self._examples)

    @property
    def expected_keys(self) -> tuple[str, ...]:
        """Every expected key some row has, in first-seen order."""
        seen: dict[str, None] = {}
        for example in self._examples:
            seen.update(dict.fromkeys(example.expected))
        return tuple(seen)

    def __repr__(self) -> str:
        return (
            f"<Dataset {len(self)} examples inputs={list(self.input_keys)} "
            f"expected={list(self.expected_keys)}>"
        )


def program_inputs(spec: Any) -> list[str]:
    """The fields a program needs from its caller: what no earlier module produces."""
    needed: list[str] = []
    produced: set[str] = set()
    for module in spec.modules:
        for name in module.input_fields():
            if name not in produced and name not in needed:
                needed.append(name)
        outputs = module.output_fields()
        if outputs is None:
            break
        produced.update(outputs)
    return needed


def _row(value: Any, origin: str) -> dict[str, Any]:
    if "dspy" in sys.modules:  # only then can it be a dspy.Example; never import DSPy here
        import dspy

        if isinstance(value, dspy.Example):
            return dict(value.toDict())
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ValidationError(f"{origin} is not a mapping of field names to values: {value!r}")
    return dict(value)


def _example_inputs(value: Any) -> list[str] | None:
    keys = getattr(value, "_input_keys", None)  # dspy.Example.with_inputs(...)
    return sorted(keys) if keys else None


def _read_file(path: str) -> list[tuple[dict[str, Any], str]]:
    name = os.path.basename(path)
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            if path.endswith(".jsonl"):
                rows = []
                for number, line in enumerate(handle, 1):
                    if not line.strip():
                        continue
                    origin = f"{name} line {number}"
                    try:
                        rows.append((_row(json.loads(line), origin), origin))
                    except ValueError as exc:
                        if isinstance(exc, ValidationError):
                            raise
                        raise ValidationError(f"{origin} is not valid JSON: {exc}") from None
                return rows
            reader = csv.DictReader(handle)
            out = []
            for number, record in enumerate(reader, 2):  # line 1 is the header
                origin = f"{name} line {number}"
                if None in record or any(v is None for v in record.values()):
                    raise ValidationError(f"{origin} has not as many cells as the header")
                out.append((dict(record), origin))
            return out
    except OSError as exc:
        raise ValidationError(f"cannot read the dataset {path!r}: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ValidationError(f"the dataset {path!r} is not UTF-8 text: {exc}") from None


def _rows(data: Any) -> tuple[list[tuple[dict[str, Any], str]], list[str] | None]:
    if isinstance(data, Dataset):
        return [(e.as_dict(), e.origin) for e in data], list(data.input_keys)
    if isinstance(data, (str, os.PathLike)):
        path = os.fspath(data)
        if not path.endswith((".jsonl", ".csv")):
            raise ValidationError(f"a dataset file must be .jsonl or .csv, got {path!r}")
        return _read_file(path), None
    if "pandas" in sys.modules:
        import pandas

        if isinstance(data, pandas.DataFrame):
            records = data.to_dict(orient="records")
            return [(_row(r, f"row {i}"), f"row {i}") for i, r in enumerate(records)], None
    if isinstance(data, Mapping) or not isinstance(data, Iterable):
        raise ValidationError(
            "a dataset is a list of dicts or dspy.Examples, a pandas.DataFrame, or a path "
            f"to a .jsonl/.csv file; got {type(data).__name__}"
        )
    items = list(data)
    rows = [(_row(v, f"row {i}"), f"row {i}") for i, v in enumerate(items)]
    return rows, (_example_inputs(items[0]) if items else None)


def load_dataset(path_or_obj: Any, inputs: Iterable[str] | None = None) -> Dataset:
    """The normalized :class:`Dataset` of a list of dicts, a list of ``dspy.Example``, a
    ``pandas.DataFrame`` or a ``.jsonl``/``.csv`` path.

    ``inputs`` names the input keys; the default is the keys a ``dspy.Example``
    marks with ``with_inputs``, else none (``Program.evaluate`` then uses the
    program's input fields). A row lacking an input key, a row that is not a
    mapping, an unreadable file or a bad line raises ``ValidationError`` naming it.
    """
    rows, marked = _rows(path_or_obj)
    if inputs is not None:
        if isinstance(inputs, str) or not all(isinstance(k, str) for k in inputs):
            raise ValidationError(f"inputs must be a list of field names, got {inputs!r}")
        marked = list(inputs)
    return Dataset(rows, marked or [])
