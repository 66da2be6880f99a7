"""Variable records, types and constraints, shared by every backend."""

from .record import Variable, WatchEvent
from .table import SNAPSHOT_FORMAT, VariableTable, define
from .types import TYPE_NAMES, parse

__all__ = [
    "Variable",
    "WatchEvent",
    "VariableTable",
    "define",
    "SNAPSHOT_FORMAT",
    "TYPE_NAMES",
    "parse",
]
