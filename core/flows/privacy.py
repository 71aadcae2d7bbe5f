"""What Kigen stores about a resident: the notice, the export and deleting everything."""

from __future__ import annotations

import json
from typing import Any

from core.flows.context import Context
from core.messages import Choice, Document, Reply
from core.store import expiries, outbox, users


async def notice(ctx: Context) -> list[Reply]:
    _ = ctx.t.gettext
    text = _(
        "Your privacy: I store only your user id on this app, your language, your settings "
        "and, if you agree, the type and expiry date of the documents you want reminders "
        "for. I do not store your messages, and I never need your name, address, My Number "
        "or card number. Only the operator of this service can see the stored data, to send "
        "reminders and updates. A date is deleted {days} days after it has passed. /mydata "
        "shows everything I store; /forget deletes it all."
    ).format(days=ctx.settings.retention_expired_days)
    statistics = _(
        "Questions I could not answer are counted for the operator without your user id and "
        "without any numbers, to improve my answers."
    )
    return [ctx.reply(f"{text}\n\n{statistics}", "privacy:notice")]


async def export(ctx: Context) -> list[Reply]:
    """Everything stored about the resident, as a JSON document."""
    _ = ctx.t.gettext
    user = ctx.user
    data: dict[str, Any] = {
        "channel": user.channel,
        "user_id": user.platform_id,
        "language": user.language,
        "consent_at": user.consent_at.isoformat() if user.consent_at else None,
        "policy_updates": user.updates_opt_in,
        "reminder_hour": user.reminder_hour,
        "timezone": user.timezone,
        "created_at": user.created_at.isoformat(),
        "expiries": [],
    }
    for expiry in await expiries.list_expiries(ctx.session, user.id):
        pending = await outbox.pending_reminders(ctx.session, expiry.id)
        data["expiries"].append(
            {
                "document": expiry.kind,
                "expires_on": expiry.expires_on.isoformat(),
                "status": expiry.status,
                "saved_at": expiry.created_at.isoformat(),
                "reminders_due": [row.due_at.isoformat() for row in pending],
            }
        )
    content = json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8")
    document = Document("kigen-my-data.json", "application/json", content)
    text = _("Here is everything I store about you.")
    return [ctx.reply(text, "privacy:export", document=document)]


async def ask_forget(ctx: Context) -> list[Reply]:
    _ = ctx.t.gettext
    ctx.go("forget", "confirm")
    text = _(
        "This deletes everything I store about you: your language, your consent, all saved "
        "dates and reminders. It cannot be undone. Delete everything?"
    )
    choices = [Choice("forget:yes", _("Delete everything")), Choice("forget:no", _("Keep my data"))]
    return [ctx.reply(text, "privacy:confirm", choices)]


async def forget(ctx: Context, answer: str) -> list[Reply]:
    _ = ctx.t.gettext
    if answer != "yes" or ctx.flow != "forget":
        ctx.end()
        return [ctx.reply(_("Nothing was deleted."), "cancelled")]
    await users.delete_user(ctx.session, ctx.user)
    ctx.deleted = True
    text = _("Done: I have deleted everything about you. If you write again, I start afresh.")
    return [ctx.reply(text, "privacy:forgotten")]
