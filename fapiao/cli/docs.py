"""``fapiao settings-table``: the configuration table the README carries, generated from the Settings class."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("settings-table")
@click.option(
    "--write",
    "target",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Rewrite the table between the settings-table markers of this file (the README) in place.",
)
def settings_table_command(target: Path | None) -> None:
    """Print every FAPIAO_ variable with its default and meaning as a Markdown table (or rewrite it in a file)."""
    from fapiao.settings_doc import replace_table, settings_table

    if target is None:
        click.echo(settings_table())
        return
    target.write_text(replace_table(target.read_text(encoding="utf-8")), encoding="utf-8")
    click.echo(f"rewrote the settings table in {target}")


COMMANDS = (settings_table_command,)
