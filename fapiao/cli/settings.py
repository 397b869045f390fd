"""Merchant settings from the command line: 业务组织, 业务系统, 动态二维码设置, 静态二维码, 同步至移动云."""

from __future__ import annotations

import click

from fapiao.cli.context import AppContext, pass_app, report_errors


@click.group("settings")
def settings_group() -> None:
    """Merchant settings: 业务组织, 业务系统, 动态二维码设置, 静态二维码, 同步至移动云.

    Fields are given as name=value (kinds as a comma list: kinds=10xdp,08xdp)."""


def _fields(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise click.ClickException(f"{pair!r}: give fields as name=value")
        out[name.strip()] = value
    return out


def _report(result, describe) -> None:
    from fapiao.errors import FieldErrors

    if isinstance(result, FieldErrors):
        report_errors(result)
    click.echo(describe(result))


@settings_group.command("add-org")
@click.argument("fields", nargs=-1)
@pass_app
def add_org(app: AppContext, fields) -> None:
    """Add an organisation: org_code= seller_name= tax_id= [address_tel= bank_account= drawer= payee= reviewer=
    monthly_limit=]."""
    from fapiao.services.settings_admin import create_org

    _report(create_org(app.sessions, _fields(fields)), lambda r: f"added organisation {r.org_code}")


@settings_group.command("add-system")
@click.argument("fields", nargs=-1)
@pass_app
def add_system(app: AppContext, fields) -> None:
    """Add a business system: code= name= [enabled= query_url= callback_url=]; prints its signing secret."""
    from fapiao.services.settings_admin import create_business_system

    _report(
        create_business_system(app.sessions, _fields(fields)),
        lambda r: f"added business system {r.code}; secret {r.secret}",
    )


@settings_group.command("add-qr")
@click.argument("fields", nargs=-1)
@pass_app
def add_qr(app: AppContext, fields) -> None:
    """Add a 动态二维码设置: org_code= kinds= validity_days= [scan_type= default_issue= link_mode=
    business_system_code=]; prints its key值.

    默认开票 (default_issue=是) needs its preset sales order: preset_goods_name=*简称*名称
    preset_revenue_code=<19 digits> preset_tax_rate=6% [preset_units= preset_zero_rate_flag=
    preset_amount_mode=any|fixed|max preset_amount=]."""
    from fapiao.services.settings_admin import create_qr_setting

    _report(create_qr_setting(app.sessions, _fields(fields)), lambda r: f"added setting, key {r.key}")


@settings_group.command("edit-qr")
@click.argument("key")
@click.argument("fields", nargs=-1)
@pass_app
def edit_qr(app: AppContext, key, fields) -> None:
    """Change fields of a 动态二维码设置 (the preset too: preset_<field>=..., or preset=none to clear it)."""
    from fapiao.services.settings_admin import edit_qr_setting

    _report(edit_qr_setting(app.sessions, key, _fields(fields)), lambda r: f"saved {r.key}")


@settings_group.command("disable-qr")
@click.argument("key")
@pass_app
def disable_qr(app: AppContext, key) -> None:
    """Switch a 动态二维码设置 off (sync to make scans see it)."""
    from fapiao.services.settings_admin import edit_qr_setting

    _report(edit_qr_setting(app.sessions, key, {"enabled": "0"}), lambda r: f"disabled {r.key}")


@settings_group.command("list")
@pass_app
def list_settings(app: AppContext) -> None:
    """Every 动态二维码设置, and the sync state."""
    from fapiao.domain.preset import describe
    from fapiao.services.settings_admin import list_qr_settings, sync_status

    for r in list_qr_settings(app.sessions):
        click.echo(
            f"{r.key}  org={r.org_code}  scan_type={r.scan_type}  kinds={','.join(r.kinds)}  "
            f"days={r.validity_days}  default_issue={r.default_issue}  enabled={r.enabled}  mode={r.link_mode}"
            + (f"  preset={describe(r.preset)}  link={app.settings.base_url}/p/{r.key}" if r.preset else "")
        )
    last, unsynced = sync_status(app.sessions)
    click.echo(f"last synced: {last.isoformat() if last else 'never'}{'; unsynced changes' if unsynced else ''}")


@settings_group.command("static")
@click.argument("org_code")
@pass_app
def static(app: AppContext, org_code) -> None:
    """生成二维码: the static QR of an organisation (again: a new link, the old one revoked)."""
    from fapiao.services.settings_admin import generate_static

    _report(generate_static(app.sessions, org_code), lambda r: f"{app.settings.base_url}/s/{r.static_id}")


@settings_group.command("sync")
@pass_app
def sync(app: AppContext) -> None:
    """同步至移动云: publish the settings the scan side needs to the settings topic."""
    from fapiao.services.settings_admin import record_sync, sync_records

    topic = app.settings.topics["settings"]
    records = sync_records(app.sessions)
    app.publish(topic, records)
    record_sync(app.sessions, len(records))
    click.echo(f"synced {len(records)} record(s) to {topic}")


COMMANDS = (settings_group,)
