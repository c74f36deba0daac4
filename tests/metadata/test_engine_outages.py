"""Which database errors are outages (503, connection replaced) and which are refusals."""

from __future__ import annotations

import psycopg
import pytest
import sqlalchemy as sa
from psycopg import errors as pg

from loopline.errors import BackendUnavailable
from loopline.metadata.engine import create_store_engine, is_outage, session_ended, write_transaction


def _raised_while_handling(first: BaseException, then: BaseException) -> BaseException:
    try:
        try:
            raise first
        except BaseException:
            raise then  # noqa: B904  # as psycopg's pipeline raises it: context, not cause
    except BaseException as e:
        return e


def test_a_session_the_server_ended_is_known_by_its_sqlstate_or_its_context() -> None:
    assert session_ended(pg.AdminShutdown("terminating connection due to administrator command"))
    # psycopg's executemany, its session ended mid-batch: a plain OperationalError, the cause behind it.
    busy = "cannot exit pipeline mode while busy"
    assert session_ended(
        _raised_while_handling(pg.AdminShutdown("terminating"), psycopg.OperationalError(busy))
    )
    assert not session_ended(psycopg.OperationalError(busy))
    assert not session_ended(pg.UniqueViolation("duplicate key value"))
    assert not session_ended(_raised_while_handling(pg.UniqueViolation("duplicate"), ValueError("x")))


def test_outages_are_operational_errors_and_invalidated_connections_not_refusals() -> None:
    def wrapped(orig: Exception, *, invalidated: bool = False) -> sa.exc.DBAPIError:
        err = sa.exc.DBAPIError.instance(
            "SELECT 1", {}, orig, psycopg.Error, connection_invalidated=invalidated
        )
        assert isinstance(err, sa.exc.DBAPIError)
        return err

    assert is_outage(wrapped(pg.AdminShutdown("terminating")))  # an OperationalError
    assert is_outage(wrapped(psycopg.InterfaceError("the connection is closed")))
    assert is_outage(wrapped(pg.UniqueViolation("dup"), invalidated=True))
    assert not is_outage(wrapped(pg.UniqueViolation("dup")))  # an IntegrityError: the statement's fault


@pytest.mark.postgres
def test_a_write_whose_session_is_ended_is_backend_unavailable_and_the_pool_recovers(
    postgres_uri: str,
) -> None:
    engine = create_store_engine(postgres_uri)
    try:
        with pytest.raises(BackendUnavailable) as out, write_transaction(engine) as conn:
            conn.exec_driver_sql("SELECT pg_terminate_backend(pg_backend_pid())")
        assert "terminating connection" in out.value.message and "SELECT" not in out.value.message
        with engine.connect() as conn:  # the next checkout gets a live connection
            assert conn.exec_driver_sql("SELECT 1").scalar() == 1
    finally:
        engine.dispose()
