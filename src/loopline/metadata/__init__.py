"""What every domain's SQL store stands on: the engine, the schema and its migrations, events and
lineage, the search grammar, pages.

Arrows point down only: this package never imports a domain. Each domain (``tracking``, ``registry``,
``data``, ``features``, ``pipelines``, ``monitoring``) keeps its own store on top of it. The tables
stay together here (``schema*.py``) because one Alembic history migrates them all at once.
"""

__all__: list[str] = []
