"""The OpenAPI document agrees with the routes; TLS gives __Host- Secure cookies; staff store."""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
from pathlib import Path

import aiohttp
import pytest

from controller.cli import main as cli_main
from controller.clock import SystemClock
from controller.site import build_site
from controller.web.app import build_app, start_web, tls_context
from controller.web.demo import ensure_demo_staff
from controller.web.openapi import openapi_document
from controller.web.staff import StaffError, StaffStore
from tests.web.conftest import HDR, PINS, WebRig, web_config

METHODS = {"get", "post", "put", "patch", "delete"}


def test_every_route_is_documented_and_every_documented_route_exists(web: WebRig) -> None:
    routes = set()
    for route in web.app.router.routes():
        if route.method == "HEAD" or route.name == "static":
            continue
        routes.add((route.method.lower(), route.resource.canonical))  # type: ignore[union-attr]
    doc = openapi_document(session_cookie="x")
    documented = {(m, p) for p, ops in doc["paths"].items() for m in ops if m in METHODS}
    assert routes == documented


def test_document_is_valid_openapi_3_1() -> None:
    schemathesis = pytest.importorskip("schemathesis")
    schema = schemathesis.openapi.from_dict(openapi_document(session_cookie="sessionctl-session"))
    operations = [op for op in schema.get_all_operations()]
    assert len(operations) == 26
    assert all(op.ok() for op in operations)


def _self_signed(folder: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("openssl is required under CI for the TLS test")
        pytest.skip("openssl not installed")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


async def test_tls_host_prefixed_secure_cookies(tmp_path: Path, staff_template: Path) -> None:
    cert, key = _self_signed(tmp_path)
    config = web_config(tmp_path, tls_cert=str(cert), tls_key=str(key))
    (tmp_path / "staff.json").write_bytes(staff_template.read_bytes())
    site = build_site(config, clock=SystemClock())
    await site.start()
    runner = await start_web(site, config.site.web)
    try:
        port = runner.addresses[0][1]
        trust = ssl.create_default_context(cafile=str(cert))
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as http:
            base = f"https://127.0.0.1:{port}"
            r = await http.post(
                f"{base}/api/v1/login",
                json={"staff": "nurse-1", "pin": PINS["nurse-1"]},
                headers=HDR,
                ssl=trust,
            )
            assert r.status == 200
            raw = r.headers.getall("Set-Cookie")
            session = next(c for c in raw if c.startswith("__Host-sessionctl="))
            for flag in ("Secure", "HttpOnly", "SameSite=Strict", "Path=/"):
                assert flag in session
            assert "Domain" not in session
            assert r.headers["Strict-Transport-Security"].startswith("max-age=")
            r = await http.post(
                f"{base}/api/v1/pair", json={"room": "room-1"}, headers=HDR, ssl=trust
            )
            device = next(c for c in r.headers.getall("Set-Cookie") if "device" in c)
            assert device.startswith("__Host-sessionctl-device=") and "Secure" in device
            r = await http.get(f"{base}/api/v1/me", ssl=trust)
            assert (await r.json())["room"] == "room-1"
            assert tls_context(config.site.web).minimum_version == ssl.TLSVersion.TLSv1_2  # type: ignore[union-attr]
    finally:
        await runner.cleanup()
        await site.close()


def test_staff_store_hashes_and_file_mode(tmp_path: Path) -> None:
    store = StaffStore(tmp_path)
    pin = store.add("nurse-7")
    assert len(pin) == 8 and pin.isdigit()
    assert store.verify("nurse-7", pin)
    assert not store.verify("nurse-7", "12345679")
    assert not store.verify("nobody", pin)
    text = store.path.read_text()
    assert pin not in text and "scrypt$16384$8$1$" in text
    assert oct(store.path.stat().st_mode & 0o777) == "0o600"
    with pytest.raises(StaffError):
        store.add("nurse-7", "864209")
    for weak in ("1234", "111111", "123456", "987654"):
        with pytest.raises(StaffError):
            store.add("nurse-8", weak)
    with pytest.raises(StaffError):
        store.add("Jane Doe", "864209")
    # Another process (the CLI) changes the file: the running store sees it.
    StaffStore(tmp_path).remove("nurse-7")
    assert "nurse-7" not in store


def test_staff_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["staff", "--state-dir", str(tmp_path), "add", "nurse-5"]) == 0
    pin = capsys.readouterr().out.split()[-1]
    assert StaffStore(tmp_path).verify("nurse-5", pin)
    assert cli_main(["staff", "--state-dir", str(tmp_path), "list"]) == 0
    assert capsys.readouterr().out.startswith("nurse-5\t")
    assert cli_main(["staff", "--state-dir", str(tmp_path), "remove", "nurse-5"]) == 0
    assert cli_main(["staff", "--state-dir", str(tmp_path), "remove", "nurse-5"]) == 1


def test_demo_staff_is_random_and_stable(tmp_path: Path) -> None:
    staff, pin = ensure_demo_staff(tmp_path)
    assert (staff, pin) == ensure_demo_staff(tmp_path)
    assert StaffStore(tmp_path).verify(staff, pin)
    other = ensure_demo_staff(tmp_path / "elsewhere")[1]
    assert other != pin or len(pin) == 8


async def test_build_app_runs_on_a_real_port(tmp_path: Path, staff_template: Path) -> None:
    config = web_config(tmp_path, public_api_docs=True)
    site = build_site(config, clock=SystemClock())
    await site.start()
    runner = await start_web(site, config.site.web, app=build_app(site, config.site.web))
    try:
        port = runner.addresses[0][1]
        async with aiohttp.ClientSession() as http:
            r = await http.get(f"http://127.0.0.1:{port}/api/v1/openapi.json")
            assert r.status == 200
    finally:
        await runner.cleanup()
        await site.close()
