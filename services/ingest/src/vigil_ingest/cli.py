"""``vigil send``: submit alerts from a file or stdin."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    pass
