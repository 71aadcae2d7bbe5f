"""Resident settings: policy updates on or off."""

from __future__ import annotations

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
