"""Radical and compatibility code points that look like ordinary Chinese characters, mapped to the characters.

PDF text layers often carry Kangxi radicals (⽣ U+2F63 for 生) or compatibility ideographs instead of the unified
ideographs a reader typed, because the font's ToUnicode map names the radical glyph. They look identical but
match nothing in BM25 or the tokenizer. NFKC maps the Kangxi radicals and compatibility ideographs one-to-one;
the CJK Radicals Supplement has no decomposition, so it takes the table below (Unicode's
EquivalentUnifiedIdeograph.txt, entries whose equivalent is in the BMP). Every character maps to exactly one
character, so the function can be applied to mapped text without touching its offsets.
"""
from __future__ import annotations

import unicodedata

# CJK Radicals Supplement → equivalent unified ideograph, pairs of characters
_SUPPLEMENT = (
    "⺀冫 ⺁厂 ⺂乛 ⺃乚 ⺄乙 ⺅亻 ⺆冂 ⺉刂 ⺊卜 ⺋㔾 ⺎兀 ⺏尣 ⺐尢 ⺒巳 ⺓幺 ⺔彑 ⺕彐 ⺖忄 ⺗㣺 ⺘扌 ⺙攵 ⺛旡 ⺝月 ⺞歺 ⺟母 ⺠民 ⺡氵 ⺢氺 "
    "⺣灬 ⺥爫 ⺦丬 ⺨犭 ⺫罒 ⺬示 ⺭礻 ⺯糹 ⺰纟 ⺱罓 ⺳㓁 ⺴㓁 ⺹耂 ⺺肀 ⺼月 ⺽臼 ⺾艹 ⺿艹 ⻀艹 ⻁虎 ⻂衤 ⻃覀 ⻄西 ⻅见 ⻈讠 ⻉贝 "
    "⻋车 ⻍辶 ⻏阝 ⻐钅 ⻑長 ⻒镸 ⻓长 ⻖阝 ⻘青 ⻙韦 ⻚页 ⻛风 ⻜飞 ⻝食 ⻟飠 ⻠饣 ⻢马 ⻣骨 ⻤鬼 ⻥鱼 ⻦鸟 ⻧卤 ⻨麦 ⻩黄 ⻪黾 ⻫斉 "
    "⻬齐 ⻭歯 ⻮齿 ⻯竜 ⻰龙 ⻱龜 ⻲亀 ⻳龟"
)


def _table() -> dict[int, str]:
    table = {ord(pair[0]): pair[1] for pair in _SUPPLEMENT.split()}
    ranges = ((0x2F00, 0x2FE0), (0xF900, 0xFB00), (0x2F800, 0x2FA20))  # Kangxi, compatibility, supplement
    for first, end in ranges:
        for code in range(first, end):
            unified = unicodedata.normalize("NFKC", chr(code))
            if len(unified) == 1 and unified != chr(code):
                table[code] = unified
    return table


_TABLE = _table()


def unify_ideographs(text: str) -> str:
    """Radicals and compatibility ideographs → the unified ideographs they stand for; one character for one."""
    return text.translate(_TABLE)
