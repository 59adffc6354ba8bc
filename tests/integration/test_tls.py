"""TLS on the picows transport: wss:// with a self-signed certificate made here.

The certificate is made with the ``openssl`` command line; clients trust
exactly that certificate. A plain ``ws://`` client against the TLS port must
fail, and bad TLS settings are one-line errors with exit status 2.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import shutil
import ssl
import subprocess
import urllib.request
from pathlib import Path

import pytest
import websockets
import websockets.exceptions

import fastcomm
from fastcomm.errors import ConfigError, StartupError
from tests.integration.conftest import free_port, running
from tests.integration.test_cli import assert_usage_error, run_cli

KEY = "tls-key"


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """(certfile, keyfile) of a self-signed certificate for 127.0.0.1 and localhost."""
    assert shutil.which("openssl"), "the openssl command line is needed to make a certificate"
    where = tmp_path_factory.mktemp("tls")
    certfile, keyfile = where / "cert.pem", where / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-keyout", str(keyfile), "-out", str(certfile)],
        check=True, capture_output=True,
    )  # fmt: skip
    return str(certfile), str(keyfile)


def trusting(certfile: str) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=certfile)


async def test_websockets_client_gets_welcome_over_wss(cert: tuple[str, str]) -> None:
    certfile, keyfile = cert
    async with running(ssl_certfile=certfile, ssl_keyfile=keyfile) as server:
        assert server.url.startswith("wss://127.0.0.1:")
        async with websockets.connect(server.url, ssl=trusting(certfile)) as ws:
            welcome = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert welcome["type"] == "welcome"
            await ws.send(json.dumps({"type": "ping", "id": 1}))
            assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "pong"


async def test_fastcomm_client_over_wss(cert: tuple[str, str]) -> None:
    certfile, keyfile = cert
    async with running(ssl_certfile=certfile, ssl_keyfile=keyfile) as server:
        client = await fastcomm.Client.connect(server.url, ssl=trusting(certfile), reconnect=False)
        async with client:
            assert client.session
            sub = await client.subscribe("chat:tls")
            await client.publish("chat:tls", {"text": "hi"})
            async for pub in sub:
                assert pub.data == {"text": "hi"}
                break


async def test_client_without_the_certificate_is_refused(cert: tuple[str, str]) -> None:
    certfile, keyfile = cert
    async with running(ssl_certfile=certfile, ssl_keyfile=keyfile) as server:
        with pytest.raises(ssl.SSLCertVerificationError):
            await fastcomm.Client.connect(server.url, ssl=ssl.create_default_context())


async def test_plain_ws_client_against_the_tls_port_fails(cert: tuple[str, str]) -> None:
    certfile, keyfile = cert
    async with running(ssl_certfile=certfile, ssl_keyfile=keyfile) as server:
        plain = server.url.replace("wss://", "ws://")
        with pytest.raises((OSError, websockets.exceptions.WebSocketException, TimeoutError)):
            async with websockets.connect(plain, open_timeout=3) as ws:
                await ws.recv()


async def test_http_api_is_served_over_https(cert: tuple[str, str]) -> None:
    certfile, keyfile = cert
    port = free_port()
    options = {"api_key": KEY, "api_port": port, "ssl_certfile": certfile, "ssl_keyfile": keyfile}
    async with running(**options):

        def post(scheme: str) -> bytes:
            request = urllib.request.Request(
                f"{scheme}://127.0.0.1:{port}/api/info",
                data=b"{}",
                headers={"X-API-Key": KEY},
            )
            with urllib.request.urlopen(request, timeout=5, context=trusting(certfile)) as resp:
                return bytes(resp.read())

        assert "result" in json.loads(await asyncio.to_thread(post, "https"))
        with pytest.raises((OSError, http.client.HTTPException)):  # a TLS alert, not HTTP
            await asyncio.to_thread(post, "http")


def test_one_file_without_the_other_is_a_config_error(cert: tuple[str, str]) -> None:
    with pytest.raises(
        ConfigError, match="ssl_certfile is set but ssl_keyfile is not: TLS needs both"
    ):
        fastcomm.Server(ssl_certfile=cert[0])


def test_unreadable_file_names_it(tmp_path: Path, cert: tuple[str, str]) -> None:
    missing = str(tmp_path / "absent.pem")
    with pytest.raises(StartupError, match=f"cannot read ssl_keyfile {missing}"):
        fastcomm.Server(ssl_certfile=cert[0], ssl_keyfile=missing)


@pytest.fixture(scope="module")
def bad_files(cert: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Files that are wrong as a certificate or a key, each in its own way."""
    where = tmp_path_factory.mktemp("bad-tls")
    files = {"cert": cert[0], "key": cert[1]}
    for name, text in (
        ("junk", "not a key\n"),
        ("cut_cert", Path(cert[0]).read_text()[:300]),
        ("cut_key", Path(cert[1]).read_text()[:400]),
    ):
        (where / f"{name}.pem").write_text(text)
        files[name] = str(where / f"{name}.pem")
    files["encrypted"], files["other_key"] = str(where / "enc.pem"), str(where / "other.pem")
    subprocess.run(
        ["openssl", "pkey", "-in", cert[1], "-aes256", "-passout", "pass:pw",
         "-out", files["encrypted"]],
        check=True, capture_output=True,
    )  # fmt: skip
    subprocess.run(
        ["openssl", "genpkey", "-algorithm", "RSA", "-out", files["other_key"]],
        check=True, capture_output=True,
    )  # fmt: skip
    return files


