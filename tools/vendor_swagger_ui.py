"""Refresh the Swagger UI files that ``/docs`` serves from the installed package (``make vendor``).

Both servers serve Swagger UI's own files rather than a CDN's, so their API pages work on a cluster
without Internet access. This fetches ``swagger-ui-dist`` from the npm registry, checks the
tarball against the registry's integrity hash, and writes the few files the page needs, with
``VENDOR.json`` recording the version, licence, source and each file's sha256.

    python tools/vendor_swagger_ui.py [VERSION]     (default: the registry's latest)
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import sys
import tarfile
import urllib.request
from pathlib import Path

REGISTRY = "https://registry.npmjs.org"
PACKAGE = "swagger-ui-dist"
FILES = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png", "LICENSE", "NOTICE")
TARGET = Path(__file__).resolve().parents[1] / "src" / "loopline" / "static" / "swagger-ui"


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=120) as r:
        return bytes(r.read())


def main(version: str = "latest") -> None:
    meta = json.loads(_get(f"{REGISTRY}/{PACKAGE}/{version}"))
    tarball = _get(meta["dist"]["tarball"])
    algo, _, expected = meta["dist"]["integrity"].partition("-")
    if base64.b64encode(hashlib.new(algo, tarball).digest()).decode() != expected:
        sys.exit(f"{meta['dist']['tarball']} does not match the registry's {algo} integrity hash")
    TARGET.mkdir(parents=True, exist_ok=True)
    record: dict[str, object] = {
        "package": PACKAGE,
        "version": meta["version"],
        "license": meta["license"],
        "source": meta["dist"]["tarball"],
        "integrity": meta["dist"]["integrity"],
        "files": {},
    }
    with tarfile.open(fileobj=io.BytesIO(tarball)) as tar:
        for name in FILES:
            member = tar.extractfile(f"package/{name}")
            assert member is not None, name
            data = member.read()
            (TARGET / name).write_bytes(data)
            record["files"][name] = hashlib.sha256(data).hexdigest()  # type: ignore[index]
    (TARGET / "VENDOR.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"{PACKAGE} {meta['version']} ({meta['license']}) -> {TARGET}")


if __name__ == "__main__":
    main(*sys.argv[1:2])
