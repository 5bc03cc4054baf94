"""Stage 2 of the write path: turn a raw article into its canonical text.

The cleaned text is the one every later offset refers to. Cleaning works on a list of
characters, each carrying a "damaged" flag, so that removals never lose track of
which characters sit next to encoding damage.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from index.textnorm import detect_script, is_cjk
from index.types import Document, RawDocument, content_hash

TONED = "āáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜüńňǹḿ"
PINYIN_BODY = f"[a-z{TONED}]{{1,7}}"
ANNOTATION_RE = re.compile(rf"\(({PINYIN_BODY})\)")
ORPHAN_TAIL_RE = re.compile(rf"{PINYIN_BODY}\)")

BOILERPLATE_LINE_RES = [
    re.compile(r"^\s*view the rest of the full text\s*$", re.I),
    re.compile(r"^\s*\(?\s*editor in charge\s*[:：].*\)?\s*$", re.I),
    re.compile(r"^\s*[（(]?\s*(责任编辑|責任編輯)\s*[:：].*$"),
    re.compile(r"^\s*wonderful pictures\s*$", re.I),
    re.compile(r"^\s*(profile picture|photo|picture)\s*$", re.I),
]
INLINE_BOILERPLATE_RE = re.compile(r"\s*\bprofile picture\b", re.I)

Chars = list[tuple[str, bool]]


@lru_cache(maxsize=65536)
def _readings(ch: str) -> frozenset[str]:
    from pypinyin import Style, pinyin

    out: set[str] = set()
    for style in (Style.TONE, Style.NORMAL):
        for group in pinyin(ch, style=style, heteronym=True, errors="ignore"):
            out.update(group)
    return frozenset(out)


def _is_annotation_of(ch: str, body: str) -> bool:
    """Whether ``body`` is a pinyin reading of ``ch``: provably an annotation, not text."""
    if body in _readings(ch):
        return True
    # A toned syllable is never English; accept it even when the dictionary lacks it.
    return any(c in TONED for c in body)


def _text(chars: Chars) -> str:
    return "".join(c for c, _ in chars)


def strip_pinyin(chars: Chars) -> Chars:
    """Remove ``(pīnyīn)`` annotations that follow the CJK character they read."""
    text = _text(chars)
    drop: set[int] = set()
    for m in ANNOTATION_RE.finditer(text):
        before = m.start() - 1
        body = m.group(1)
        toned = any(c in TONED for c in body)
        if toned or (
            before >= 0 and is_cjk(text[before]) and _is_annotation_of(text[before], body)
        ):
            drop.update(range(m.start(), m.end()))
    return [c for i, c in enumerate(chars) if i not in drop]


def _is_mojibake_mark(text: str, i: int) -> bool:
    """An ASCII '?' with a CJK character or a pinyin fragment beside it is damage.

    Genuine Chinese question marks are full-width (U+FF1F) in the raw text.
    """
    if text[i] != "?":
        return False
    left = text[i - 1] if i > 0 else ""
    right = text[i + 1] if i + 1 < len(text) else ""
    if any(c and not c.isascii() and not c.isspace() for c in (left, right)):
        return True
    if left == ")" and ANNOTATION_RE.search(text, max(0, i - 10), i):
        return True
    return bool(ORPHAN_TAIL_RE.match(text, i + 1))


# ASCII punctuation inside a garbled run is a decoded trail byte ("惠商?!崩塾"), and a "!"
# kept there would end the sentence in the middle of a clause.
STRAY_PUNCT = frozenset("!\"#$%&'*+/;<=>@[\\]^_`{|}~")
# Bumped whenever cleaning changes its output for the same input, so indexes are rebuilt.
CLEANER_VERSION = 2


def mark_mojibake(chars: Chars) -> Chars:
    """Drop '?' mojibake marks and orphaned pinyin tails; flag the characters around them.

    A '?' stands for bytes that were lost when the article was re-encoded. What it
    replaced cannot be recovered, and the characters up to the next trustworthy anchor
    (a character with its own pinyin annotation, white space, ASCII text or sentence
    punctuation) are garbled or incomplete: they are kept but flagged as damaged.
    """
    text = _text(chars)
    out: Chars = []
    i = 0
    n = len(text)
    while i < n:
        if not _is_mojibake_mark(text, i):
            out.append(chars[i])
            i += 1
            continue
        if out:  # the character before the mark may have lost its last bytes
            out[-1] = (out[-1][0], True)
        i += 1
        tail = ORPHAN_TAIL_RE.match(text, i)
        if tail:
            i = tail.end()
        while i < n:
            ch = text[i]
            if ch.isspace() or (ch.isascii() and ch.isalnum()) or ch in "。，,.?":
                break
            if ANNOTATION_RE.match(text, i + 1):
                break
            if ch.isascii() and ch in STRAY_PUNCT:  # a stray byte, not punctuation: drop it
                i += 1
                continue
            out.append((ch, True))
            i += 1
        if out and not out[-1][1]:
            out[-1] = (out[-1][0], True)
    return out


KEEP_WIDE = frozenset("？")  # a genuine Chinese question mark must not look like a mojibake '?'


def _nfkc(chars: Chars) -> Chars:
    out: Chars = []
    for ch, dmg in chars:
        if ch in KEEP_WIDE:
            out.append((ch, dmg))
            continue
        out.extend((c, dmg) for c in unicodedata.normalize("NFKC", ch))
    return out


def _lines(chars: Chars) -> list[Chars]:
    lines: list[Chars] = [[]]
    for c in chars:
        if c[0] == "\n":
            lines.append([])
        else:
            lines[-1].append(c)
    return lines


def _tidy_line(line: Chars) -> Chars:
    text = _text(line)
    m = INLINE_BOILERPLATE_RE.search(text)
    if m:
        line = line[: m.start()] + line[m.end() :]
    out: Chars = []
    for ch, dmg in line:
        if ch.isspace():
            if out and out[-1][0] != " ":
                out.append((" ", dmg))
            continue
        if unicodedata.category(ch) in ("Cc", "Cf"):
            continue
        out.append((ch, dmg))
    while out and out[-1][0] == " ":
        out.pop()
    return out


def clean_text(raw: str) -> tuple[str, tuple[tuple[int, int], ...]]:
    """Canonical text of a raw article and the damaged ranges in it.

    Args:
        raw: the article as read from disk.

    Returns:
        The cleaned text and a tuple of ``(start, end)`` ranges of damaged characters.
    """
    raw = unicodedata.normalize("NFC", raw.replace("\r\n", "\n").replace("\r", "\n"))
    chars: Chars = [(c, False) for c in raw]
    chars = mark_mojibake(chars)
    chars = strip_pinyin(chars)
    chars = _nfkc(chars)
    kept: list[Chars] = []
    for line in _lines(chars):
        tidy = _tidy_line(line)
        text = _text(tidy)
        if any(r.match(text) for r in BOILERPLATE_LINE_RES):
            continue
        if not text:
            if kept and kept[-1]:
                kept.append([])
            continue
        kept.append(tidy)
    while kept and not kept[-1]:
        kept.pop()
    flat: Chars = []
    for k, line in enumerate(kept):
        if k:
            flat.append(("\n", False))
        flat.extend(line)
    text = _text(flat)
    damaged: list[tuple[int, int]] = []
    for i, (_, dmg) in enumerate(flat):
        if not dmg:
            continue
        if damaged and damaged[-1][1] == i:
            damaged[-1] = (damaged[-1][0], i + 1)
        else:
            damaged.append((i, i + 1))
    return text, tuple(damaged)


DATE_RES = [
    re.compile(r"\b(20\d\d|19\d\d)-(\d\d)-(\d\d)\b"),
    re.compile(r"(20\d\d|19\d\d)年(\d{1,2})月(\d{1,2})日"),
    re.compile(
        r"\b(January|February|March|April|May|June|July|August|September|October|November|December)"
        r" (\d{1,2}), (\d{4})\b"
    ),
]
MONTHS = {
    m: i + 1
    for i, m in enumerate(
        "January February March April May June July August September October November December".split()
    )
}


def find_date(text: str) -> str | None:
    """The publication date an article states near its top or bottom, as ISO text."""
    head_tail = text[:800] + "\n" + text[-400:]
    for rx in DATE_RES:
        m = rx.search(head_tail)
        if not m:
            continue
        g = m.groups()
        if g[0] in MONTHS:
            return f"{int(g[2]):04d}-{MONTHS[g[0]]:02d}-{int(g[1]):02d}"
        return f"{int(g[0]):04d}-{int(g[1]):02d}-{int(g[2]):02d}"
    return None


def find_title(text: str) -> str:
    """The first meaningful line, without a leading date stamp or brackets."""
    for line in text.split("\n"):
        t = re.sub(r"^\s*date\s+\d{4}-\d\d-\d\d\s*", "", line, flags=re.I).strip()
        t = t.strip("[]【】 ")
        if len(t) >= 4:
            return t[:200]
    return ""


def clean_document(raw: RawDocument) -> Document:
    """Stage entry point: clean a raw article into a :class:`Document`."""
    text, damaged = clean_text(raw.text)
    return Document(
        doc_id=raw.doc_id,
        text=text,
        title=find_title(text),
        date=find_date(text),
        lang=detect_script(text),
        damaged=damaged,
        checksum=content_hash(text),
    )
