"""Measuring a PDF that LibreOffice exported: page sizes, font sizes, fonts, words and pixels.

LibreOffice writes plain (uncompressed-object) PDFs whose page content streams set each
text run's size directly (``/F1 9.306 Tf``, the print scale applied), so the size a
reader sees on paper is the operand of ``Tf``. Words and their boxes come from poppler's
``pdftotext -bbox``, pixels from ``pdftoppm -gray`` (a PGM, read here without a library).
"""

from __future__ import annotations

import html
import re
import subprocess
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

_OBJECT = re.compile(rb"(\d+) 0 obj(.*?)endobj", re.S)


@dataclass(frozen=True)
class Word:
    x0: float
    y0: float
    x1: float
    y1: float
    text: str


@dataclass
class Page:
    number: int  # 1-based
    width: float
    height: float
    sizes: Counter = field(default_factory=Counter)  # (font, size in pt) → text runs
    words: list[Word] = field(default_factory=list)

    @property
    def landscape(self) -> bool:
        return self.width > self.height

    @property
    def paper(self) -> str:
        short, long = sorted((self.width, self.height))
        for name, (w, h) in {"A4": (595.3, 841.9), "A3": (841.9, 1190.6)}.items():
            if abs(short - w) < 2 and abs(long - h) < 2:
                return name
        return f"{short:.0f}x{long:.0f}"

    @property
    def smallest(self) -> float:
        return min(size for _, size in self.sizes)

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)

    def first_word(self) -> str:
        return min(self.words, key=lambda w: (round(w.y0), w.x0)).text


def _objects(data: bytes) -> dict[int, bytes]:
    return {int(m.group(1)): m.group(2) for m in _OBJECT.finditer(data)}


def _stream(body: bytes) -> bytes:
    m = re.search(rb"stream\r?\n(.*)\r?\nendstream", body, re.S)
    assert m, "no stream"
    raw = m.group(1)
    return zlib.decompress(raw) if b"FlateDecode" in body[:m.start()] else raw


def _ref(body: bytes, key: bytes) -> int | None:
    m = re.search(rb"/" + key + rb"\s*(\d+) 0 R", body)
    return int(m.group(1)) if m else None


def _page_objects(objs: dict[int, bytes]) -> list[int]:
    root = next(n for n, b in objs.items() if re.search(rb"/Type\s*/Pages", b) and b"/Parent" not in b)

    def kids(n: int):
        body = objs[n]
        if re.search(rb"/Type\s*/Pages", body):
            for k in re.findall(rb"(\d+) 0 R", re.search(rb"/Kids\s*\[(.*?)\]", body, re.S).group(1)):
                yield from kids(int(k))
        else:
            yield n

    return list(kids(root))


def _fonts_of(objs: dict[int, bytes], page: bytes) -> dict[str, int]:
    """Resource name (F1) → font object number."""
    res = _ref(page, b"Resources")
    body = objs[res] if res is not None else page
    inline = re.search(rb"/Font\s*<<(.*?)>>", body, re.S)
    ref = _ref(body, b"Font")
    fonts = inline.group(1) if inline else (objs[ref] if ref is not None else b"")
    return {name.decode(): int(num) for name, num in re.findall(rb"/(\w+)\s*(\d+) 0 R", fonts)}


def _base_font(objs: dict[int, bytes], n: int) -> str:
    m = re.search(rb"/BaseFont\s*/([^\s/<>\[\]]+)", objs[n])
    name = m.group(1).decode() if m else "?"
    return name.split("+", 1)[1] if "+" in name[:7] else name  # without the subset tag


