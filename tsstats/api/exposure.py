"""Who may reach the service: the loopback test, the refusal to listen beyond loopback without a token, the
TLS context and the Host names answered. Runs on the main thread at start-up; imports core and sources."""

from __future__ import annotations

import ipaddress
import logging
import ssl

from tsstats.core.settings import Settings, StartupError
from tsstats.sources.names import machine_names

log = logging.getLogger("tsstats")


def is_loopback_host(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(settings: Settings) -> None:
    if not is_loopback_host(settings.host) and not settings.token and not settings.allow_remote:
        raise StartupError(
            f"refusing to listen on {settings.host} without a token: anyone who can reach it could read and "
            f"change this service. Set TSSTATS_TOKEN (or --token), or pass --allow-remote to accept that.")
    if not is_loopback_host(settings.host) and not settings.tls_cert:
        log.warning("listening on %s without TLS: the token and every answer travel in clear; set tls_cert and "
                    "tls_key to serve HTTPS", settings.host)


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The server's TLS context from tls_cert and tls_key (None without them); StartupError naming the file."""
    if not settings.tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(settings.tls_cert, settings.tls_key)
    except (OSError, ssl.SSLError) as error:
        raise StartupError(f"tls_cert {settings.tls_cert} / tls_key {settings.tls_key}: cannot load them: "
                           f"{error}") from None
    return context


def allowed_host_names(settings: Settings) -> tuple[list[str], bool]:
    """The names the service answers to (Host), and whether any Host is answered (``allowed_hosts = *``)."""
    names = ["localhost", "127.0.0.1", "::1", *(name for name in settings.allowed_hosts if name != "*")]
    if settings.host not in ("0.0.0.0", "::", ""):
        names.append(settings.host.strip("[]"))
    if not is_loopback_host(settings.host):
        names += machine_names()
    any_host = "*" in settings.allowed_hosts
    if any_host:
        log.warning("allowed_hosts is *: any Host header is answered, so a web page can reach this service "
                    "through DNS rebinding")
    return names, any_host
