"""Run a socketify-based duckdb-server (<= 0.32.0, the releases with a WebSocket
endpoint) on a chosen port.

These releases hard-code `app.listen(3000, ...)` on all interfaces; this wraps socketify's
App.listen to listen on 127.0.0.1:PORT instead, and leaves the server's code as it is.

Usage: python serve_duckdb_server_socketify.py DB_PATH PORT
"""
import sys

import socketify

db_path, port = sys.argv[1], int(sys.argv[2])
_listen = socketify.App.listen


def listen(self, port_or_options=None, handler=None):
    return _listen(self, {"port": port, "host": "127.0.0.1"}, handler)


socketify.App.listen = listen
sys.argv = [sys.argv[0], db_path]

from pkg.__main__ import serve  # noqa: E402

serve()
