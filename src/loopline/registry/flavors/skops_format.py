"""skops files, written and read the one way both skops-saving flavors (sklearn, lightgbm) share.

A skops file holds no code: loading it rebuilds only types on a trusted list. The list is skops'
defaults (built once per process, when ``skops.io`` is first imported) plus the types this module
passes to ``skops.io.load(file, trusted=...)``:

- the flavor's own classes (``always``: LightGBM's, which hold no code);
- the types the model's MLmodel lists (``skops_trusted_types``, recorded when it was saved), only
  when the registry verified the files' digests: otherwise whoever wrote the folder chose that list;
- every type the file names, only when the user opted in to running the author's code
  (``allow_pickle``).

Anything else is refused with ``InvalidInput``, before any of the file's objects is built.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from loopline.errors import InvalidInput
from loopline.registry.flavors.base import Trust

PICKLE_FILE = "model.pkl"


def save(model: Any, path: Path, filename: str = "model.skops") -> tuple[str, str, list[str] | None]:
    """Write ``model`` to ``path / filename`` with skops: ``("skops", filename, the types outside
    skops' defaults that it names)``. Without skops, or with a type skops cannot serialise, it is
    pickled instead: ``("pickle", "model.pkl", None)``, which loads only with ``allow_pickle``."""
    try:
        import skops.io as sio

        sio.dump(model, path / filename)
        return "skops", filename, sio.get_untrusted_types(file=path / filename)  # our own model, just written
    except Exception:  # skops missing, or a type it cannot serialise
        (path / filename).unlink(missing_ok=True)
    with open(path / PICKLE_FILE, "wb") as f:
        pickle.dump(model, f, protocol=pickle.HIGHEST_PROTOCOL)
    return "pickle", PICKLE_FILE, None


def trusted_types(
    file: Path, listed: Sequence[str] | None, trust: Trust, always: Iterable[str] = ()
) -> list[str]:
    """What ``load`` trusts beyond skops' defaults for ``file`` (see the module's docstring)."""
    trusted = set(always)
    if trust.verified:
        trusted.update(listed or ())
    if trust.code_allowed:
        import skops.io as sio

        trusted.update(sio.get_untrusted_types(file=file))
    return sorted(trusted)


def load(file: Path, listed: Sequence[str] | None, trust: Trust, always: Iterable[str] = ()) -> Any:
    """The object in skops ``file``, refused if it names a type outside ``trusted_types``."""
    import skops.io as sio

    try:
        return sio.load(file, trusted=trusted_types(file, listed, trust, always))
    except sio.exceptions.UntrustedTypesFoundException as e:
        raise InvalidInput(
            f"The skops file names types that are not on the trusted list: {str(e).rstrip('.')}.",
            hint="Load it through the registry (which verifies the model's files), or pass "
            "allow_pickle=True if you trust its author.",
        ) from None
