"""Kubernetes names and label values made from any text (a registered model's name, a version).

Kubernetes refuses an object whose name is not a DNS label (RFC 1123: lowercase letters, digits and
``-``, starting and ending with a letter or digit; Services, KServe and Knative also want a letter
first, as RFC 1035 does) or whose label values are longer than 63 characters or hold spaces. A
model name such as ``Churn Model (EU)`` is neither. Both helpers keep a text that is already valid as
it is; any other text is cleaned, cut to fit, and given a short hash of the *original* text, so two
models whose names clean to the same string (``churn model``, ``Churn-Model``) still get distinct
names and label values. A ``suffix`` (``-v3``) is never cut: versions of one model never collide.
"""

from __future__ import annotations

import hashlib
import re

LABEL_MAX = 63  # a DNS label, and a label value
_HASH_LEN = 6
_DNS_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:_HASH_LEN]


def dns_label(text: str, *, suffix: str = "", limit: int = LABEL_MAX) -> str:
    """``text + suffix`` as a DNS label of at most ``limit`` characters that starts with a letter.

    ``suffix`` must itself be lowercase letters, digits and ``-``; it is kept whole.
    """
    if not re.fullmatch(r"[-a-z0-9]*", suffix) or len(suffix) > limit - _HASH_LEN - 2:
        raise ValueError(f"suffix {suffix!r} cannot end a DNS label of {limit} characters")
    if len(text) + len(suffix) <= limit and _DNS_LABEL.fullmatch(text + suffix):
        return text + suffix
    base = re.sub(r"-+", "-", re.sub(r"[^a-z0-9]+", "-", text.lower())).strip("-")
    if not base[:1].isalpha():
        base = f"m-{base}".rstrip("-")  # "3d-model" -> "m-3d-model": a name starts with a letter
    tail = f"-{_hash(text)}{suffix}"
    return base[: limit - len(tail)].rstrip("-") + tail


def label_value(text: str) -> str:
    """``text`` as a valid label value (at most 63 characters; letters, digits, ``-``, ``_``, ``.``)."""
    if len(text) <= LABEL_MAX and _LABEL_VALUE.fullmatch(text):
        return text
    base = re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-_.")
    tail = _hash(text)
    return f"{base[: LABEL_MAX - len(tail) - 1].rstrip('-_.')}-{tail}".lstrip("-")
