"""Fixtures of the PostgreSQL tests: one initdb per session, one server per module."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.postgres.pg_server import (
    NoServer,
    PgServer,
    find_bin_dir,
    in_ci,
    make_template,
    running_server,
)


def _unavailable(reason: str) -> None:
    if in_ci():
        pytest.fail(f"PostgreSQL is required under CI: {reason}")
    pytest.skip(f"no PostgreSQL for the tests: {reason}")


@pytest.fixture(scope="session")
def pg_template() -> Iterator[tuple[Path, Path]]:
    """(bin folder, template data folder) made by initdb once per test session."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _unavailable("psycopg is not installed (pip install -e '.[test]')")
    try:
        bin_dir = find_bin_dir()
        template = make_template(bin_dir)
    except NoServer as exc:
        _unavailable(str(exc))
        raise
    yield bin_dir, template
    shutil.rmtree(template.parent, ignore_errors=True)


@pytest.fixture(scope="module")
def pg_server(pg_template: tuple[Path, Path]) -> Iterator[PgServer]:
    """A server of this test module's own (a copy of the template)."""
    bin_dir, template = pg_template
    try:
        with running_server(template, bin_dir) as server:
            yield server
    except NoServer as exc:
        _unavailable(str(exc))


@pytest.fixture
def pg_url(pg_server: PgServer) -> Iterator[str]:
    """A fresh, empty database of the module's server, for one test."""
    import uuid

    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server.url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield pg_server.url.replace("/postgres?", f"/{name}?")
