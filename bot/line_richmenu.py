"""LINE rich menus: one per language, with a generated image, named ``kigen-<lang>``.

``kigen line setup-richmenu`` (re)creates them; :class:`bot.line.LineBridge` links a
resident to the menu of the language they choose.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

from linebot.v3.messaging import (
    AsyncMessagingApi,
    AsyncMessagingApiBlob,
    PostbackAction,
    RichMenuArea,
    RichMenuBounds,
    RichMenuRequest,
    RichMenuSize,
)
from PIL import Image, ImageDraw, ImageFont

from core.flows.help import MENU_BUTTON, persistent_menu
from core.i18n import Catalogs
from core.messages import Choice

log = logging.getLogger(__name__)

PREFIX = "kigen-"
WIDTH, HEIGHT = 2500, 843
#: Fonts that cover each script, from Debian's fonts-noto-cjk, fonts-noto-core and
#: fonts-dejavu packages; the first one found is used.
FONT_CANDIDATES = {
    "cjk": ["/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"],
    "th": ["/usr/share/fonts/truetype/noto/NotoSansThai-Regular.ttf"],
    "my": ["/usr/share/fonts/truetype/noto/NotoSansMyanmar-Regular.ttf"],
    "ne": ["/usr/share/fonts/truetype/noto/NotoSansDevanagari-Regular.ttf"],
    "latin": [
        "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    ],
}
SCRIPT_OF = {"ja": "cjk", "ja-easy": "cjk", "zh-Hans": "cjk", "zh-Hant": "cjk", "ko": "cjk",
             "th": "th", "my": "my", "ne": "ne"}  # fmt: skip


def font_for(language: str, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for path in FONT_CANDIDATES[SCRIPT_OF.get(language, "latin")] + FONT_CANDIDATES["latin"]:
        if Path(path).exists():
            return ImageFont.truetype(path, size)
    log.warning("no font found for %s: labels may not render", language)
    return ImageFont.load_default(size)


def menu_image(choices: list[Choice], language: str) -> bytes:
    """A PNG of ``len(choices)`` equal tiles, each with its label centred."""
    image = Image.new("RGB", (WIDTH, HEIGHT), "#ffffff")
    draw = ImageDraw.Draw(image)
    tile = WIDTH // len(choices)
    font = font_for(language, 64)
    for index, choice in enumerate(choices):
        left = index * tile
        draw.rounded_rectangle(
            (left + 20, 20, left + tile - 20, HEIGHT - 20),
            radius=40,
            fill="#e8f1fb",
            outline="#2a6db0",
            width=6,
        )
        lines = _wrap(draw, choice.label, font, tile - 80)
        line_height = 80
        top = (HEIGHT - line_height * len(lines)) // 2
        for number, line in enumerate(lines):
            width = draw.textlength(line, font=font)
            draw.text(
                (left + (tile - width) / 2, top + number * line_height),
                line,
                font=font,
                fill="#12385f",
            )
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _wrap(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> list[str]:  # type: ignore[no-untyped-def]
    words = text.split(" ") if " " in text else list(text)
    joiner = " " if " " in text else ""
    lines: list[str] = []
    for word in words:
        candidate = f"{lines[-1]}{joiner}{word}" if lines else word
        if lines and draw.textlength(candidate, font=font) <= width:
            lines[-1] = candidate
        else:
            lines.append(word)
    return lines[:3]


def menu_request(choices: list[Choice], name: str, chat_bar_text: str) -> RichMenuRequest:
    tile = WIDTH // len(choices)
    areas = [
        RichMenuArea(
            bounds=RichMenuBounds(x=index * tile, y=0, width=tile, height=HEIGHT),
            action=PostbackAction(
                label=choice.label[:20], data=choice.id, display_text=choice.label
            ),
        )
        for index, choice in enumerate(choices)
    ]
    return RichMenuRequest(
        size=RichMenuSize(width=WIDTH, height=HEIGHT),
        selected=False,
        name=name,
        chat_bar_text=chat_bar_text[:14],
        areas=areas,
    )


async def rich_menu_ids(api: AsyncMessagingApi) -> dict[str, str]:
    """The existing Kigen menus: language code → rich menu id."""
    try:
        menus = (await api.get_rich_menu_list(_request_timeout=10)).richmenus
    except Exception:
        log.warning("could not list the LINE rich menus", exc_info=True)
        return {}
    return {m.name.removeprefix(PREFIX): m.rich_menu_id for m in menus if m.name.startswith(PREFIX)}


async def setup_rich_menus(
    api: AsyncMessagingApi, blob: AsyncMessagingApiBlob, catalogs: Catalogs
) -> dict[str, str]:
    """Replace Kigen's rich menus with fresh ones, one per supported language; English is
    the default for residents who have not chosen a language."""
    for old in (await rich_menu_ids(api)).values():
        await api.delete_rich_menu(old)
    created: dict[str, str] = {}
    for code in catalogs.supported:
        t = catalogs.translator(code)
        choices = persistent_menu(t)
        request = menu_request(choices, f"{PREFIX}{code}", t.gettext(MENU_BUTTON))
        menu_id = (await api.create_rich_menu(request)).rich_menu_id
        await blob.set_rich_menu_image(
            menu_id, body=menu_image(choices, code), _headers={"Content-Type": "image/png"}
        )
        created[code] = menu_id
    await api.set_default_rich_menu(created["en"])
    return created
