"""Search clauses of the SQL registry store: MLflow's filter and order-by grammar on models,
versions and logged models (``attribute`` and ``tags.<key>`` terms)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, select

from loopline.errors import InvalidInput
from loopline.metadata.filter import Attributes, parse_filter, parse_order_by
from loopline.metadata.search import compare


def apply_filter(
    q: Select[Any],
    filter_string: str | None,
    attrs: Attributes,
    columns: Mapping[str, Any],
    tag_table: Any,
    owner: ColumnElement[bool],
) -> Select[Any]:
    """Attribute and ``tags.<key>`` clauses; ``owner`` joins a tag row to the object it tags."""
    for c in parse_filter(filter_string, attrs):
        if c.kind == "attribute":
            q = q.where(compare(columns[c.key], c.op, c.value))
        elif c.kind == "tag":
            sub = select(tag_table.c.key).where(owner, tag_table.c.key == c.key)
            if c.op in ("IS NULL", "IS NOT NULL"):
                q = q.where(~sub.exists() if c.op == "IS NULL" else sub.exists())
            else:
                q = q.where(sub.where(compare(tag_table.c.value, c.op, c.value)).exists())
        else:
            raise InvalidInput(
                f"Cannot filter by {c.kind}s here.", hint="Use name, tags.<key> or the listed attributes."
            )
    return q


def order_clauses(order_by: Sequence[str] | None, attrs: Attributes, columns: Mapping[str, Any]) -> list[Any]:
    out = []
    for ob in parse_order_by(order_by, attrs):
        if ob.kind != "attribute":
            raise InvalidInput(
                f"Cannot order by {ob.kind}s here.", hint=f"Order by one of {', '.join(sorted(columns))}."
            )
        out.append(columns[ob.key].asc() if ob.ascending else columns[ob.key].desc())
    return out
