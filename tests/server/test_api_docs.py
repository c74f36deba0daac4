"""``/docs`` works without Internet access: on both servers the page loads only the Swagger UI files
shipped in the package (each served with 200), and ``GET /`` points to it and to the API roots."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from pathlib import Path

import httpx

from loopline import api_docs

ASSET = re.compile(r'(?:src|href)="([^"]+)"')


def check_docs_page(get: object) -> None:
    """``get(path) -> httpx.Response``: the page, its assets, its document and the root pointer."""
    fetch = get  # type: ignore[assignment]
    root = fetch("/")
    assert root.status_code == 200 and root.json()["docs"] == "/docs", root.text
    page = fetch("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "http://" not in page.text and "https://" not in page.text, page.text
    assets = ASSET.findall(page.text)
    assert sorted(a.rsplit("/", 1)[-1] for a in assets) == sorted(api_docs.ASSETS)
    for url in assets:
        r = fetch(url)
        assert r.status_code == 200, url
        assert r.content == (api_docs.VENDOR / url.rsplit("/", 1)[-1]).read_bytes()
        assert r.headers["content-type"] == api_docs.ASSETS[url.rsplit("/", 1)[-1]]
    assert fetch(api_docs.ASSETS_PATH + "/VENDOR.json").status_code == 404  # only the page's files
    assert fetch(api_docs.ASSETS_PATH + "/..%2F..%2Fapi_docs.py").status_code == 404
    doc = fetch(root.json()["openapi"])
    assert doc.status_code == 200 and doc.json()["paths"]


def test_the_vendored_files_are_the_ones_recorded() -> None:
    record = json.loads((api_docs.VENDOR / "VENDOR.json").read_text())
    assert record["package"] == "swagger-ui-dist" and record["license"] == "Apache-2.0"
    assert record["source"].startswith("https://registry.npmjs.org/swagger-ui-dist/")
    for name, sha256 in record["files"].items():
        assert hashlib.sha256((api_docs.VENDOR / name).read_bytes()).hexdigest() == sha256, name
    assert set(api_docs.ASSETS) <= set(record["files"])


def test_loopline_server_serves_its_api_page_from_the_package(loopline_server: str) -> None:
    with httpx.Client(base_url=loopline_server) as http:
        check_docs_page(http.get)
        assert http.get("/redoc").status_code == 404  # Redoc would load from a CDN


def test_loopline_serve_documents_its_routes(tmp_path: Path) -> None:
    from serving.helpers import make_registry

    from loopline.serving import ServeConfig
    from loopline.serving.app import create_app

    registry = make_registry(tmp_path)

    async def scenario() -> None:
        config = ServeConfig(model_uri="models:/churn/1", poll_interval=0, inference_log=False)
        app = create_app(config, client=registry.client())
        await app.startup()
        try:
            await app.runtime.loaded()
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://s") as http:
                responses = {}
                paths = [
                    "/",
                    "/docs",
                    "/openapi.json",
                    *(f"{api_docs.ASSETS_PATH}/{n}" for n in api_docs.ASSETS),
                ]
                for path in [
                    *paths,
                    f"{api_docs.ASSETS_PATH}/VENDOR.json",
                    f"{api_docs.ASSETS_PATH}/..%2F..%2Fapi_docs.py",
                ]:
                    responses[path] = await http.get(path)
                check_docs_page(lambda path: responses[path])
                doc = responses["/openapi.json"].json()
                # Every route of the app is documented (those of the page itself aside).
                routes = set(app._static) - {"/", "/docs", "/openapi.json"}
                assert routes <= set(doc["paths"]), routes - set(doc["paths"])
                infer = doc["paths"]["/v2/models/{name}/infer"]["post"]["requestBody"]
                assert "f0 (FP64, shape [-1])" in json.dumps(infer) or "input-0" in json.dumps(infer)
        finally:
            await app.shutdown()

    asyncio.run(scenario())
