"""``python -m dspex_jupyter.bridge serve --listen ADDRESS --token TOKEN [--store ...]``
and ``python -m dspex_jupyter.bridge add-user USERS_FILE NAME [--admin]``.

``serve --users USERS_FILE`` runs a shared server whose principals are the
users of that file (``add-user`` prints a user's new token as its only
stdout line and stores only a salted hash of it).

Prints exactly one line ``READY <address>`` on stdout, flushed, once it serves.
With ``--exit-with-parent`` (what the launcher uses) it also exits when its
stdin reaches end-of-file or its parent process changes, so a private server
never outlives the kernel that spawned it, even after ``kill -9``.
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import shutil
import signal
import sys
import tempfile
import threading


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dspex_jupyter.bridge")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run a bridge server")
    serve.add_argument(
        "--listen",
        help="HOST:PORT or unix:PATH (default: a Unix socket in a private 0700 directory)",
    )
    serve.add_argument(
        "--token",
        help="client token (default: $DSPEX_BRIDGE_TOKEN; prefer it or --token-file: "
        "a command line is visible in ps)",
    )
    serve.add_argument(
        "--token-file",
        metavar="PATH",
        help="read the token from PATH; if PATH does not exist, generate one into it (mode 0600)",
    )
    serve.add_argument("--tls-cert", metavar="PEM", help="serve TLS with this certificate chain")
    serve.add_argument("--tls-key", metavar="PEM", help="the private key of --tls-cert")
    serve.add_argument(
        "--users",
        metavar="USERS_FILE",
        help="a shared server: every request is its token's user (see add-user); "
        "the shared token is then not accepted",
    )
    serve.add_argument(
        "--max-sessions-per-principal",
        type=int,
        default=32,
        help="sessions one user may own on a --users server (default 32)",
    )
    serve.add_argument(
        "--max-streams-per-principal",
        type=int,
        default=256,
        help="open watch streams one principal may hold; beyond it a new stream is "
        "RESOURCE_EXHAUSTED and the client backs off (default 256)",
    )
    serve.add_argument("--store", default="memory", help="memory (default) or sqlite:PATH")
    serve.add_argument("--session-ttl", type=float, default=None, help="default session TTL (s)")
    serve.add_argument(
        "--max-lease-ttl",
        type=float,
        default=300.0,
        help="the longest optimizer lease (and renewal) a client may ask for, s (default 300)",
    )
    serve.add_argument(
        "--max-session-ttl",
        type=float,
        default=7 * 24 * 3600.0,
        help="the longest session TTL a client may ask for, s (default 7 days)",
    )
    serve.add_argument(
        "--max-value-bytes",
        type=int,
        default=1024 * 1024,
        help="the largest value (as JSON) a variable may hold (default 1 MiB)",
    )
    serve.add_argument(
        "--max-session-bytes",
        type=int,
        default=64 * 1024 * 1024,
        help="the most one session keeps, current values and history together "
        "(default 64 MiB); a write over it is refused",
    )
    serve.add_argument(
        "--history-keep",
        type=int,
        default=1000,
        help="history records kept per variable, in memory and in the store (default 1000)",
    )
    serve.add_argument(
        "--event-retain",
        type=int,
        default=None,
        help="events kept per session for watch resume (default 10000)",
    )
    serve.add_argument(
        "--watch-queue",
        type=int,
        default=None,
        help="events a watcher may lag behind before its stream is ended (default 4096)",
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=None,
        help="DSPy worker processes for module execution (started on first use)",
    )
    serve.add_argument(
        "--prewarm",
        action="store_true",
        help="start the DSPy workers at once (recommended for shared servers), "
        "instead of on the first module run",
    )
    serve.add_argument(
        "--tool",
        action="append",
        default=[],
        metavar="NAME=package.module:function",
        help="register a ReAct tool clients may name (repeatable; also the entry-point "
        "group dspex_jupyter.tools); requests naming anything else are refused",
    )
    serve.add_argument(
        "--allow-client-tools",
        action="store_true",
        help="let requests name tools by dotted path (private servers: the kernel owns them)",
    )
    serve.add_argument(
        "--allow-client-lm",
        action="store_true",
        help="let requests choose the LM api_base/api_key (private servers)",
    )
    serve.add_argument(
        "--allow-code",
        action="store_true",
        help="run notebook-defined code (custom modules, notebook tools and metrics, pickled "
        "by value) for principals with the execute right (private servers)",
    )
    serve.add_argument("--lm-model", help="the LM module runs use (default: the local LM)")
    serve.add_argument(
        "--lm-api-base", help="the LM endpoint module runs use (key: $DSPEX_LM_API_KEY)"
    )
    serve.add_argument(
        "--exit-with-parent",
        action="store_true",
        help="exit when stdin reaches EOF or the parent process dies",
    )
    add = sub.add_parser("add-user", help="create or update a user of a users file")
    add.add_argument("users_file", metavar="USERS_FILE")
    add.add_argument("name", metavar="NAME")
    add.add_argument("--admin", action="store_true", help="may create sessions")
    return parser


def add_user(args: argparse.Namespace) -> int:
    from ..errors import DSPexError
    from .server.users import add_user as add

    try:
        token = add(args.users_file, args.name, admin=args.admin)
    except (DSPexError, OSError) as exc:
        print(f"dspex bridge: cannot add {args.name!r}: {exc}", file=sys.stderr)
        return 2
    print(token, flush=True)
    return 0


def _token(args: argparse.Namespace) -> str:
    """``--token``, else ``$DSPEX_BRIDGE_TOKEN``, else ``--token-file`` (read, or generated
    into it), else a generated token written to a new 0600 file whose path goes to
    stderr. A generated token is never printed and never on a command line."""
    if args.token:
        print(
            "dspex bridge: WARNING: --token puts the token on the command line, where ps "
            "and /proc show it to every local user; pass it in DSPEX_BRIDGE_TOKEN or "
            "--token-file PATH instead",
            file=sys.stderr,
        )
        return str(args.token)
    if os.environ.get("DSPEX_BRIDGE_TOKEN"):
        return os.environ["DSPEX_BRIDGE_TOKEN"]
    path = args.token_file
    if path and os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            token = f.read().strip()
        if not token:
            raise ValueError(f"the token file {path!r} is empty")
        return token
    token = secrets.token_urlsafe(32)
    if not path:
        path = os.path.join(tempfile.mkdtemp(prefix="dspex-bridge-token-"), "token")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(token + "\n")
    print(f"dspex bridge: generated a token into {path} (mode 0600)", file=sys.stderr)
    return token


def _tls(args: argparse.Namespace) -> tuple[bytes, bytes] | None:
    if not args.tls_cert and not args.tls_key:
        return None
    if not (args.tls_cert and args.tls_key):
        raise ValueError("--tls-cert and --tls-key go together")
    with open(args.tls_cert, "rb") as cert, open(args.tls_key, "rb") as key:
        return cert.read(), key.read()


def _loopback(address: str) -> bool:
    if address.startswith("unix:"):
        return True
    host = address.rsplit(":", 1)[0].strip("[]")
    return host in ("localhost", "::1") or host.startswith("127.")


def _watch_parent(stop: threading.Event) -> None:
    parent = os.getppid()

    def on_eof() -> None:
        try:
            while sys.stdin.buffer.read(65536):
                pass
        except Exception:
            pass
        stop.set()

    def on_reparent() -> None:
        while not stop.wait(0.25):
            if os.getppid() != parent:
                stop.set()

    threading.Thread(target=on_eof, name="dspex-stdin", daemon=True).start()
    threading.Thread(target=on_reparent, name="dspex-ppid", daemon=True).start()


def serve(args: argparse.Namespace) -> int:
    from ..errors import DSPexError
    from .handshake import announce
    from .server import DEFAULT_TTL_S, EVENT_LIMIT, WATCH_QUEUE, BridgeServer
    from .server.policy import ExecutionPolicy, registered_tools
    from .store import open_store

    try:
        token = None if args.users else _token(args)
        tls = _tls(args)
    except (OSError, ValueError) as exc:
        print(f"dspex bridge: cannot start: {exc}", file=sys.stderr)
        return 2
    private_dir = None
    address = args.listen
    if address and tls is None and not _loopback(address):
        print(
            f"dspex bridge: WARNING: serving PLAINTEXT on {address}: tokens and values cross "
            "the network unencrypted; use --tls-cert/--tls-key (or listen on 127.0.0.1)",
            file=sys.stderr,
        )
    if not address:
        private_dir = tempfile.mkdtemp(prefix="dspex-bridge-")
        os.chmod(private_dir, 0o700)
        address = f"unix:{os.path.join(private_dir, 'bridge.sock')}"
    stop = threading.Event()
    try:
        event_limit = args.event_retain or EVENT_LIMIT
        policy = ExecutionPolicy(
            tools=registered_tools(args.tool),
            allow_client_tools=args.allow_client_tools,
            allow_client_lm=args.allow_client_lm,
            allow_code=args.allow_code,
            lm_model=args.lm_model,
            lm_api_base=args.lm_api_base,
        )
        store = open_store(args.store, event_limit, args.history_keep)
        server = BridgeServer(
            address,
            token,
            store,
            default_ttl_s=args.session_ttl or DEFAULT_TTL_S,
            event_limit=event_limit,
            watch_queue=args.watch_queue or WATCH_QUEUE,
            workers=args.workers,
            policy=policy,
            users=args.users,
            max_sessions_per_principal=args.max_sessions_per_principal,
            max_streams_per_principal=args.max_streams_per_principal,
            max_lease_ttl_s=args.max_lease_ttl,
            max_session_ttl_s=args.max_session_ttl,
            max_value_bytes=args.max_value_bytes,
            max_session_bytes=args.max_session_bytes,
            history_keep=args.history_keep,
            tls=tls,
        )
        server.start()
        if args.prewarm:
            server.prewarm_workers()
    except (DSPexError, RuntimeError) as exc:
        print(f"dspex bridge: cannot start: {exc}", file=sys.stderr)
        if private_dir:
            shutil.rmtree(private_dir, ignore_errors=True)
        return 2
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: stop.set())
    if args.exit_with_parent:
        _watch_parent(stop)
    announce(server.address)
    try:
        while not stop.wait(1.0):
            pass
    finally:
        server.stop(grace=0.5)
        if private_dir:
            shutil.rmtree(private_dir, ignore_errors=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="dspex bridge: %(levelname)s %(message)s")
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return serve(args)
    if args.command == "add-user":
        return add_user(args)
    return 2  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())
