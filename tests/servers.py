"""Real servers for the remote tests, on 127.0.0.1 only: nginx, a fault proxy, a redirector, S3.

``NginxServer(root)`` runs the distribution's nginx (``apt-get install nginx-light``) in the
foreground as a child process with its own prefix, config and free port; it serves ``root`` with
Range support, answers 403 under ``/forbidden/``, serves ``root`` again under ``/norange/`` ignoring
Range headers (200 and the whole file, as some servers do), and stops when the context exits. Its access log
records every response's ``$body_bytes_sent``: ``bytes_sent()`` sums them per path (what the server
really sent, the figure read amplification is measured with); ``clear_log()`` starts over.

``FaultProxy(upstream_port)`` is a small threaded HTTP proxy placed between a client and nginx. It
handles one request per connection (``Connection: close``) and applies, to the n-th request, the
n-th fault of its plan (then none): ``"503"``/``"500"``/``"429"`` answer that status without
asking nginx; ``"drop"`` relays the headers and part of the body then resets the connection;
``"truncate"`` relays the headers (whose Content-Length promises the whole body) and half of the
body, then closes cleanly; ``"stall"`` relays part of the body then sends nothing for
``stall_s`` seconds (the client's read timeout fires). With ``only_paths`` set, only requests whose
path contains that string take faults from the plan. ``latency_s`` delays every request (the
benchmark's 50 ms); ``bandwidth_bps`` caps each connection's body bytes per second. It counts the
body bytes it relayed per request path (``bytes_by_path``) and keeps every request head
(``request_heads``). Every loop is bounded and the proxy stops with its context.

``Redirector(target_url)`` answers every request with a 302 to ``target_url`` + the request path
minus ``strip_prefix`` (a stand-in for the Hugging Face Hub, which redirects file requests to a CDN),
and keeps the request heads it saw.

``MotoS3()`` runs ``moto``'s S3 server (``moto[server]`` from PyPI) in a thread on a free port;
``env()`` gives the ``AWS_*`` variables that point boto3/s3fs at it.
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
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Self
from urllib.parse import unquote, urlsplit

LOOPBACK = "127.0.0.1"
_NGINX_CONF = """
daemon off;
master_process off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 512; }}
http {{
    log_format bytes '$request_method $request_uri $status $body_bytes_sent';
    access_log {prefix}/access.log bytes;
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
        location /norange/ {{ alias {root}/; max_ranges 0; }}
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

    def cpu_s(self) -> float:
        """CPU seconds nginx (one process: ``master_process off``) has used so far."""
        assert self._proc is not None
        fields = Path(f"/proc/{self._proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def bytes_sent(self) -> Counter[str]:
        """Body bytes nginx sent per request path (query strings dropped) since the last clear_log()."""
        sent: Counter[str] = Counter()
        log = self._prefix / "access.log"
        if not log.exists():
            return sent
        for line in log.read_text().splitlines():
            parts = line.split()
            if len(parts) == 4 and parts[3].isdigit():
                sent[unquote(urlsplit(parts[1]).path)] += int(parts[3])
        return sent

    def clear_log(self) -> None:
        """Empties the access log (nginx appends to the same file)."""
        with open(self._prefix / "access.log", "w"):
            pass


class _LoopbackTcpServer:
    """A threaded TCP server on 127.0.0.1 whose connections go to ``self._serve(sock)``; a context
    manager (started on enter)."""

    def _listen(self) -> None:
        owner = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client left
                    owner._serve(self.request)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server((LOOPBACK, 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05})

    def _serve(self, client: socket.socket) -> None:
        raise NotImplementedError

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://{LOOPBACK}:{self.port}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class FaultProxy(_LoopbackTcpServer):
    """A fault-injecting HTTP proxy in front of 127.0.0.1:``upstream_port``; a context manager."""

    def __init__(
        self,
        upstream_port: int,
        faults: Iterable[str] = (),
        *,
        latency_s: float = 0.0,
        stall_s: float = 2.0,
        partial_bytes: int = 64 * 1024,
        bandwidth_bps: float | None = None,
        only_paths: str | None = None,
    ) -> None:
        self.upstream_port = upstream_port
        self.only_paths = only_paths
        self.latency_s = latency_s
        self.bandwidth_bps = bandwidth_bps
        self.bytes_by_path: Counter[str] = Counter()
        self.request_heads: list[bytes] = []
        self.stall_s = stall_s
        self.partial_bytes = partial_bytes
        self.requests = 0
        self.faults_served: list[str] = []
        self._plan = list(faults)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._listen()

    def set_faults(self, faults: Iterable[str]) -> None:
        """Replaces the plan: the next requests get these faults, in order, then none."""
        with self._lock:
            self._plan = list(faults)

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        super().__exit__(*exc)

    # --- one connection -------------------------------------------------------------------------
    def _serve(self, client: socket.socket) -> None:
        client.settimeout(10)
        head = _read_head(client)
        if head is None:
            return
        path = _request_path(head)
        with self._lock:
            self.requests += 1
            self.request_heads.append(head)
            targeted = self.only_paths is None or self.only_paths in path
            fault = self._plan.pop(0) if self._plan and targeted else "ok"
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
            if fault == "gzip":  # claims an encoded body (the bytes stay the file's)
                response_head = response_head.replace(b"\r\n\r\n", b"\r\nContent-Encoding: gzip\r\n\r\n", 1)
            client.sendall(response_head)
            limit = self._body_limit(fault, response_head)
            sent = 0
            started = time.monotonic()
            cap = self.bandwidth_bps
            block = 65536 if cap is None else int(min(65536, max(1024, cap / 50)))  # ~20 ms of bytes
            while limit is None or sent < limit:
                chunk = upstream.recv(block if limit is None else min(block, limit - sent))
                if not chunk:
                    break
                client.sendall(chunk)
                sent += len(chunk)
                with self._lock:
                    self.bytes_by_path[path] += len(chunk)
                if cap is not None:  # pace the body: sent bytes / elapsed <= the cap
                    ahead = sent / cap - (time.monotonic() - started)
                    if ahead > 0 and self._stopping.wait(ahead):
                        break
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


class Redirector(_LoopbackTcpServer):
    """Answers every request with a 302 to ``target_url`` + its path (minus ``strip_prefix``)."""

    def __init__(self, target_url: str, strip_prefix: str = "") -> None:
        self.target_url = target_url.rstrip("/")
        self.strip_prefix = strip_prefix
        self.request_heads: list[bytes] = []
        self._lock = threading.Lock()
        self._listen()

    def _serve(self, client: socket.socket) -> None:
        client.settimeout(10)
        head = _read_head(client)
        if head is None:
            return
        with self._lock:
            self.request_heads.append(head)
        path = head.split(b" ", 2)[1].decode()
        if path.startswith(self.strip_prefix):
            path = path[len(self.strip_prefix) :]
        location = f"{self.target_url}/{path.lstrip('/')}"
        reply = f"HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n"
        reply += "\r\n"
        client.sendall(reply.encode())


class MotoS3:
    """moto's S3 server on 127.0.0.1 (a thread of this process); a context manager."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address=LOOPBACK, port=free_port(), verbose=False)
        self.port = 0

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://{LOOPBACK}:{self.port}"

    def env(self, endpoint_url: str | None = None) -> dict[str, str]:
        """``AWS_*`` variables pointing boto3 and s3fs at ``endpoint_url`` (default: this server)."""
        return {
            "AWS_ENDPOINT_URL": endpoint_url or self.url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def __enter__(self) -> MotoS3:
        self._server.start()
        self.port = self._server.get_host_and_port()[1]
        wait_for_port(self.port)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()


def _request_path(head: bytes) -> str:
    """The path of an HTTP request head's request line (query dropped, percent-decoded)."""
    parts = head.split(b" ", 2)
    return unquote(urlsplit(parts[1].decode(errors="replace")).path) if len(parts) > 1 else ""


def _read_head(sock: socket.socket) -> bytes | None:
    """Bytes up to and including the blank line ending an HTTP head, and not one byte more.

    Peeks at what has arrived and consumes exactly the head, so the body stays in the socket.
    """
    consumed = bytearray()
    while len(consumed) <= 65536:
        try:
            peeked = sock.recv(65536, socket.MSG_PEEK)
        except TimeoutError:
            return None
        if not peeked:
            return None
        end = (bytes(consumed[-3:]) + peeked).find(b"\r\n\r\n")
        take = len(peeked) if end < 0 else end + 4 - len(consumed[-3:])
        consumed += sock.recv(take)
        if end >= 0:
            return bytes(consumed)
    return None


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
