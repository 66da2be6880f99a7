"""Variable records, types and constraints, shared by every backend."""

from .parse import parse
from .record import Variable, WatchEvent
from .table import SNAPSHOT_FORMAT, VariableTable, define
from .types import TYPE_NAMES

__all__ = [
    "Variable",
    "WatchEvent",
    "VariableTable",
    "define",
    "SNAPSHOT_FORMAT",
    "TYPE_NAMES",
    "parse",
]
