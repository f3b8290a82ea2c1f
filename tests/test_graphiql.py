"""GraphiQL as a person uses it: a real Chromium opens the page our server serves, the key
goes into the headers editor, and a query runs."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, sync_playwright

from personas.app import create_app
from personas.graphql import graphiql
from personas.settings import Settings
from tests.live import create_key, serving

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
QUERY = "{ personas(first: 1) { totalCount } }"
QUERY_EDITOR = ".graphiql-query-editor .CodeMirror"
EXPLORER_BUTTON = '.graphiql-sidebar button[aria-label*="GraphiQL Explorer"]'
UNAUTHORIZED = "the server responded with a status of 401 (Unauthorized)"
HEADERS_EDITOR = ".graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror"


def _chromium() -> str:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: .ci/run installs it (apt-get install chromium)")
        pytest.skip("needs Debian's chromium (apt-get install chromium)")
    return CHROMIUM


async def test_the_page_names_no_other_origin(client: httpx.AsyncClient) -> None:
    page = await client.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200
    assert page.headers["content-security-policy"] == graphiql.CONTENT_SECURITY_POLICY
    assert "default-src 'self'" in graphiql.CONTENT_SECURITY_POLICY
    assert not re.findall(r"(?:src|href)=\"(?:https?:)?//", page.text)
    for url in re.findall(r'(?:src|href)="(graphiql/[^"]+)"', page.text):
        asset = await client.get(f"/{url}")
        assert asset.status_code == 200, url
        assert asset.content


def test_each_vendored_asset_keeps_its_licence() -> None:
    vendor = graphiql.ASSETS / "vendor"
    for package in ("graphiql", "graphiql-plugin-explorer", "react", "react-dom"):
        assert "MIT" in (vendor / f"LICENSE.{package}").read_text()
    pinned = (vendor / "VERSIONS").read_text()
    script = (Path(__file__).parent.parent / "scripts" / "graphiql-assets").read_text()
    for line in pinned.splitlines():
        name, _, version = line.split()[0].rpartition("@")
        assert f"={version}" in script, f"{name}@{version} is not the version the script pins"


async def test_the_page_and_assets_need_no_key(settings: Settings) -> None:
    app = create_app(settings.replace(auth="required"))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
    ):
        page = await http.get("/graphql", headers={"accept": "text/html"})
        asset = await http.get("/graphiql/personas-graphiql.js")
        query = await http.get("/graphql", params={"query": "{ __typename }"})
        await app.state.store.drop_database()
    assert page.status_code == 200
    assert asset.status_code == 200
    assert query.status_code == 401


async def test_production_serves_neither_page_nor_assets(settings: Settings) -> None:
    app = create_app(settings.replace(env="production"))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
    ):
        page = await http.get("/graphql", headers={"accept": "text/html"})
        asset = await http.get("/graphiql/vendor/graphiql.min.js")
        await app.state.store.drop_database()
    assert "graphiql" not in page.text.lower()
    assert asset.status_code == 404


def paste(page: Page, editor: str, text: str) -> None:
    page.click(editor)
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(text)


def test_graphiql_runs_a_query_in_a_real_browser(settings: Settings, tmp_path: Path) -> None:
    executable = _chromium()
    token = create_key(settings)
    with serving(settings) as base, sync_playwright() as playwright:
        created = httpx.post(
            f"{base}/graphql",
            json={"query": 'mutation { createPersona(input: {name: "n", content: "c"}) { id } }'},
            headers={"authorization": f"Bearer {token}"},
        )
        assert "errors" not in created.json(), created.text
        context = playwright.chromium.launch_persistent_context(
            tmp_path / "profile",
            executable_path=executable,
            headless=True,
            args=CHROMIUM_FLAGS,
        )
        try:
            page = context.new_page()
            requested: list[str] = []
            problems: list[str] = []
            page.on("request", lambda request: requested.append(request.url))
            page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
            page.on(
                "console",
                lambda message: (
                    problems.append(f"console: {message.text}") if message.type == "error" else None
                ),
            )
            response = page.goto(f"{base}/graphql")
            assert response is not None
            assert response.status == 200
            assert response.headers["content-security-policy"] == graphiql.CONTENT_SECURITY_POLICY

            page.wait_for_selector(QUERY_EDITOR, timeout=20_000)
            assert page.locator(EXPLORER_BUTTON).count() == 1
            page.get_by_role("button", name="Headers").click()
            page.wait_for_selector(HEADERS_EDITOR, timeout=20_000)
            # What a user does: paste the key into the headers editor and the query into
            # the query editor, then press run once the tab has taken the new operation.
            paste(page, HEADERS_EDITOR, f'{{"Authorization": "Bearer {token}"}}')
            paste(page, QUERY_EDITOR, QUERY)
            page.locator(".graphiql-tab-active").get_by_text("<untitled>").wait_for()
            page.click(".graphiql-execute-button")
            result = page.locator(".result-window")
            try:
                result.get_by_text('"totalCount": 1').wait_for(timeout=20_000)
            finally:
                page.screenshot(path=tmp_path / "graphiql.png", full_page=True)
        finally:
            context.close()

    assert (tmp_path / "graphiql.png").stat().st_size > 0
    assert requested, "the page loaded nothing"
    assert all(url.startswith(f"{base}/") for url in requested), requested
    # Before the key is pasted, the schema's introspection is refused, as it should be.
    assert [problem for problem in problems if UNAUTHORIZED not in problem] == []
