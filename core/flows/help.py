"""The help menu: what Kigen can do."""

from __future__ import annotations

from core.flows.context import Context
from core.i18n import N_, Translator
from core.messages import Choice, Reply


def menu_choices(ctx: Context) -> list[Choice]:
    _ = ctx.t.gettext
    return [
        Choice("menu:add", _("Add a reminder")),
        Choice("menu:list", _("My reminders")),
        Choice("menu:topics", _("Browse topics")),
        Choice("menu:language", _("Language")),
        Choice("menu:updates", _("Policy updates")),
        Choice("menu:privacy", _("My data")),
    ]


async def menu(ctx: Context) -> list[Reply]:
    _ = ctx.t.gettext
    text = _(
        "Ask me a question in your own words, for example: "
        "“When can I renew my residence card?”\n"
        "Commands: /remind add a reminder, /list your reminders, /language, "
        "/updates policy updates on or off, /time the hour of reminders, /timezone if you live "
        "abroad, /mydata what I store, /forget delete everything, /privacy how I handle your "
        "data."
    )
    return [ctx.reply(text, "help", menu_choices(ctx))]


_COMMAND_MENU = (
    ("help", N_("What I can do")),
    ("remind", N_("Add a reminder")),
    ("list", N_("My reminders")),
    ("language", N_("Change the language")),
    ("updates", N_("Policy updates on or off")),
    ("time", N_("The hour of reminders")),
    ("mydata", N_("What I store about you")),
    ("forget", N_("Delete all my data")),
    ("privacy", N_("How I handle your data")),
)


def command_menu(t: Translator) -> list[tuple[str, str]]:
    """The commands with their descriptions in one language, for a platform's menu."""
    return [(command, t.gettext(description)) for command, description in _COMMAND_MENU]


#: What a platform's persistent menu (LINE's rich menu) offers, in its order.
_PERSISTENT_MENU = (
    ("menu:topics", N_("Ask a question")),
    ("menu:list", N_("My reminders")),
    ("menu:add", N_("Add a reminder")),
    ("menu:language", N_("Language")),
    ("menu:help", N_("Help")),
)
#: The label of the button that opens the persistent menu (at most 14 characters).
MENU_BUTTON = N_("Menu")


def persistent_menu(t: Translator) -> list[Choice]:
    return [Choice(choice_id, t.gettext(label)) for choice_id, label in _PERSISTENT_MENU]
