"""Resident settings: policy updates on or off."""

from __future__ import annotations

from zoneinfo import available_timezones

from core import reminders
from core.flows.context import Context
from core.messages import Choice, Reply


async def updates_status(ctx: Context) -> list[Reply]:
    _ = ctx.t.gettext
    if ctx.user.updates_opt_in:
        text = _("Policy updates are on: you receive announcements from your support desk.")
        choices = [Choice("updates:off", _("Turn updates off"))]
    else:
        text = _("Policy updates are off: you receive no announcements, only your reminders.")
        choices = [Choice("updates:on", _("Turn updates on"))]
    return [ctx.reply(text, "updates:status", choices)]


async def set_updates(ctx: Context, value: str) -> list[Reply]:
    _ = ctx.t.gettext
    ctx.user.updates_opt_in = value == "on"
    if ctx.user.updates_opt_in:
        text = _("Policy updates are on. You can turn them off at any time with /updates.")
        return [ctx.reply(text, "updates:on", [Choice("updates:off", _("Turn updates off"))])]
    text = _("Policy updates are off. Your reminders still come.")
    return [ctx.reply(text, "updates:off", [Choice("updates:on", _("Turn updates on"))])]


#: Time zones offered to residents who live abroad; any IANA name can be typed too.
COMMON_ZONES = (
    "Asia/Tokyo", "Asia/Manila", "Asia/Ho_Chi_Minh", "Asia/Shanghai", "Asia/Taipei",
    "Asia/Seoul", "Asia/Kathmandu", "Asia/Jakarta", "Asia/Bangkok", "Asia/Yangon",
    "America/Sao_Paulo", "America/Lima", "Europe/London",
)  # fmt: skip
EARLIEST_HOUR, LATEST_HOUR = 7, 21


async def ask_hour(ctx: Context) -> list[Reply]:
    _ = ctx.t.gettext
    text = _(
        "At what time should reminders arrive? Now: {hour}:00 ({zone}). "
        "I never send reminders at night."
    ).format(hour=f"{ctx.user.reminder_hour:02d}", zone=ctx.t.format_zone(ctx.user.timezone))
    choices = [Choice(f"hour:{h}", f"{h:02d}:00") for h in range(EARLIEST_HOUR, LATEST_HOUR + 1)]
    return [ctx.reply(text, "settings:hour", choices)]


async def set_hour(ctx: Context, value: str) -> list[Reply]:
    if not (value.isascii() and value.isdigit()) or not EARLIEST_HOUR <= int(value) <= LATEST_HOUR:
        return await ask_hour(ctx)
    ctx.user.reminder_hour = int(value)
    await reminders.replan_all(ctx.session, ctx.user, ctx.now)
    text = ctx.t.gettext("Done: your reminders will come at {hour}:00 ({zone}).").format(
        hour=f"{ctx.user.reminder_hour:02d}", zone=ctx.t.format_zone(ctx.user.timezone)
    )
    return [ctx.reply(text, "settings:hour_set")]


async def ask_zone(ctx: Context) -> list[Reply]:
    _ = ctx.t.gettext
    ctx.go("settings", "timezone")
    text = _(
        "Do you live outside Japan? Choose your time zone, or type its name, for example "
        "Europe/Paris. Now: {zone}."
    ).format(zone=ctx.t.format_zone(ctx.user.timezone))
    choices = [Choice(f"tz:{zone}", ctx.t.format_zone(zone)) for zone in COMMON_ZONES]
    return [ctx.reply(text, "settings:timezone", choices)]


async def set_zone(ctx: Context, value: str) -> list[Reply]:
    zone = find_zone(value)
    if zone is None:
        text = ctx.t.gettext("I do not know that time zone. Please choose one from the list.")
        return [ctx.reply(text, "error:timezone"), *await ask_zone(ctx)]
    ctx.end()
    ctx.user.timezone = zone
    await reminders.replan_all(ctx.session, ctx.user, ctx.now)
    text = ctx.t.gettext("Done: your reminders will come at {hour}:00 ({zone}).").format(
        hour=f"{ctx.user.reminder_hour:02d}", zone=ctx.t.format_zone(zone)
    )
    return [ctx.reply(text, "settings:timezone_set")]


def find_zone(name: str) -> str | None:
    """The IANA zone a resident typed (any case, spaces for underscores), or None."""
    wanted = name.strip().replace(" ", "_").casefold()
    return next((z for z in sorted(available_timezones()) if z.casefold() == wanted), None)
