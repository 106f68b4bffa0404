"""Real servers for the remote tests, on 127.0.0.1 only: nginx serving a directory, and a fault proxy.

``NginxServer(root)`` runs the distribution's nginx (``apt-get install nginx-light``) in the
foreground as a child process with its own prefix, config and free port; it serves ``root`` with
Range support, answers 403 under ``/forbidden/``, and stops when the context exits.

``FaultProxy(upstream_port)`` is a small threaded HTTP proxy placed between a client and nginx. It
handles one request per connection (``Connection: close``) and applies, to the n-th request, the
n-th fault of its plan (then none): ``"503"``/``"500"``/``"429"`` answer that status without
asking nginx; ``"drop"`` relays the headers and part of the body then resets the connection;
``"truncate"`` relays the headers (whose Content-Length promises the whole body) and half of the
body, then closes cleanly; ``"stall"`` relays part of the body then sends nothing for
``stall_s`` seconds (the client's read timeout fires). ``latency_s`` delays every request (the
benchmark's 50 ms). Every loop is bounded and the proxy stops with its context.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import socketserver
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path

LOOPBACK = "127.0.0.1"
_NGINX_CONF = """
daemon off;
master_process off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 512; }}
http {{
    access_log off;
    sendfile on;
    default_type application/octet-stream;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    server {{
        listen {host}:{port};
        root {root};
        location / {{ autoindex on; }}
        location /forbidden/ {{ return 403; }}
    }}
}}
"""


def nginx_binary() -> str | None:
    """The nginx executable, or None when it is not installed."""
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout_s: float = 10.0) -> None:
    """Returns once something accepts connections on 127.0.0.1:``port``."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((LOOPBACK, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


class NginxServer:
    """nginx serving ``root`` on 127.0.0.1 (see the module docstring); a context manager."""

    def __init__(self, root: str | os.PathLike) -> None:
        binary = nginx_binary()
        if binary is None:
            raise FileNotFoundError("nginx is not installed (apt-get install nginx-light)")
        self.root = Path(root).resolve()
        self._binary = binary
        self._prefix = Path(tempfile.mkdtemp(prefix="lrs-nginx-"))
        self._proc: subprocess.Popen | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://{LOOPBACK}:{self.port}"

    def __enter__(self) -> NginxServer:
        for _ in range(5):  # the free port may be taken by the time nginx binds it
            self.port = free_port()
            conf = self._prefix / "nginx.conf"
            conf.write_text(
                _NGINX_CONF.format(prefix=self._prefix, host=LOOPBACK, port=self.port, root=self.root)
            )
            self._proc = subprocess.Popen(
                [self._binary, "-p", str(self._prefix), "-c", str(conf), "-e", str(self._prefix / "err")],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            try:
                wait_for_port(self.port, timeout_s=5)
                if self._proc.poll() is None:
                    return self
            except OSError:
                pass
            self._stop()
        raise RuntimeError(f"nginx did not start: {(self._prefix / 'err').read_text(errors='replace')}")

    def _stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            if self._proc.stderr is not None:
                self._proc.stderr.close()
            self._proc = None

    def __exit__(self, *exc: object) -> None:
        self._stop()
        shutil.rmtree(self._prefix, ignore_errors=True)


class FaultProxy:
    """A fault-injecting HTTP proxy in front of 127.0.0.1:``upstream_port``; a context manager."""

    def __init__(
        self,
        upstream_port: int,
        faults: Iterable[str] = (),
        *,
        latency_s: float = 0.0,
        stall_s: float = 2.0,
        partial_bytes: int = 64 * 1024,
    ) -> None:
        self.upstream_port = upstream_port
        self.latency_s = latency_s
        self.stall_s = stall_s
        self.partial_bytes = partial_bytes
        self.requests = 0
        self.faults_served: list[str] = []
        self._plan = list(faults)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                proxy._serve(self.request)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server((LOOPBACK, 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05})

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://{LOOPBACK}:{self.port}"

    def set_faults(self, faults: Iterable[str]) -> None:
        """Replaces the plan: the next requests get these faults, in order, then none."""
        with self._lock:
            self._plan = list(faults)

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # --- one connection -------------------------------------------------------------------------
    def _serve(self, client: socket.socket) -> None:
        client.settimeout(10)
        head = _read_head(client)
        if head is None:
            return
        with self._lock:
            self.requests += 1
            fault = self._plan.pop(0) if self._plan else "ok"
            if fault != "ok":
                self.faults_served.append(fault)
        if self.latency_s:
            self._stopping.wait(self.latency_s)
        if fault.isdigit():
            body = f"injected {fault}\n".encode()
            head = f"HTTP/1.1 {fault} Injected\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            client.sendall(head.encode() + body)
            return
        with socket.create_connection((LOOPBACK, self.upstream_port), timeout=10) as upstream:
            upstream.sendall(_force_close(head))
            response_head = _read_head(upstream)
            if response_head is None:
                return
            client.sendall(response_head)
            limit = self._body_limit(fault, response_head)
            sent = 0
            while limit is None or sent < limit:
                chunk = upstream.recv(65536 if limit is None else min(65536, limit - sent))
                if not chunk:
                    break
                client.sendall(chunk)
                sent += len(chunk)
        if fault == "drop":
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST
        elif fault == "stall":
            self._stopping.wait(self.stall_s)

    def _body_limit(self, fault: str, response_head: bytes) -> int | None:
        if fault in ("drop", "stall"):
            return self.partial_bytes
        if fault == "truncate":
            return _content_length(response_head) // 2
        return None


def _read_head(sock: socket.socket) -> bytes | None:
    """Bytes up to and including the blank line ending an HTTP head (one byte at a time: exact)."""
    data = bytearray()
    while not data.endswith(b"\r\n\r\n"):
        with contextlib.suppress(TimeoutError):
            byte = sock.recv(1)
            if not byte:
                return None
            data += byte
            if len(data) > 65536:
                return None
            continue
        return None
    return bytes(data)


def _force_close(head: bytes) -> bytes:
    lines = [
        line
        for line in head.split(b"\r\n")
        if line and not line.lower().startswith((b"connection:", b"keep-alive:"))
    ]
    return b"\r\n".join([*lines, b"Connection: close", b"", b""])


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    return 0
