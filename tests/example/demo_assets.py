"""The example run's assets: users from an HTTP API, stored in sqlite, summarised."""

from __future__ import annotations

from typing import Any

from host_plugin_http import TokenClientResource
from host_plugin_sqlite import SQLiteResource

from host import AssetExecutionContext, asset


@asset
def users(api: TokenClientResource) -> list[dict[str, Any]]:
    """Every user of the API (the client fetched its token once, when it came up)."""
    return api.get_all_users()


@asset
def stored_users(users: list[dict[str, Any]], db: SQLiteResource) -> int:
    """Write the users into the database; committed when the run ends."""
    db.execute("create table if not exists users (id integer primary key, name text, email text)")
    db.executemany(
        "insert or replace into users values (?, ?, ?)",
        [(u["id"], u["name"], u["email"]) for u in users],
    )
    return len(users)


@asset
def summary(stored_users: int, db: SQLiteResource, context: AssetExecutionContext) -> str:
    """One line about what the database now holds."""
    names = [row["name"] for row in db.query("select name from users order by id")]
    context.log.info("summarised %d users", stored_users)
    return f"{stored_users} users stored: {', '.join(names)}"
