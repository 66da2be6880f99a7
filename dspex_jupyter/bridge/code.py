"""Notebook-defined code for the bridge: the bridge-side name of :mod:`..program.code`.

Specs carry code as data, so the packing lives with them (floor 3); the bridge's server,
workers and optimizers import it from here.
"""

from ..program.code import (
    code_data,
    code_whats,
    inline_code,
    lift_code,
    load_code,
    pack_code,
    unpack_code,
)

__all__ = [
    "pack_code",
    "unpack_code",
    "code_data",
    "load_code",
    "code_whats",
    "lift_code",
    "inline_code",
]
