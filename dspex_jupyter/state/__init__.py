"""State backends: the ``StateProvider`` interface and its implementations."""

from .local import LocalState
from .provider import StateProvider
from .watch import Subscription

__all__ = ["StateProvider", "LocalState", "Subscription"]
