"""Layer 1: the gRPC bridge server, its stores, the launcher and the client.

Importing this package is cheap; gRPC is imported by the submodules that need it.
Run a server with ``python -m dspex_jupyter.bridge serve --listen ADDRESS --token TOKEN``.
"""
