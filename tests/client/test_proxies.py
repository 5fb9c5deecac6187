"""The HTTP client through a forward proxy named by the environment, as other HTTP clients
use one: a real proxy on loopback that alone can resolve the server's name."""

from __future__ import annotations

import contextlib
import errno
import http.client
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import urllib3.util.connection

import cairn
from cairn.client._proxies import proxy_for
from cairn.client._transport import Transport
from cairn.core.digest import digest_bytes
from cairn.core.errors import InvalidArgument, StoreUnavailable
from cairn.core.settings import Settings
from tests.proxy import ForwardProxy, free_port
from tests.servers import serve_in_thread

NAME = "cairn.test"  # reserved (RFC 2606): only the proxy resolves it
AUTHORIZATION = "Basic YW5uOnBAc3Mgd29yZA=="  # ann:p@ss word


@pytest.fixture(autouse=True)
def no_proxy_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with no proxy variable from the caller's shell."""
    for name in list(os.environ):
        if name.lower().endswith("_proxy") or name.lower() == "request_method":
            monkeypatch.delenv(name)


@pytest.fixture
def proxy() -> Iterator[ForwardProxy]:
    with ForwardProxy({NAME: "127.0.0.1"}, credentials="ann:p@ss word") as running:
        yield running


def by_name(url: str, name: str = NAME) -> str:
    """``url`` with the server named ``name`` instead of 127.0.0.1."""
    return url.replace("127.0.0.1", name)


def proxy_url(proxy: ForwardProxy, credentials: str = "ann:p%40ss%20word") -> str:
    return proxy.url.replace("http://", f"http://{credentials}@" if credentials else "http://")


def client_of(server: str) -> cairn.Client:
    """A client that gives up soon: one that bypassed the proxy would fail to resolve
    the server's name, and should say so quickly."""
    return cairn.Client(settings=Settings(url=server, retry_timeout=5))


def transport(url: str, retry_timeout: float = 0) -> contextlib.closing[Transport]:
    return contextlib.closing(Transport(url, timeout=5, retry_timeout=retry_timeout))


def use_client(client: cairn.Client, tmp_path: Path) -> None:
    """Metrics, and an artifact big enough to be sent while it is hashed (sendfile)."""
    data = os.urandom(9 * 1024 * 1024 + 1)
    (tmp_path / "w.bin").write_bytes(data)
    run = client.set_experiment_run("r")
    run.log_metric("loss", 0.5)
    info = run.log_artifact("w.bin", tmp_path / "w.bin")
    assert info.digest == digest_bytes(data)
    assert run.download_artifact("w.bin", tmp_path / "back.bin").read_bytes() == data
    client.flush()
    assert [p.value for p in run.get_metric_history("loss")] == [0.5]


# -- through a real proxy ---------------------------------------------------------------------
def test_plain_http_goes_to_the_proxy_with_absolute_urls(
    proxy: ForwardProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy_url(proxy))
    # The server answers to the name only the proxy resolves (its Host allow-list).
    with serve_in_thread(Settings(home=str(tmp_path / "home"), allowed_hosts=NAME)) as url:
        server = by_name(url)
        with client_of(server) as client:
            use_client(client, tmp_path)
    # The proxy takes one request per connection: it saw every one.
    assert {"GET", "POST"} <= {method for method, _, _ in proxy.seen}, proxy.seen
    assert any("/objects" in target for _, target, _ in proxy.seen)  # the artifact's bytes
    for method, target, headers in proxy.seen:
        assert method != "CONNECT"
        assert target.startswith(f"{server}/api/v1/")
        assert headers["host"] == urlsplit(server).netloc
        assert headers["proxy-authorization"] == AUTHORIZATION