def pages(pdf: Path) -> list[Page]:
    data = pdf.read_bytes()
    objs = _objects(data)
    out = []
    for number, n in enumerate(_page_objects(objs), start=1):
        body = objs[n]
        box = [float(v) for v in re.search(rb"/MediaBox\s*\[([^\]]*)\]", body).group(1).split()]
        page = Page(number, box[2] - box[0], box[3] - box[1])
        fonts = _fonts_of(objs, body)
        text = _stream(objs[_ref(body, b"Contents")]).decode("latin-1")
        for name, size in re.findall(r"/(\w+)\s+([\d.]+)\s+Tf", text):
            page.sizes[(_base_font(objs, fonts[name]) if name in fonts else name, float(size))] += 1
        out.append(page)
    for page in out:
        page.words = words(pdf, page.number)
    return out


def words(pdf: Path, page: int) -> list[Word]:
    xml = subprocess.run(["pdftotext", "-f", str(page), "-l", str(page), "-bbox", str(pdf), "-"],
                         capture_output=True, text=True, check=True).stdout
    return [Word(float(a), float(b), float(c), float(d), html.unescape(w)) for a, b, c, d, w in re.findall(
        r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">(.*?)</word>', xml)]


def overlapping(page: Page, tolerance: float = 0.5) -> list[tuple[str, str]]:
    """Words on one line whose boxes overlap: text drawn into its neighbour's cell (cut off there)."""
    found = []
    ws = page.words
    for i, a in enumerate(ws):
        for b in ws[i + 1:]:
            same_line = min(a.y1, b.y1) - max(a.y0, b.y0) > 0.5 * min(a.y1 - a.y0, b.y1 - b.y0)
            if same_line and min(a.x1, b.x1) - max(a.x0, b.x0) > tolerance:
                found.append((a.text, b.text))
    return found


def font_chars(pdf: Path) -> dict[str, set[str]]:
    """The characters each font draws (from its ToUnicode map), by font name without subset tag."""
    objs = _objects(pdf.read_bytes())
    out: dict[str, set[str]] = {}
    for n, body in objs.items():
        if not re.search(rb"/Type\s*/Font", body) or _ref(body, b"ToUnicode") is None:
            continue
        cmap = _stream(objs[_ref(body, b"ToUnicode")]).decode("latin-1")
        chars = out.setdefault(_base_font(objs, n), set())
        for block in re.findall(r"beginbfchar(.*?)endbfchar", cmap, re.S):
            for _, uni in re.findall(r"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block):
                chars.add(bytes.fromhex(uni).decode("utf-16-be", "replace"))
        for block in re.findall(r"beginbfrange(.*?)endbfrange", cmap, re.S):
            for lo, hi, uni in re.findall(r"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block):
                start = int(uni, 16)
                chars.update(chr(start + k) for k in range(int(hi, 16) - int(lo, 16) + 1))
    return out


@dataclass
class Gray:
    """A page rendered by ``pdftoppm -gray`` (0 black … 255 white), and its scale in pixels per pt."""

    width: int
    height: int
    pixels: bytes
    scale: float

    def dark(self, x: int, y: int, below: int = 128) -> bool:
        return self.pixels[y * self.width + x] < below


def render(pdf: Path, page: int, png_dir: Path, dpi: int = 100) -> Gray:
    """Page ``page`` as a PNG in ``png_dir`` (to look at) and as gray pixels (to measure)."""
    stem = png_dir / f"page-{page}"
    subprocess.run(["pdftoppm", "-f", str(page), "-l", str(page), "-singlefile", "-r", str(dpi), "-png",
                    str(pdf), str(stem)], check=True)
    subprocess.run(["pdftoppm", "-f", str(page), "-l", str(page), "-singlefile", "-r", str(dpi), "-gray",
                    str(pdf), str(stem)], check=True)
    data = stem.with_suffix(".pgm").read_bytes()
    m = re.match(rb"P5\s+(\d+)\s+(\d+)\s+(\d+)\s", data)
    assert m, "not a binary PGM"
    w, h = int(m.group(1)), int(m.group(2))
    return Gray(w, h, data[m.end():m.end() + w * h], dpi / 72)
