"""Greetings and thanks: messages that are not questions."""

from __future__ import annotations

from core.textnorm import normalise

_GREETINGS = """
hi|hello|hey|hiya|good morning|good afternoon|good evening|yo|hello there|hi there|
こんにちは|こんばんは|おはよう|おはようございます|はじめまして|もしもし|やあ|
你好|您好|大家好|哈囉|안녕|안녕하세요|xin chao|chao ban|chao|kumusta|magandang umaga|
magandang hapon|namaste|नमस्ते|नमस्कार|ola|oi|bom dia|boa tarde|boa noite|hola|buenos dias|
buenas tardes|buenas noches|halo|hai|selamat pagi|selamat siang|selamat sore|selamat malam|
สวัสดี|สวัสดีครับ|สวัสดีค่ะ|မင်္ဂလာပါ
"""
_THANKS = """
thanks|thank you|thx|ty|thanks a lot|thank you very much|many thanks|great thanks|ok thanks|
ありがとう|ありがとうございます|ありがとうございました|どうも|サンキュー|谢谢|謝謝|多谢|多謝|
감사합니다|고맙습니다|고마워|cam on|cam on ban|xin cam on|salamat|salamat po|maraming salamat|
धन्यवाद|obrigado|obrigada|muito obrigado|muito obrigada|gracias|muchas gracias|terima kasih|
makasih|ขอบคุณ|ขอบคุณครับ|ขอบคุณค่ะ|ကျေးဇူးတင်ပါတယ်|ကျေးဇူးပါ
"""


def _phrases(block: str) -> frozenset[str]:
    return frozenset(normalise(p) for p in block.replace("\n", "").split("|") if p.strip())


GREETINGS = _phrases(_GREETINGS)
THANKS = _phrases(_THANKS)


def classify(text: str) -> str | None:
    """``"greeting"`` or ``"thanks"`` when the whole message is one, else None."""
    words = normalise(text)
    for filler in ("kigen", "po", "ạ", "a", "ne"):
        words = words.removesuffix(f" {filler}")
    if words in GREETINGS:
        return "greeting"
    if words in THANKS:
        return "thanks"
    return None