def test_https_goes_through_a_connect_tunnel(
    proxy: ForwardProxy,
    certificate: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key, cert = certificate
    monkeypatch.setenv("https_proxy", proxy_url(proxy))
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    settings = Settings(home=str(tmp_path / "home"), allowed_hosts=NAME)
    with serve_in_thread(settings, ssl_keyfile=str(key), ssl_certfile=str(cert)) as url:
        server = by_name(url)  # the certificate names cairn.test: checked through the tunnel
        with client_of(server) as client:
            use_client(client, tmp_path)
    assert proxy.seen
    authority = urlsplit(server).netloc
    for method, target, headers in proxy.seen:
        assert (method, target) == ("CONNECT", authority)
        assert headers["proxy-authorization"] == AUTHORIZATION


def test_an_international_host_name_reaches_the_proxy_in_ascii(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with (
        ForwardProxy({"xn--bcher-kva.test": "127.0.0.1"}) as proxy,
        serve_in_thread(
            Settings(home=str(tmp_path / "h"), allowed_hosts="xn--bcher-kva.test")
        ) as url,
    ):
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        with client_of(by_name(url, "bücher.test")) as client:
            assert client.set_project("p").name == "p"
    assert proxy.seen
    assert all(target.startswith("http://xn--bcher-kva.test:") for _, target, _ in proxy.seen)


def test_a_proxy_that_wants_credentials_is_reported(
    proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy_url(proxy, credentials=""))
    monkeypatch.setenv("HTTPS_PROXY", proxy_url(proxy, credentials="ann:wrong"))
    with (
        transport(f"http://{NAME}:1") as plain,
        pytest.raises(StoreUnavailable, match=r"407 .* asks for credentials"),
    ):
        plain.request("GET", "/health")
    with (
        transport(f"https://{NAME}:1") as tls,
        pytest.raises(StoreUnavailable, match=r"would not open a tunnel to cairn\.test:1.*407"),
    ):
        tls.request("GET", "/health")


@pytest.mark.parametrize(("status", "retried"), [(502, True), (503, True), (403, False)])
def test_a_refused_tunnel_is_retried_only_if_the_server_may_come_back(
    status: int, retried: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ForwardProxy({NAME: "127.0.0.1"}, refuse_tunnels=status) as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        with (
            transport(f"https://{NAME}:1", retry_timeout=0.5) as tls,
            pytest.raises(StoreUnavailable, match=f"would not open a tunnel.*{status}"),
        ):
            tls.request("GET", "/health")
        assert (len(proxy.seen) > 1) is retried


def test_an_unreachable_proxy_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")  # nobody listens
    with (
        transport(f"http://{NAME}:5000", retry_timeout=0.2) as plain,
        pytest.raises(
            StoreUnavailable, match=r"through the proxy http://127\.0\.0\.1:.*http_proxy"
        ),
    ):
        plain.request("GET", "/health")


def test_proxy_credentials_stay_out_of_every_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://ann:s3cret@127.0.0.1:{free_port()}")  # refused
    with (
        transport(f"http://{NAME}:5000", retry_timeout=0.2) as plain,
        pytest.raises(StoreUnavailable) as caught,
    ):
        plain.request("GET", "/health")
    told = str(caught.value) + repr(caught.value) + repr(caught.value.details)
    assert "through the proxy" in told
    assert "s3cret" not in told
    assert "YW5uOnMzY3JldA" not in told  # the base64 of ann:s3cret


# -- which proxy, if any ----------------------------------------------------------------------
def chosen(url: str) -> str | None:
    proxy = proxy_for(urlsplit(url))
    return None if proxy is None else f"{proxy.host}:{proxy.port}"


def test_the_proxy_of_the_servers_scheme_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    assert chosen("http://models.example.com") is None  # no variable, no proxy
    monkeypatch.setenv("HTTP_PROXY", "http://plain.proxy:3128")
    monkeypatch.setenv("HTTPS_PROXY", "tls.proxy:8080")  # no scheme: http:// is meant
    assert chosen("http://models.example.com:5000") == "plain.proxy:3128"
    assert chosen("https://models.example.com") == "tls.proxy:8080"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:5000",
        "http://127.1.2.3",
        "http://localhost:5000",
        "http://a.localhost",
        "http://[::1]:5000",
        "http://0.0.0.0:5000",  # what `--host 0.0.0.0` prints: this machine
        "http://[::]:5000",
        "http://[::ffff:127.0.0.1]:5000",
    ],
)
def test_this_machine_never_goes_through_a_proxy(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://plain.proxy:3128")
    assert chosen(url) is None


def test_no_proxy_names_hosts_that_are_reached_directly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://plain.proxy:3128")
    monkeypatch.setenv(
        "NO_PROXY",
        "cairn.internal:5000, .corp.example,10.0.0.0/8,[2001:db8::1],[2001:db9::]/32,"
        "xn--bcher-kva.example, münchen.example",
    )
    assert chosen("http://cairn.internal:5000") is None
    assert chosen("http://cairn.internal:8080") == "plain.proxy:3128"  # another port
    assert chosen("http://cairn.internal") == "plain.proxy:3128"  # port 80
    assert chosen("http://models.corp.example") is None
    assert chosen("http://corp.example") is None
    assert chosen("http://10.1.2.3:5000") is None
    assert chosen("http://[::ffff:10.1.2.3]:5000") is None  # the same address
    assert chosen("http://[2001:db8::1]:5000") is None
    assert chosen("http://[2001:db9::7]") is None
    assert chosen("http://bücher.example") is None  # either form of an international name
    assert chosen("http://xn--mnchen-3ya.example") is None
    assert chosen("http://models.example.com") == "plain.proxy:3128"
    assert chosen("http://11.0.0.1") == "plain.proxy:3128"
    assert chosen("http://notcorp.example") == "plain.proxy:3128"
    monkeypatch.setenv("NO_PROXY", "other.host, *")
    assert chosen("http://models.example.com") is None


def test_a_cgi_request_header_cannot_set_the_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # In a CGI script, a request's "Proxy:" header arrives as HTTP_PROXY (httpoxy).
    monkeypatch.setenv("REQUEST_METHOD", "GET")
    monkeypatch.setenv("HTTP_PROXY", "http://attacker.example:8080")
    assert chosen("http://models.example.com") is None
    monkeypatch.setenv("http_proxy", "http://plain.proxy:3128")  # set by the operator
    assert chosen("http://models.example.com") == "plain.proxy:3128"


def test_an_ipv6_server_through_a_tunnel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://plain.proxy:3128")
    if hasattr(http.client.HTTPConnection, "_wrap_ipv6"):  # CONNECT brackets it (gh-100985)
        assert chosen("https://[2001:db8::1]:8443") == "plain.proxy:3128"
        return
    with pytest.raises(InvalidArgument, match="newer Python") as caught:
        chosen("https://[2001:db8::1]:8443")
    assert caught.value.field == "url"


def test_an_unroutable_proxy_is_retried_and_named(monkeypatch: pytest.MonkeyPatch) -> None:
    # "No route to host" cannot be made on loopback: the connect is told so, as the
    # kernel says it when a proxy's network is down.
    attempts: list[object] = []

    def no_route(address: object, *args: object, **kwargs: object) -> socket.socket:
        attempts.append(address)
        raise OSError(errno.EHOSTUNREACH, os.strerror(errno.EHOSTUNREACH))

    monkeypatch.setattr(urllib3.util.connection, "create_connection", no_route)
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    with (
        transport(f"http://{NAME}:5000", retry_timeout=0.3) as plain,
        pytest.raises(StoreUnavailable, match=r"through the proxy http://proxy\.example:3128"),
    ):
        plain.request("GET", "/health")
    assert len(attempts) > 1
    assert attempts[0] == ("proxy.example", 3128)


@pytest.mark.parametrize(
    "value",
    [
        "socks5://user:secret@proxy:1080",
        "socks5h://secret@proxy:1080",  # a user name alone may be a token
        "https://proxy:443",
        "http://proxy:port",
        "http://[::1:3128",
        "http://proxy:0",
    ],
)
def test_an_unsupported_proxy_url_is_refused_without_its_password(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", value)
    with pytest.raises(InvalidArgument) as caught:
        cairn.Client("https://models.example.com")
    assert caught.value.field == "https_proxy"
    assert "http://host:port" in str(caught.value)
    assert "NO_PROXY" in str(caught.value)
    assert "secret" not in str(caught.value)


def test_the_password_stays_out_of_the_proxys_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://ann:secret@plain.proxy:3128")
    proxy = proxy_for(urlsplit("http://models.example.com"))
    assert proxy is not None and proxy.authorization is not None
    assert proxy.authorization not in repr(proxy)
    assert "secret" not in repr(proxy) + str(proxy)
