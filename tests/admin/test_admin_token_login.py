"""First start: ``gateway admin token create`` makes a token, its ``sha256:`` entry goes
into the config, and the token logs into the support page over real HTTP on loopback;
``GET /login`` is the form and ``/`` sends a visitor who is not logged in there."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import html
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx

from gateway import config as config_module
from gateway.admin.app import build_admin_app, serve_http
from tests.admin.support import SECRET, Env, make_config
from tests.scenarios.test_cli import gateway
from tests.waiting import wait_until


async def _create(*options: str) -> tuple[str, str, str]:
    """Run the command as a user would; (token, config entry, environment line)."""
    code, out, _ = await gateway("admin", "token", "create", *options)
    assert code == 0, out
    token_line, config_line, env_line = out.splitlines()[1:]
    token = token_line.strip()
    assert out.count(token) == 1  # shown once, and the hash is not the token
    entry = re.fullmatch(
        r'add to \[admin\] \w+ in your config: "(sha256:[0-9a-f]{64})"', config_line
    )
    assert entry is not None, config_line
    return token, entry.group(1), env_line


@asynccontextmanager
async def _served(env: Env, tmp: Path, **admin: object) -> AsyncIterator[httpx.AsyncClient]:
    app = build_admin_app(dataclasses.replace(env.deps, config=make_config(tmp, env.dns, **admin)))
    stopping = asyncio.Event()
    ports: list[int] = []
    async with asyncio.timeout(20), asyncio.TaskGroup() as tasks:
        tasks.create_task(serve_http(app, "127.0.0.1", 0, stopping, on_listening=ports.append))
        try:
            await wait_until(lambda: ports, 5, what="the admin listener up")
            base = f"http://127.0.0.1:{ports[0]}"
            async with httpx.AsyncClient(base_url=base, timeout=5) as client:
                yield client
        finally:
            stopping.set()


async def test_a_made_token_stored_as_its_hash_logs_into_the_support_page(
    env: Env, tmp_path: Path
) -> None:
    token, entry, env_line = await _create("--config", str(tmp_path / "no-config-needed.toml"))
    assert len(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))) >= 32
    assert entry == "sha256:" + hashlib.sha256(token.encode()).hexdigest()
    ro_token, ro_entry, ro_env_line = await _create("--read-only")
    assert ro_token != token

    # The printed environment form loads as the list holding only the hash.
    site = tmp_path / "site.toml"
    site.write_text(f'[bounce]\nsecret = "{SECRET}"\n', encoding="utf-8")
    for line, key, wanted in (
        (env_line, "tokens", entry),
        (ro_env_line, "read_only_tokens", ro_entry),
    ):
        found = re.search(r"(GATEWAY__ADMIN__\w+)='(.+)'$", line)
        assert found is not None, line
        loaded = config_module.load(site, env={found.group(1): found.group(2)})
        assert getattr(loaded.admin, key) == (wanted,)

    async with _served(env, tmp_path, tokens=[entry], read_only_tokens=[ro_entry]) as client:
        form = await client.get("/login")
        assert form.status_code == 200
        assert form.headers["content-type"].startswith("text/html")
        assert '<form method="post" action="/login">' in form.text
        assert 'name="token"' in form.text

        first = await client.get("/")
        assert first.status_code == 303
        assert urlsplit(first.headers["location"]).path == "/login"
        deep = await client.get("/support", params={"address": "ana@example.com", "lang": "en"})
        assert deep.status_code == 303
        target = parse_qs(urlsplit(deep.headers["location"]).query)["next"][0]
        assert target == "/support?address=ana%40example.com&lang=en"
        assert (
            f'name="next" value="{html.escape(target)}"'
            in (await client.get(deep.headers["location"])).text
        )

        bad = await client.post("/login", data={"token": entry})  # the hash is no password
        assert bad.status_code == 401
        logged = await client.post("/login", data={"token": token, "next": target})
        assert logged.status_code == 303
        assert logged.headers["location"] == target
        page = await client.get("/")
        assert page.status_code == 200
        assert 'action="/support"' in page.text
        again = await client.get("/login", params={"lang": "en"})
        assert (again.status_code, again.headers["location"]) == (303, "/?lang=en")

    async with _served(env, tmp_path, tokens=[entry], read_only_tokens=[ro_entry]) as client:
        # A bearer token still opens the page directly, for scripts.
        direct = await client.get("/", headers={"Authorization": f"Bearer {ro_token}"})
        assert direct.status_code == 200
        assert 'action="/support"' in direct.text
        # next never leads off this site.
        for away in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
            r = await client.post("/login", data={"token": ro_token, "next": away, "lang": "en"})
            assert (r.status_code, r.headers["location"]) == (303, "/?lang=en")
        read_only = {"Authorization": f"Bearer {ro_token}"}
        assert (await client.get("/api/v1/tenants", headers=read_only)).status_code == 200
        write = await client.post("/api/v1/tenants", json={"name": "x"}, headers=read_only)
        assert write.status_code == 403


async def test_json_output_for_scripts(tmp_path: Path) -> None:
    code, out, _ = await gateway("admin", "token", "create", "--json", "--read-only")
    assert code == 0
    made = json.loads(out)
    assert made["entry"] == "sha256:" + hashlib.sha256(made["token"].encode()).hexdigest()
    assert (made["read_only"], made["config_key"]) == (True, "admin.read_only_tokens")
    site = tmp_path / "site.toml"
    site.write_text(f'[bounce]\nsecret = "{SECRET}"\n', encoding="utf-8")
    loaded = config_module.load(site, env=made["env"])
    assert loaded.admin.read_only_tokens == (made["entry"],)
    assert loaded.admin.tokens == ()
