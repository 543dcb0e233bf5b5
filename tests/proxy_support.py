"""The desk as it is deployed: `mailbot web` (waitress) in its own process, behind nginx over TLS."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from pathlib import Path
from types import TracebackType

from tests.conftest import ROOT
from tests.servers.common import MissingDependencyError
from tests.tlsfactory import ServerCertificate

NGINX = Path("/usr/sbin/nginx")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


class DeskProcess:
    """`mailbot --config CONFIG web ARGS...` on 127.0.0.1, ready once waitress says it listens."""

    def __init__(self, config: Path, *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.command = [
            sys.executable, "-m", "mailbot", "--config", str(config),
            "web", "--host", "127.0.0.1", "--port", str(self.port), *args,
        ]  # fmt: skip
        self.lines: list[str] = []
        self._ready = threading.Event()
        self._process: subprocess.Popen[str] | None = None
        self._reader = threading.Thread(target=self._read, daemon=True)

    def __enter__(self) -> DeskProcess:
        self._process = subprocess.Popen(
            self.command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=ROOT,
        )
        self._reader.start()
        # waitress logs "Serving on" once its socket listens; an exit sets the event too.
        if not self._ready.wait(60) or self._process.poll() is not None:
            self.__exit__(None, None, None)
            raise RuntimeError("mailbot web did not start:\n" + "".join(self.lines))
        return self

    def _read(self) -> None:
        assert self._process is not None
        assert self._process.stdout is not None
        for line in self._process.stdout:
            self.lines.append(line)
            if "Serving on" in line:
                self._ready.set()
        self._ready.set()

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
        process.wait(timeout=30)
        self._reader.join(timeout=30)  # reads to the end of the pipe, then the pipe closes
        assert process.stdout is not None
        process.stdout.close()


class Nginx:
    """nginx from Debian as a TLS-terminating reverse proxy on 127.0.0.1, in its own prefix."""

    def __init__(
        self, prefix: Path, upstream: str, certificate: ServerCertificate, server_name: str
    ) -> None:
        if not NGINX.exists():
            raise MissingDependencyError(
                "nginx is not installed; apt-get install -y --no-install-recommends nginx"
            )
        self.prefix = prefix
        self.port = free_port()
        self.url = f"https://{server_name}:{self.port}"
        prefix.mkdir(parents=True, exist_ok=True)
        (prefix / "logs").mkdir(exist_ok=True)
        self.conf = prefix / "nginx.conf"
        self.conf.write_text(
            _CONF.format(
                prefix=prefix,
                port=self.port,
                cert=certificate.cert,
                key=certificate.key,
                server_name=server_name,
                upstream=upstream,
            )
        )

    def _nginx(self, *args: str) -> None:
        command = [str(NGINX), "-p", str(self.prefix), "-c", str(self.conf), "-e", "stderr"]
        result = subprocess.run(
            [*command, *args], capture_output=True, text=True, timeout=60, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"nginx {' '.join(args)} failed:\n{result.stderr}")

    def __enter__(self) -> Nginx:
        # Without "daemon off" nginx returns once its master listens: the proxy is ready.
        self._nginx()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._nginx("-s", "stop")

    def access_log(self) -> str:
        path = self.prefix / "logs" / "access.log"
        return path.read_text() if path.exists() else ""


# The README's recommended shape: TLS at nginx, X-Forwarded-* set (not appended to) by it.
_CONF = """
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log warn;
worker_processes 1;
events {{ worker_connections 64; }}
http {{
    access_log {prefix}/logs/access.log;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name {server_name};
        ssl_certificate {cert};
        ssl_certificate_key {key};
        client_max_body_size 2m;
        location / {{
            proxy_pass {upstream};
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $http_host;
            proxy_set_header X-Forwarded-For $remote_addr;
        }}
    }}
}}
"""
