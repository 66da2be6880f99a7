"""The variable API is one signature, spelled in several places: they must agree.

``StateProvider`` is the truth. Both backends (``LocalState``, ``BridgedState``)
implement its methods with the same parameters; ``Context`` restates them for
its users; ``Variables.*`` restates ``Context``'s with the context first; and
``VariableTable``, the write semantics both backends share, takes the same
write options. "The same parameters" means the same names, in the same order,
of the same kind (positional or keyword-only) with the same defaults.

``Variables.update`` once dropped ``source`` and ``update_many`` dropped
``expected_versions``; ``Context.import_state`` dropped ``source``; ``metadata``
was keyword-only on ``Context.set`` but positional on ``Variables.set``.
"""

from __future__ import annotations

import inspect

import pytest

from dspex_jupyter import Context, Variables
from dspex_jupyter.bridge.state import BridgedState
from dspex_jupyter.state.local import LocalState
from dspex_jupyter.state.provider import StateProvider
from dspex_jupyter.variables.table import VariableTable

#: Variables function -> the Context method it delegates to.
DELEGATES = {
    "defvariable": "defvariable",
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

#: StateProvider methods a context does not offer under the same name: the
#: backend's own plumbing (the context defines, stops and upgrades instead).
NOT_ON_CONTEXT = {"register", "close", "attach", "detach_all"}

#: Where Context deliberately adds to the provider's signature, and why.
CONTEXT_ADDS = {
    "get": "default (returned when the variable is missing)",
    "execute_module": "lm_config defaults to the context's LM configuration",
}


def _parameters(fn, skip: str) -> list[tuple[str, object, object]]:
    """(name, kind, default) of each parameter, in order, without ``skip``."""
    params = inspect.signature(fn).parameters.values()
    return [(p.name, p.kind, p.default) for p in params if p.name != skip]


def _provider_methods() -> list[str]:
    return sorted(
        name
        for name, value in vars(StateProvider).items()
        if callable(value) and not name.startswith("_")
    )


@pytest.mark.parametrize("api_name", sorted(DELEGATES))
def test_variables_method_takes_what_the_context_method_takes(api_name):
    context_method = getattr(Context, DELEGATES[api_name])
    assert _parameters(getattr(Variables, api_name), "ctx") == _parameters(context_method, "self")


def test_every_public_variables_method_is_checked():
    public = {n for n in vars(Variables) if not n.startswith("_")}
    assert public == set(DELEGATES)


@pytest.mark.parametrize("backend", [LocalState, BridgedState], ids=lambda c: c.__name__)
@pytest.mark.parametrize("method", _provider_methods())
def test_backends_implement_the_provider_signature(backend, method):
    assert _parameters(getattr(backend, method), "self") == _parameters(
        getattr(StateProvider, method), "self"
    )


@pytest.mark.parametrize(
    "method", [m for m in _provider_methods() if m not in NOT_ON_CONTEXT | set(CONTEXT_ADDS)]
)
def test_context_restates_the_provider_signature(method):
    assert _parameters(getattr(Context, method), "self") == _parameters(
        getattr(StateProvider, method), "self"
    )


def test_context_only_adds_where_it_says_so():
    get = _parameters(Context.get, "self")
    assert get[:-1] == _parameters(StateProvider.get, "self") and get[-1][0] == "default"
    context_run = _parameters(Context.execute_module, "self")
    provider_run = _parameters(StateProvider.execute_module, "self")
    assert [p[:2] for p in context_run] == [p[:2] for p in provider_run]
    changed = [c for c, p in zip(context_run, provider_run, strict=True) if c != p]
    assert changed == [("lm_config", inspect.Parameter.POSITIONAL_OR_KEYWORD, None)]


def test_context_defines_with_the_options_a_backend_registers_with():
    # the public spelling takes ``initial`` by keyword (``initial=0.7``); the rest agree
    define = [(n, d) for n, _, d in _parameters(Context.defvariable, "self")]
    register = [(n, d) for n, _, d in _parameters(StateProvider.register, "self")]
    assert define == register


def test_every_provider_method_is_checked_on_the_context():
    missing = {m for m in _provider_methods() if not hasattr(Context, m)}
    assert missing == NOT_ON_CONTEXT


@pytest.mark.parametrize(
    ("table_method", "provider_method"),
    [("update_many", "update_many"), ("import_", "import_state")],
)
def test_the_shared_table_takes_the_provider_write_options(table_method, provider_method):
    assert _parameters(getattr(VariableTable, table_method), "self") == _parameters(
        getattr(StateProvider, provider_method), "self"
    )


def test_the_tables_set_takes_the_provider_set_options_plus_a_timestamp():
    prepare = _parameters(VariableTable.prepare_set, "self")
    assert prepare[:-1] == _parameters(StateProvider.set, "self")
    assert prepare[-1] == ("timestamp", inspect.Parameter.KEYWORD_ONLY, None)