@pytest.mark.parametrize(
    ("certfile", "keyfile", "message"),
    [
        ("key", "cert", "ssl_certfile {key} holds a private key and ssl_keyfile {cert} a "
         "certificate: the two are swapped"),
        ("key", "key", "ssl_certfile {key} holds a private key, not a certificate "
         "(expected -----BEGIN CERTIFICATE-----)"),
        ("junk", "key", "ssl_certfile {junk} holds no PEM certificate"),
        ("cert", "cert", "ssl_keyfile {cert} holds a certificate, not a private key "
         "(expected -----BEGIN PRIVATE KEY-----)"),
        ("cert", "junk", "ssl_keyfile {junk} holds no PEM key"),
        ("cert", "other_key", "ssl_keyfile {other_key} is not the private key of "
         "ssl_certfile {cert}"),
        ("cert", "encrypted", "ssl_keyfile {encrypted} is encrypted with a passphrase"),
        ("cut_cert", "key", "ssl_certfile {cut_cert}: the certificate is malformed"),
        ("cert", "cut_key", "ssl_keyfile {cut_key}: the private key is malformed"),
    ],
)  # fmt: skip
def test_a_wrong_file_is_named_with_why(
    bad_files: dict[str, str], certfile: str, keyfile: str, message: str
) -> None:
    with pytest.raises(StartupError) as info:
        fastcomm.Server(ssl_certfile=bad_files[certfile], ssl_keyfile=bad_files[keyfile])
    assert str(info.value).startswith(message.format(**bad_files))


@pytest.mark.parametrize("transport", ["picows", "granian"])
def test_cli_swapped_certificate_and_key(
    tmp_path: Path, cert: tuple[str, str], transport: str
) -> None:
    args = ("serve", "--transport", transport, "--port", "0")
    result = run_cli(*args, "--ssl-certfile", cert[1], "--ssl-keyfile", cert[0], cwd=tmp_path)
    assert_usage_error(result, "the two are swapped")
    assert result.stdout == ""


def test_cli_certfile_without_keyfile(tmp_path: Path, cert: tuple[str, str]) -> None:
    result = run_cli("serve", "--ssl-certfile", cert[0], cwd=tmp_path)
    assert_usage_error(result, "ssl_certfile is set but ssl_keyfile is not")


def test_cli_unreadable_certfile(tmp_path: Path, cert: tuple[str, str]) -> None:
    args = ("serve", "--port", "0", "--ssl-certfile", "absent.pem", "--ssl-keyfile", cert[1])
    assert_usage_error(run_cli(*args, cwd=tmp_path), "cannot read ssl_certfile absent.pem")
