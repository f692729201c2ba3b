"""Who may reach the service: the loopback test, the refusal to listen beyond loopback without a token, the
TLS context and the Host names answered (main thread, at start-up); and the Host allowlist against DNS
rebinding (``HostCheck``, event loop): a page whose host name is re-pointed to 127.0.0.1 reaches the service as
same-origin, so CORS does not stop it; answering only the names this service is known by does. Host values are
normalised (case, a trailing dot, brackets of an IPv6 literal, the port) before the check; a verdict is kept per
raw value, so the check costs one dictionary lookup per request. Imports core and sources.
"""
from __future__ import annotations

import ipaddress
import logging
import re
import ssl
from collections.abc import Iterable

from tsstats.core.inputs import InputError
from tsstats.core.settings import Settings, StartupError
from tsstats.sources.host import machine_names

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


LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
MAX_HOST = 255
KEPT_VERDICTS = 256  # raw Host values remembered; a client sending new ones each time only costs the parse
_NAME = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*$")


def normalize_host(raw: str) -> str:
    """The name or address a Host header names, without port, brackets or trailing dot, in lower case;
    InputError (400) for one that is over-long or malformed."""
    value = raw.strip().lower()
    if not value or len(value) > MAX_HOST or not value.isascii():
        raise InputError("the Host header is empty, over-long or not ASCII", field="host")
    if value.startswith("["):  # [v6]:port
        end = value.find("]")
        rest = value[end + 1:] if end > 0 else "x"
        if end < 0 or (rest and not (rest.startswith(":") and rest[1:].isdigit())):
            raise InputError("the Host header is not a host[:port]", field="host")
        name = value[1:end]
    elif value.count(":") > 1:  # a bare IPv6 literal, no port
        name = value
    else:
        name, _, port = value.partition(":")
        if _ and not (port.isdigit() and len(port) <= 5):
            raise InputError("the Host header's port is not a number", field="host")
    name = name.rstrip(".")
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        pass
    if not _NAME.match(name):
        raise InputError("the Host header is not a host name or an address", field="host")
    return name


class HostCheck:
    def __init__(self, allowed: Iterable[str], any_host: bool = False):
        self.allowed = frozenset(normalize_host(name) for name in allowed)
        self.any_host = any_host
        self._verdicts: dict[str, bool] = {}

    def allows(self, raw: str | None) -> bool:
        """Whether a request with this Host header may be answered; InputError for a malformed one. A request
        without Host (HTTP/1.0) is refused like a foreign one."""
        if self.any_host:
            return True
        if raw is None:
            return False
        verdict = self._verdicts.get(raw)
        if verdict is None:
            verdict = normalize_host(raw) in self.allowed
            if len(self._verdicts) < KEPT_VERDICTS:
                self._verdicts[raw] = verdict
        return verdict

    def names(self) -> list[str]:
        return sorted(self.allowed)
