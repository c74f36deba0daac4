"""The installed Loopline as a wheel, for ``loopline deploy build``'s image.

The image must run the Loopline that built the bundle, and no package index needs to have that
version (a development build, a fork, 0.1.0 before a release). So the bundle carries it: the
imported package's files (``loopline/``, without bytecode) and the installed distribution's
metadata (``METADATA``, and ``entry_points.txt`` for the ``loopline`` command), zipped as a pure
Python wheel (``py3-none-any``, PEP 427) with its ``RECORD``. Entries are sorted and dated 1980-01-01,
so one source tree gives one wheel, byte for byte. No build backend or network is needed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import zipfile
from pathlib import Path
from urllib.parse import unquote, urlparse

from loopline._version import __version__
from loopline.errors import InvalidInput

_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip can hold
_WHEEL = f"Wheel-Version: 1.0\nGenerator: loopline {__version__}\nRoot-Is-Purelib: true\nTag: py3-none-any\n"


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def _package_files() -> dict[str, bytes]:
    root = Path(__file__).resolve().parents[1]  # the imported loopline/
    return {
        f"loopline/{path.relative_to(root).as_posix()}": path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".pyo")
    }


def _metadata() -> dict[str, bytes]:
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        dist = distribution("loopline")
    except PackageNotFoundError:
        raise InvalidInput(
            "Loopline is imported but not installed as a package, so it cannot be packed as a wheel.",
            hint="Install it (pip install -e <your loopline checkout>), then build again.",
        ) from None
    files = {name: dist.read_text(name) for name in ("METADATA", "entry_points.txt")}
    if not files["METADATA"]:
        raise InvalidInput("The installed Loopline has no METADATA.", hint="Reinstall it.")
    # The version the image reports is the one of the code packed, whatever the metadata says.
    lines = [
        f"Version: {__version__}" if line.startswith("Version:") else line
        for line in (files["METADATA"] or "").splitlines()
    ]
    files["METADATA"] = "\n".join(lines) + "\n"
    return {name: text.encode() for name, text in files.items() if text}


def write_wheel(folder: Path) -> Path:
    """Write ``loopline-<version>-py3-none-any.whl`` into ``folder``; return its path."""
    info = f"loopline-{__version__}.dist-info"
    entries = _package_files()
    entries.update({f"{info}/{name}": data for name, data in _metadata().items()})
    entries[f"{info}/WHEEL"] = _WHEEL.encode()
    record = "".join(f"{name},{_record_hash(data)},{len(data)}\n" for name, data in entries.items())
    entries[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode()
    path = Path(folder) / f"loopline-{__version__}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            item = zipfile.ZipInfo(name, date_time=_DATE)
            item.external_attr = 0o644 << 16
            item.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(item, data)
    return path


def wheel_step(folder: Path) -> str:
    """The command that builds the wheel from the source checkout Loopline was installed from
    (``pip install -e .``), or "" when it came from a package index."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        text = distribution("loopline").read_text("direct_url.json")
    except PackageNotFoundError:
        return ""
    url = urlparse(json.loads(text).get("url", "")) if text else None
    if url is None or url.scheme != "file":
        return ""
    return f"pip wheel --no-deps {unquote(url.path)} -w {folder}"
