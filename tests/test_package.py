"""The package's promises: a cheap, side-effect-free import, one sorted public API, kept layers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import loopline

ROOT = Path(__file__).resolve().parents[1]


def test_all_is_sorted_and_every_name_resolves() -> None:
    assert loopline.__all__ == sorted(loopline.__all__)
    for name in loopline.__all__:
        assert getattr(loopline, name) is not None, name


def test_import_loads_no_heavy_dependency_and_touches_no_file(tmp_path: Path) -> None:
    code = (
        "import sys, loopline\n"
        "heavy = ('sqlalchemy', 'fastapi', 'pydantic', 'pandas', 'httpx', 'sklearn')\n"
        "heavy = [m for m in heavy if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""
    assert list(tmp_path.iterdir()) == []  # no .loopline folder made by importing


def test_layer_contracts_hold() -> None:
    exe = Path(sys.executable).parent / "lint-imports"
    out = subprocess.run([str(exe)], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_migration_head_constant_matches_the_scripts() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from loopline.metadata import engine

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(engine.__file__).parent / "migrations"))
    assert ScriptDirectory.from_config(cfg).get_current_head() == engine.HEAD_REVISION


def test_migrated_schema_matches_the_table_definitions(tmp_path: Path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from loopline.metadata.engine import create_store_engine
    from loopline.metadata.schema import metadata

    eng = create_store_engine(f"sqlite:///{tmp_path / 'm.db'}")
    with eng.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == [], "schema.py changed without a migration: add one under store/migrations/versions"


def test_the_type_checkers_imports_mirror_the_lazy_table() -> None:
    """``loopline/__init__.py`` lists its public names once, in ``_LAZY``; the imports that only type
    checkers see must name the same objects, or an IDE and the runtime would disagree."""
    import ast
    import importlib

    tree = ast.parse((ROOT / "src" / "loopline" / "__init__.py").read_text())
    block = next(
        n for n in tree.body if isinstance(n, ast.If) and getattr(n.test, "id", "") == "TYPE_CHECKING"
    )
    typed = {
        (alias.asname or alias.name): node.module
        for node in block.body
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("loopline")
        for alias in node.names
    }
    lazy: dict[str, str] = loopline._LAZY  # type: ignore[attr-defined]
    assert set(typed) == set(lazy)
    for name, module in typed.items():
        assert getattr(importlib.import_module(module), name) is getattr(loopline, name), name


def test_no_lazy_public_name_is_also_a_submodule_name() -> None:
    """A package whose lazy table exports ``f`` from a submodule also named ``f`` hands out the
    submodule once anything imports it (Python binds submodules on their package):
    ``loopline.evaluate`` and ``loopline.registry.evaluate`` did, until the module was renamed."""
    import importlib
    import importlib.util

    for init in sorted((ROOT / "src" / "loopline").rglob("__init__.py")):
        package = ".".join(init.parent.relative_to(ROOT / "src").parts)
        module = importlib.import_module(package)
        for name in getattr(module, "_LAZY", {}):
            assert importlib.util.find_spec(f"{package}.{name}") is None, f"{package}.{name}"
