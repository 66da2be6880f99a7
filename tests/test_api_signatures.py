"""``Variables.*`` and ``Context.*`` are one API spelled two ways: they must agree.

``Variables.update`` once dropped ``source`` and ``update_many`` dropped
``expected_versions``; this keeps every delegating method's parameters (names
and defaults) the same as the Context method it calls.
"""

from __future__ import annotations

import inspect

import pytest

from dspex_jupyter import Context, Variables

DELEGATES = {
    "get": "get",
    "info": "variable",
    "set": "set",
    "update": "update",
    "get_many": "get_many",
    "update_many": "update_many",
    "list": "list",
    "delete": "delete",
    "watch": "watch",
    "unwatch": "unwatch",
    "history": "history",
    "rollback": "rollback",
}


def _parameters(fn, skip: str) -> dict[str, object]:
    params = inspect.signature(fn).parameters.values()
    return {p.name: p.default for p in params if p.name != skip}


@pytest.mark.parametrize("api_name", sorted(DELEGATES))
def test_variables_method_takes_what_the_context_method_takes(api_name):
    context_method = getattr(Context, DELEGATES[api_name])
    assert _parameters(getattr(Variables, api_name), "ctx") == _parameters(context_method, "self")


def test_every_public_variables_method_is_checked():
    public = {n for n in vars(Variables) if not n.startswith("_")}
    assert public - set(DELEGATES) == {"defvariable"}
