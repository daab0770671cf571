"""Real receivers for notifications: an SMTP server (aiosmtpd) and an HTTP server that records what is POSTed, plus a
TCP port that accepts connections and never answers (a mail server that hangs)."""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import socket
import ssl
import threading
from collections.abc import Callable
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.cluster import free_port, wait_until


class _Recorder:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], EmailMessage]] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd handler name
        mail = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(mail, EmailMessage)
        with self.lock:
            self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), mail))
        return "250 Message accepted for delivery"


class MailSink:
    """An SMTP server on a free loopback port; with ``credentials`` it requires that login, with ``tls`` (a
    certificate and key file) it speaks SMTP over TLS from the first byte (what ``--mail_ssl`` expects)."""

    def __init__(self, credentials: tuple[str, str] | None = None, tls: tuple[Path, Path] | None = None) -> None:
        self.port = free_port()
        self._recorder = _Recorder()
        options: dict[str, Any] = {}
        if credentials is not None:
            options.update(authenticator=_Authenticator(*credentials), auth_require_tls=False, auth_required=True)
        if tls is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(str(tls[0]), str(tls[1]))
            options["ssl_context"] = context
        self._controller = Controller(self._recorder, hostname="127.0.0.1", port=self.port, **options)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> MailSink:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    @property
    def messages(self) -> list[tuple[str, list[str], EmailMessage]]:
        with self._recorder.lock:
            return list(self._recorder.messages)

    def wait_for(self, predicate: Callable[[EmailMessage], bool], count: int = 1, timeout: float = 30) -> list:
        """The (sender, recipients, message) triples whose message matches, once there are ``count`` of them."""

        def matching() -> list | None:
            found = [entry for entry in self.messages if predicate(entry[2])]
            return found if len(found) >= count else None

        return wait_until(matching, timeout=timeout, what=f"{count} matching mail(s)")


class _Authenticator:
    def __init__(self, user: str, password: str) -> None:
        self.expected = (user.encode(), password.encode())

    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == self.expected
        return AuthResult(success=ok, handled=False)


class WebhookSink:
    """An HTTP server recording every POST (path, headers, JSON body); answers ``status`` (200 by default)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status = 200
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                entry: dict[str, Any] = {"path": self.path, "headers": dict(self.headers.items()), "raw": raw}
                try:
                    entry["json"] = json.loads(raw)
                except ValueError:
                    entry["json"] = None
                with sink._lock:
                    sink.requests.append(entry)
                self.send_response(sink.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server signature
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> WebhookSink:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def received(self, path: str) -> list[dict[str, Any]]:
        with self._lock:
            return [entry for entry in self.requests if entry["path"] == path]

    def wait_for(self, path: str, predicate: Callable[[dict], bool], count: int = 1, timeout: float = 30) -> list:
        def matching() -> list | None:
            found = [entry for entry in self.received(path) if entry["json"] is not None and predicate(entry["json"])]
            return found if len(found) >= count else None

        return wait_until(matching, timeout=timeout, what=f"{count} matching POST(s) to {path}")


def basic_auth(header: str | None) -> tuple[str, str] | None:
    if not header or not header.startswith("Basic "):
        return None
    user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    return user, password


class SilentServer:
    """Accepts TCP connections and never says a word: an SMTP client waits for the greeting until its timeout."""

    def __init__(self) -> None:
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(64)
        self.port = self._socket.getsockname()[1]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def close(self) -> None:
        self._socket.close()


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, and its key (PEM files)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path
