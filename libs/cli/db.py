"""``yibao db upgrade``: migrate the database named by DATABASE_URL (or --url) to the newest schema."""

from __future__ import annotations

import argparse

from yibao.core.db.engine import dialect_of
from yibao.core.db.migrations import current_head, upgrade
from yibao.core.settings import CommonSettings

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", help="database URL (default: DATABASE_URL, else the embedded SQLite file)")


def run(args: argparse.Namespace) -> int:
    url = args.url or CommonSettings().database_url
    upgrade(url)
    print(f"database ({dialect_of(url)}) is at schema revision {current_head()}")
    return 0
