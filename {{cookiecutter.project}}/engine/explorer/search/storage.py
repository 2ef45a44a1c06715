"""Where a study lives. The default is SQLite under ``results/`` because Optuna's heartbeat
(stale-trial detection and retry after a ``kill -9``) needs an RDB storage; WAL mode with
``synchronous=NORMAL`` makes each of Optuna's many small commits skip the disk flush (a killed
process loses nothing; only a power cut may drop the last commits). Any Optuna storage URL
works; several workers on one study need PostgreSQL (or a journal file, without heartbeat)."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import optuna
from sqlalchemy import event
from sqlalchemy.engine import Engine
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

from ..errors import UserError

HEARTBEAT_SECONDS = 2
GRACE_SECONDS = 6


@event.listens_for(Engine, "connect")
def _fast_sqlite(connection, record) -> None:
    """Per-connection pragma for SQLite studies (WAL itself is set once on the file)."""
    if isinstance(connection, sqlite3.Connection):
        connection.execute("PRAGMA synchronous=NORMAL")


def default_url(results: Path) -> str:
    return f"sqlite:///{(results / 'optuna.db').resolve()}"


def shown(url: str) -> str:
    """The URL as it may be printed: a password is never shown."""
    if "://" not in url or "@" not in url:
        return url
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a database URL: keep only what follows the credentials
        return url.split("://", 1)[0] + "://***@" + url.rsplit("@", 1)[1]


def check_workers(url: str, workers: int) -> None:
    """SQLite cannot take several writing processes: say so before anything starts."""
    if workers > 1 and url.startswith("sqlite:"):
        raise UserError(f"{workers} workers cannot share the SQLite storage {shown(url)}",
                        hint="use a PostgreSQL URL (--storage postgresql://...) or journal:results/study.log")


def open_storage(url: str, workers: int = 1) -> optuna.storages.BaseStorage:
    """An Optuna storage for ``url``: RDB with heartbeat, or a journal file (``journal:PATH``)."""
    check_workers(url, workers)
    try:
        if url.startswith("journal:"):
            from optuna.storages.journal import JournalFileBackend, JournalStorage

            path = Path(url.removeprefix("journal:"))
            path.parent.mkdir(parents=True, exist_ok=True)
            return JournalStorage(JournalFileBackend(str(path)))
        if url.startswith("sqlite:"):
            if not url.startswith("sqlite:///") or url == "sqlite:///":
                raise UserError(f"storage {url} names no database file", hint="e.g. sqlite:///results/optuna.db")
            path = Path(url.removeprefix("sqlite:///"))
            path.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.closing(sqlite3.connect(path)) as db:
                db.execute("PRAGMA journal_mode=WAL")
    except (OSError, sqlite3.Error) as exc:
        raise UserError(f"cannot create storage {shown(url)}: {exc}", hint="check the path and its permissions") from None
    if url.startswith("postgresql"):
        from ..errors import require_extra

        require_extra("psycopg2", "postgres")
    engine_url = url
    if url.startswith("postgresql://"):  # SQLAlchemy 2.1 defaults to psycopg 3; the extra installs psycopg2
        engine_url = "postgresql+psycopg2://" + url.removeprefix("postgresql://")
    try:
        return RDBStorage(engine_url, engine_kwargs={"pool_pre_ping": True}, heartbeat_interval=HEARTBEAT_SECONDS,
                          grace_period=GRACE_SECONDS,
                          heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=2))
    except Exception as exc:  # a wrong URL or an unreachable database is the user's to fix
        raise UserError(f"cannot open storage {shown(url)}: {type(exc).__name__}: {str(exc).splitlines()[0]}",
                        hint="check the storage URL and that the database server runs") from None
