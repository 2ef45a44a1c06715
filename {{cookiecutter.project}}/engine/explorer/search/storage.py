"""Where a study lives. The default is SQLite under ``results/`` because Optuna's heartbeat
(stale-trial detection and retry after a ``kill -9``) needs an RDB storage; WAL mode makes
it about twice as fast as SQLite's default journal. Any Optuna storage URL works; several
workers on one study need PostgreSQL (or a journal file, without heartbeat)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

from ..errors import UserError

HEARTBEAT_SECONDS = 2
GRACE_SECONDS = 6


def default_url(results: Path) -> str:
    return f"sqlite:///{(results / 'optuna.db').resolve()}"


def check_workers(url: str, workers: int) -> None:
    """SQLite cannot take several writing processes: say so before anything starts."""
    if workers > 1 and url.startswith("sqlite:"):
        raise UserError(f"{workers} workers cannot share the SQLite storage {url}",
                        hint="use a PostgreSQL URL (--storage postgresql://...) or journal:results/study.log")


def open_storage(url: str, workers: int = 1) -> optuna.storages.BaseStorage:
    """An Optuna storage for ``url``: RDB with heartbeat, or a journal file (``journal:PATH``)."""
    check_workers(url, workers)
    if url.startswith("journal:"):
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        path = Path(url.removeprefix("journal:"))
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    if url.startswith("sqlite:"):
        path = Path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(path) as db:
            db.execute("PRAGMA journal_mode=WAL")
    if url.startswith("postgresql"):
        from .. import errors

        errors.require_extra("psycopg2", "postgres")
    try:
        return RDBStorage(url, engine_kwargs={"pool_pre_ping": True}, heartbeat_interval=HEARTBEAT_SECONDS,
                          grace_period=GRACE_SECONDS,
                          heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=2))
    except Exception as exc:  # a wrong URL or an unreachable database is the user's to fix
        raise UserError(f"cannot open storage {url}: {type(exc).__name__}: {str(exc).splitlines()[0]}",
                        hint="check the storage URL and that the database server runs") from None
