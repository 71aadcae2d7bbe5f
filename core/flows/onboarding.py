"""Greeting a new resident and choosing a language."""

from __future__ import annotations

from core.flows import help as help_flow
from core.flows.context import Context
from core.i18n import LANGUAGES
from core.messages import Choice, Reply


def language_choices(ctx: Context) -> list[Choice]:
    return [Choice(f"lang:{code}", LANGUAGES[code].native_name) for code in ctx.catalogs.supported]


async def greet(ctx: Context) -> list[Reply]:
    _ = ctx.t.gettext
    text = _(
        "Hello! I am Kigen. I answer questions about the residence card, the My Number Card, "
        "the Specified Residence Card and My Number health insurance, and I can remind you "
        "before your cards expire."
    )
    return [
        ctx.reply(
            f"{text}\n\n{_('Which language would you like?')}",
            "onboarding:language",
            language_choices(ctx),
        )
    ]


async def ask_language(ctx: Context) -> list[Reply]:
    _ = ctx.t.gettext
    return [
        ctx.reply(_("Which language would you like?"), "onboarding:language", language_choices(ctx))
    ]


async def choose_language(ctx: Context, code: str) -> list[Reply]:
    if code not in ctx.catalogs.supported:
        return await ask_language(ctx)
    ctx.user.language = code
    ctx.user.language_chosen = True
    ctx.use_language(code)
    _ = ctx.t.gettext
    confirmation = _("I will write to you in {language}.").format(
        language=LANGUAGES[code].native_name
    )
    menu = await help_flow.menu(ctx)
    return [ctx.reply(confirmation, "language:set"), *menu]


async def welcome_back(ctx: Context) -> list[Reply]:
    """A returning resident (unblocked or re-added the bot)."""
    text = ctx.t.gettext("Welcome back! Your settings and saved dates are as you left them.")
    return [ctx.reply(text, "welcome_back", help_flow.menu_choices(ctx))]
