"""Serving the desk: waitress for `mailbot web`, a stoppable thread for tests and tools."""

from __future__ import annotations

import threading
from types import TracebackType

from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server


def serve(flask: Flask, host: str, port: int, trusted_proxies: int = 0, threads: int = 8) -> None:
    """Serve until interrupted, with waitress (a production WSGI server, pure Python).

    waitress drops X-Forwarded-* headers unless told otherwise; behind trusted
    proxies it passes them on to the desk's ProxyFix, which counts the hops.
    """
    from waitress import serve as waitress_serve

    from mailbot.web.edge import MAX_BODY

    waitress_serve(
        flask,
        host=host,
        port=port,
        threads=threads,
        ident="mailbot",
        # A larger body is refused from its Content-Length, before a byte of it is read.
        max_request_body_size=MAX_BODY,
        clear_untrusted_proxy_headers=trusted_proxies == 0,
    )


class BackgroundServer:
    """The desk on 127.0.0.1 in a thread of this process, on a free port; a context manager."""

    def __init__(self, flask: Flask, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server: BaseWSGIServer = make_server(host, port, flask, threaded=True)
        self.host = host
        self.port = self._server.server_port
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="mailbot-web", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> BackgroundServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._thread.join(timeout=10)
        self._server.server_close()
