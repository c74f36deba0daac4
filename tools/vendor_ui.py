"""Refresh the web UI's vendored JavaScript and CSS from the npm registry (``make vendor``).

``src/loopline/server/ui/static/vendor/VENDOR.json`` names each package (name, version, licence, the
tarball's URL on the npm registry and its sha512 ``integrity``) and the files taken from it, each with
its sha256. This script downloads each tarball, checks its integrity, extracts the listed files and
checks their sha256 before writing them: a changed upstream file fails loudly instead of landing.

To move to a new version, edit ``version`` and ``source``, then run with ``--pin``: it records the new
tarball's integrity and the files' sha256 (review the diff like any other code change).

Standard library only, so it runs before any install; no npm needed.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import sys
import tarfile
import urllib.request
from pathlib import Path

VENDOR = Path(__file__).resolve().parents[1] / "src/loopline/server/ui/static/vendor"
MANIFEST = VENDOR / "VENDOR.json"


def _download(url: str) -> bytes:
    if not url.startswith("https://registry.npmjs.org/"):
        sys.exit(f"refusing {url}: vendored files come from the npm registry only")
    with urllib.request.urlopen(url, timeout=60) as answer:
        data: bytes = answer.read()
    return data


def _sri(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def refresh(pin: bool) -> int:
    manifest = json.loads(MANIFEST.read_text())
    failures = 0
    for package in manifest["packages"]:
        tarball = _download(package["source"])
        integrity = _sri(tarball)
        if pin:
            package["integrity"] = integrity
        elif integrity != package["integrity"]:
            print(f"{package['name']}: tarball integrity {integrity} != recorded {package['integrity']}")
            failures += 1
            continue
        with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
            for file in package["files"]:
                member = tar.extractfile("package/" + file["from"])
                if member is None:
                    sys.exit(f"{package['name']}: {file['from']} is not a file in {package['source']}")
                content = member.read()
                digest = hashlib.sha256(content).hexdigest()
                if pin:
                    file["sha256"] = digest
                elif digest != file["sha256"]:
                    print(f"{package['name']}: {file['from']} sha256 {digest} != recorded {file['sha256']}")
                    failures += 1
                    continue
                target = VENDOR / file["to"]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(content)
                print(f"{package['name']}@{package['version']}: {file['to']} ({len(content):,} bytes)")
    if pin:
        MANIFEST.write_text(json.dumps(manifest, indent=2) + "\n")
    return 1 if failures else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pin", action="store_true", help="record new integrity and sha256 values")
    sys.exit(refresh(parser.parse_args().pin))


if __name__ == "__main__":
    main()
