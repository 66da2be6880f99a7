"""``BridgeServicer``: the generated servicer, composed from one mixin per concern."""

from __future__ import annotations

from .._proto import dspex_bridge_pb2_grpc as pb_grpc
from .compile import CompileMixin
from .execute import ExecuteMixin
from .production import ProductionMixin
from .sessions import SessionsMixin
from .variables import VariablesMixin
from .watch import WatchMixin

__all__ = ["BridgeServicer"]


class BridgeServicer(
    SessionsMixin,
    VariablesMixin,
    WatchMixin,
    ProductionMixin,
    ExecuteMixin,
    CompileMixin,
    pb_grpc.DSPexBridgeServicer,
):
    """Every RPC of ``DSPexBridge``; each one goes through ``@rpc`` (``rpc.py``)."""
