"""A TLS check of the first bootstrap listener, run once a refusal is confirmed, for what
librdkafka's words leave out.

librdkafka says "certificate verify failed" alike for an expired broker certificate, one
signed by another CA and one for another host; and a plaintext client that reaches a TLS
listener only sees the connection close. One handshake with Python's ``ssl``, made with the
client's own CA bundle, client certificate and hostname rule, tells which (OpenSSL's
verification code) and whether the listener speaks TLS at all. It runs on the poll thread,
bounded by the probe timeout.
"""

from __future__ import annotations

import os
import re
import socket
import ssl
from collections.abc import Mapping
from typing import Final

from eventwire._core.access import TlsFinding

_ENTRY: Final = re.compile(r"^(?:\w+://)?(?:\[(?P<ipv6>[^\]]+)\]|(?P<host>[^:]+)):(?P<port>\d+)$")


def first_listener(bootstrap_servers: str) -> tuple[str, int] | None:
    """``(host, port)`` of the first bootstrap entry."""
    match = _ENTRY.match(bootstrap_servers.split(",", maxsplit=1)[0].strip())
    if match is None:
        return None
    return match["ipv6"] or match["host"], int(match["port"])


def uses_tls(settings: Mapping[str, object]) -> bool:
    return str(settings.get("security.protocol", "PLAINTEXT")).upper() in ("SSL", "SASL_SSL")


def check_listener(settings: Mapping[str, object], timeout: float) -> TlsFinding | None:
    """What a handshake with the first bootstrap listener finds: for a TLS client, why the
    broker's certificate fails verification; for a plaintext one, whether the listener
    speaks TLS. ``None``: nothing to tell (it verifies, it does not speak TLS, or it cannot
    be reached)."""
    listener = first_listener(str(settings.get("bootstrap.servers", "")))
    if listener is None:
        return None
    host, port = listener
    if uses_tls(settings):
        return _verify(settings, host, port, timeout)
    return _speaks_tls(host, port, timeout)


def _verify(
    settings: Mapping[str, object], host: str, port: int, timeout: float
) -> TlsFinding | None:
    try:
        context = _client_context(settings)
    except (OSError, ssl.SSLError, ValueError):
        return None  # librdkafka reads these files too, and says so when it cannot
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=host),
        ):
            return None
    except ssl.SSLCertVerificationError as exc:
        return TlsFinding(
            "verify", host, port, verify_code=exc.verify_code, message=exc.verify_message
        )
    except (OSError, ssl.SSLError):
        return None


def _client_context(settings: Mapping[str, object]) -> ssl.SSLContext:
    ca = settings.get("ssl.ca.location")
    ca_path = str(ca) if ca is not None and str(ca) != "probe" else None
    context = ssl.create_default_context(
        cafile=ca_path if ca_path and not os.path.isdir(ca_path) else None,
        capath=ca_path if ca_path and os.path.isdir(ca_path) else None,
    )
    algorithm = str(settings.get("ssl.endpoint.identification.algorithm", "https")).lower()
    context.check_hostname = algorithm == "https"
    if str(settings.get("enable.ssl.certificate.verification", "true")).lower() == "false":
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    certificate = settings.get("ssl.certificate.location")
    key = settings.get("ssl.key.location")
    if certificate is not None and key is not None:
        password = settings.get("ssl.key.password")
        context.load_cert_chain(
            str(certificate), str(key), password=str(password) if password is not None else None
        )
    return context


def _speaks_tls(host: str, port: int, timeout: float) -> TlsFinding | None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw:
            try:
                with context.wrap_socket(raw, server_hostname=host):
                    pass
            except ssl.SSLError as exc:
                # An alert (a client certificate required...) is TLS talking; a plaintext Kafka
                # listener just closes, or answers bytes that are no TLS record.
                if "ALERT" not in str(exc).upper():
                    return None
    except OSError:
        return None
    return TlsFinding("speaks_tls", host, port)
