"""Which HTTP proxy the client reaches a server through, from the environment.

``http_proxy`` / ``https_proxy`` (either case; the upper-case ``HTTP_PROXY`` is ignored
when ``REQUEST_METHOD`` is set, as in a CGI script, where a request header could set it)
name the proxy for a server of that scheme; ``no_proxy`` lists hosts reached directly.
A server on this machine is always reached directly: a proxy elsewhere cannot reach it.
"""

from __future__ import annotations

import base64
import http.client
import ipaddress
from dataclasses import dataclass, field
from urllib.parse import SplitResult, unquote, urlsplit
from urllib.request import getproxies_environment

from cairn.core.errors import InvalidArgument

__all__ = ["Proxy", "ascii_host", "bracketed", "proxy_for"]

_IP = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class Proxy:
    """An ``http://`` proxy, and the ``Proxy-Authorization`` its URL's credentials make
    (kept out of the repr: it is the password, merely base64-encoded)."""

    host: str
    port: int
    variable: str  # where it was named, for error messages: "https_proxy"
    authorization: str | None = field(default=None, repr=False)

    def __str__(self) -> str:
        return f"http://{bracketed(self.host)}:{self.port} ({self.variable})"


def proxy_for(server: SplitResult) -> Proxy | None:
    """The proxy to reach ``server`` through, or None to connect to it directly."""
    host = server.hostname or ""
    if _is_local(host):
        return None
    variable = f"{server.scheme}_proxy"
    settings = getproxies_environment()  # {"http": ..., "https": ..., "no": ...}
    url = settings.get(server.scheme)
    port = server.port or (443 if server.scheme == "https" else 80)
    if not url or _bypassed(host, port, settings.get("no", "")):
        return None
    refused = InvalidArgument(
        variable,
        f"must be an http://host:port proxy URL, got {_masked(url)!r} "
        f"(to reach {host} without it, add it to NO_PROXY)",
    )
    try:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        proxy_port = 80 if parts.port is None else parts.port
    except ValueError:
        raise refused from None
    if parts.scheme != "http" or not parts.hostname or not proxy_port:
        raise refused
    if server.scheme == "https" and ":" in host and not _TUNNELS_IPV6:
        raise InvalidArgument(
            "url",
            f"an IPv6 address through the proxy in {variable} needs a newer Python (3.11.9, "
            f"3.12.3 or 3.13): name the server by a host name, or add {host} to NO_PROXY",
        )
    authorization = None
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        authorization = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
    return Proxy(parts.hostname, proxy_port, variable, authorization)


# Before these versions (gh-100985), http.client wrote CONNECT's IPv6 host unbracketed.
_TUNNELS_IPV6 = hasattr(http.client.HTTPConnection, "_wrap_ipv6")


def _is_local(host: str) -> bool:
    name = host.lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    address = _address(name)
    if address is None:
        return False
    return address.is_loopback or address.is_unspecified  # 0.0.0.0 is this machine too


def _bypassed(host: str, port: int, no_proxy: str) -> bool:
    """Whether ``no_proxy`` covers the server: comma-separated ``*``, host names (which
    cover their subdomains; a leading ``.`` or ``*.`` means the same), IP addresses and
    CIDR ranges, each optionally with a ``:port`` that must then match too."""
    name = ascii_host(host.lower().rstrip("."))
    address = _address(name)
    for raw in no_proxy.split(","):
        entry = raw.strip().lower()
        if entry == "*":
            return True
        entry, entry_port = _split_port(entry)
        entry = ascii_host(entry.lstrip("*").lstrip(".").rstrip("."))
        if not entry or (entry_port is not None and entry_port != port):
            continue
        if address is not None:
            try:
                if address in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                pass
        elif name == entry or name.endswith("." + entry):
            return True
    return False


def _split_port(entry: str) -> tuple[str, int | None]:
    """``host``, ``host:port``, ``[v6]``, ``[v6]:port``, ``[v6]/len`` or a bare v6 address
    (which has more than one colon) as (host, port or None)."""
    if entry.startswith("["):
        inside, _, after = entry[1:].partition("]")
        if after.startswith(":") and after[1:].isdigit():
            return inside, int(after[1:])
        return inside + after, None  # "/len" stays with the address
    host, colon, port = entry.rpartition(":")
    if colon and ":" not in host and port.isdigit():
        return host, int(port)
    return entry, None


def ascii_host(name: str) -> str:
    """An international host name in its ASCII (IDNA) form; others, and names IDNA
    cannot encode, as they are."""
    if name.isascii():
        return name
    try:
        return name.encode("idna").decode("ascii")
    except UnicodeError:
        return name


def _address(host: str) -> _IP | None:
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # ::ffff:10.1.2.3 is 10.1.2.3
    return address


def bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _masked(url: str) -> str:
    """``url`` without its credentials (a user name alone may be a token)."""
    scheme, sep, rest = url.rpartition("://")
    _, at, hostport = rest.rpartition("@")
    return f"{scheme}{sep}***@{hostport}" if at else url
