"""The README's configuration table, generated from the Settings class (fapiao/config.py) so the two cannot drift:
`fapiao settings-table --write README.md` rewrites it between its markers, and a test checks it is current."""

from __future__ import annotations

import re
from enum import Enum
from pathlib import Path

from pydantic import SecretStr

from fapiao.config import Settings

BEGIN, END = "<!-- settings-table -->", "<!-- /settings-table -->"


def _default(value: object) -> str:
    if value is None or value == "":
        return "(empty)"
    if isinstance(value, SecretStr):
        return "dev-only value"
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, Path):
        value = value.as_posix()
    return f"`{value}`"


def settings_table() -> str:
    """One row per setting: the environment variable, its default, its meaning (the field's description)."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        meaning = (field.description or "").replace("|", "\\|").replace("\n", " ")
        rows.append(f"| `FAPIAO_{name.upper()}` | {_default(field.default)} | {meaning} |")
    return "\n".join(rows)


def replace_table(text: str) -> str:
    """``text`` with the block between the settings-table markers replaced by the current table."""
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.S)
    if not pattern.search(text):
        raise ValueError(f"no {BEGIN} ... {END} block to replace")
    return pattern.sub(lambda _m: f"{BEGIN}\n{settings_table()}\n{END}", text, count=1)
