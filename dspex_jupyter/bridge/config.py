"""``BridgeConfig``: everything the bridge client needs to know about a context.

A context hands this to :func:`~dspex_jupyter.bridge.connect.open_bridged_state`
when it upgrades, so the bridge never reads a context's internals (and never
imports the context module at all). Importing this module is cheap: no gRPC.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ValidationError

__all__ = ["BridgeConfig", "resolve_lm", "LM_ENV", "CONNECT_TIMEOUT_S"]

#: How long to wait, by default, for a configured server to accept the connection.
CONNECT_TIMEOUT_S = 15.0

#: LM options and the environment variables that give their defaults.
LM_ENV = {
    "model": "DSPEX_LM_MODEL",
    "api_base": "DSPEX_LM_API_BASE",
    "api_key": "DSPEX_LM_API_KEY",
}


def resolve_lm(lm: Mapping[str, Any] | None) -> dict[str, Any]:
    """The LM configuration: explicit options over ``DSPEX_LM_*`` environment variables."""
    if lm is not None and not isinstance(lm, Mapping):
        raise ValidationError(f"lm must be a mapping of LM options, got {lm!r}")
    config = {key: os.environ[env] for key, env in LM_ENV.items() if os.environ.get(env)}
    config.update(lm or {})
    return config


@dataclass(frozen=True)
class BridgeConfig:
    """Where and how a context reaches its bridge session.

    ``address`` ``None`` means "spawn (or share) this process's private
    server". A named session is joined if it exists and created otherwise;
    the server decides who may create one (on a ``--users`` server only an
    admin, and a non-admin naming a missing session gets ``SessionNotFound``;
    with one shared token its one principal has every right).
    """

    session_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    address: str | None = None
    token: str | None = field(default=None, repr=False)
    session_ttl_s: float | None = None
    store: str | None = None
    principal: str | None = None
    #: A PEM CA bundle: reach the server over TLS, verifying its certificate.
    tls_ca: str | None = None
    #: How long to wait for a configured server to accept the connection.
    connect_timeout_s: float = CONNECT_TIMEOUT_S

    @classmethod
    def resolve(
        cls,
        *,
        bridge: str | None = None,
        token: str | None = None,
        session_id: str | None = None,
        session_ttl_s: float | None = None,
        store: str | None = None,
        principal: str | None = None,
        connect_timeout_s: float | None = None,
        tls_ca: str | None = None,
    ) -> BridgeConfig:
        """Explicit options over ``DSPEX_BRIDGE`` / ``DSPEX_BRIDGE_TOKEN`` /
        ``DSPEX_PRINCIPAL`` / ``DSPEX_BRIDGE_CA``; bad values raise ``ValidationError``."""
        tls_ca = tls_ca or os.environ.get("DSPEX_BRIDGE_CA") or None
        if tls_ca is not None and (not isinstance(tls_ca, str) or not os.path.isfile(tls_ca)):
            raise ValidationError(f"tls_ca must be the path of a PEM CA file, got {tls_ca!r}")
        if session_id is not None and (not isinstance(session_id, str) or not session_id):
            raise ValidationError(f"session_id must be a non-empty string, got {session_id!r}")
        principal = principal or os.environ.get("DSPEX_PRINCIPAL") or None
        if principal is not None and (
            not isinstance(principal, str) or len(principal) > 256 or not principal.strip()
        ):
            raise ValidationError(f"principal must be a 1..256 character string, got {principal!r}")
        if connect_timeout_s is None:
            connect_timeout_s = cls.connect_timeout_s
        elif not isinstance(connect_timeout_s, (int, float)) or not 0 < connect_timeout_s < 3600:
            raise ValidationError(
                f"connect_timeout_s must be a number of seconds in (0, 3600), got {connect_timeout_s!r}"
            )
        return cls(
            session_id=session_id or uuid.uuid4().hex,
            address=bridge or os.environ.get("DSPEX_BRIDGE") or None,
            token=token or os.environ.get("DSPEX_BRIDGE_TOKEN") or None,
            session_ttl_s=session_ttl_s,
            store=store,
            principal=principal,
            connect_timeout_s=float(connect_timeout_s),
            tls_ca=tls_ca,
        )
