"""The README's configuration table is the one `fapiao settings-table` generates from the Settings class: every
variable, its default and its meaning, in one place (fapiao/config.py)."""

from pathlib import Path

from click.testing import CliRunner

from fapiao.cli import main
from fapiao.config import Settings
from fapiao.settings_doc import BEGIN, END, replace_table, settings_table

README = Path(__file__).parents[2] / "README.md"


def test_readme_table_is_the_generated_one():
    text = README.read_text(encoding="utf-8")
    assert replace_table(text) == text, (
        "README's settings table is stale: run `fapiao settings-table --write README.md`"
    )


def test_every_setting_has_a_row_with_a_meaning():
    table = settings_table()
    for name, field in Settings.model_fields.items():
        assert field.description, f"{name} has no description for the README"
        assert f"| `FAPIAO_{name.upper()}` |" in table


def test_the_command_prints_and_rewrites(tmp_path):
    doc = tmp_path / "README.md"
    doc.write_text(f"intro\n{BEGIN}\nold\n{END}\nrest\n", encoding="utf-8")
    assert CliRunner().invoke(main, ["settings-table"]).output.strip() == settings_table()
    res = CliRunner().invoke(main, ["settings-table", "--write", str(doc)])
    assert res.exit_code == 0, res.output
    assert doc.read_text(encoding="utf-8") == f"intro\n{BEGIN}\n{settings_table()}\n{END}\nrest\n"
