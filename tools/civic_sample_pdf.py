"""Write the civic desk's sample PDF (``collection-calendar.pdf``) byte by byte.

The sample documents must include a PDF, and no PDF writer is a dependency, so this script
lays out a minimal, valid PDF 1.4 itself: page 1 in English (Helvetica, a standard Type 1
font), page 2 in Korean (a non-embedded CID font, ``HYGoThic-Medium`` with the predefined
``UniKS-UCS2-H`` CMap, so the content stream holds UCS-2 codes; a ToUnicode CMap lets text
extractors such as pypdf read it back). Output is deterministic: run it again and the bytes
are the same.

    .venv/bin/python tools/civic_sample_pdf.py [OUT]
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

DEFAULT_OUT = (Path(__file__).resolve().parents[1] / "src" / "maeul" / "services" / "civic"
               / "data" / "docs" / "waste" / "collection-calendar.pdf")

EN_TITLE = "Yesi City Waste Collection Calendar"
EN_BLOCKS: list[tuple[str, str]] = [
    ("p", "This calendar tells each district of Yesi City when household rubbish, food waste "
          "and recyclables are collected. Put bags out after 7 p.m. on the evening before "
          "collection and no later than 4 a.m. on the collection day."),
    ("h", "1. Collection days by district"),
    ("p", "Jungang-dong and Hanbit-dong: general rubbish on Monday, Wednesday and Friday; "
          "recyclables on Tuesday."),
    ("p", "Saesol-dong and Nuri-dong: general rubbish on Tuesday, Thursday and Saturday; "
          "recyclables on Wednesday."),
    ("p", "Gangbyeon-dong: general rubbish on Monday, Wednesday and Friday; recyclables on "
          "Thursday."),
    ("p", "Food waste is collected every day except Sunday in all districts."),
    ("h", "2. Preparing recyclables"),
    ("p", "Flatten paper boxes and tie them with string. Rinse cans and glass bottles. Remove "
          "labels from plastic containers. Put clear PET bottles in a separate clear bag. "
          "Styrofoam boxes must be clean and free of tape and stickers."),
    ("h", "3. Public holidays"),
    ("p", "There is no collection on New Year's Day or on the main days of Seollal and "
          "Chuseok. Collection moves to the next working day, so do not put rubbish out on "
          "the evening before a holiday."),
    ("h", "4. Designated bags and prices"),
    ("p", "General rubbish bags cost 250 won for 10 litres, 490 won for 20 litres and 1,230 "
          "won for 50 litres. Food waste bags cost 60 won for 2 litres and 150 won for 5 "
          "litres. Bags are sold at convenience stores, supermarkets and community service "
          "centres."),
    ("h", "5. Missed collection"),
    ("p", "If your bags were not collected by noon on the collection day, call the city call "
          "centre on 120 or report it in the Yesi Life app with a photo. Bags that are not "
          "designated bags are left behind with a warning sticker."),
]

KO_TITLE = "생활폐기물 배출 요일 안내"
KO_BLOCKS: list[tuple[str, str]] = [
    ("p", "종량제 봉투는 수거일 전날 저녁 7시부터 수거일 새벽 4시 사이에 내놓아 주세요."),
    ("h", "1. 동별 배출 요일"),
    ("p", "중앙동과 한빛동은 일반 쓰레기를 월·수·금요일에, 재활용품을 화요일에 내놓습니다."),
    ("p", "새솔동과 누리동은 일반 쓰레기를 화·목·토요일에, 재활용품을 수요일에 내놓습니다."),
    ("p", "강변동은 일반 쓰레기를 월·수·금요일에, 재활용품을 목요일에 내놓습니다."),
    ("h", "2. 음식물 쓰레기"),
    ("p", "음식물 쓰레기는 모든 동에서 일요일을 뺀 매일 수거합니다. 물기를 꼭 짜서 "
          "노란색 전용 봉투나 공동 수거 용기에 담아 주세요. 조개껍데기, 뼈, 달걀 "
          "껍데기는 음식물이 아니라 일반 쓰레기입니다."),
    ("h", "3. 수거가 안 되었을 때"),
    ("p", "수거일 낮 12시가 지나도 수거되지 않았다면 예시시 콜센터 120에 전화하거나 "
          "'예시 생활' 앱에 사진과 함께 신고해 주세요."),
]

WIDTH, HEIGHT, LEFT, TOP = 595, 842, 56, 780


def _en_string(text: str) -> str:
    raw = text.encode("cp1252")
    out = raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")
    return "(" + out.decode("latin-1") + ")"


def _ko_string(text: str) -> str:
    return "<" + text.encode("utf-16-be").hex().upper() + ">"


def _page_stream(title: str, blocks: list[tuple[str, str]], font: str, width: int,
                 encode: Callable[[str], str]) -> bytes:
    ops = ["BT", f"/{font} 16 Tf", f"{LEFT} {TOP} Td", f"{encode(title)} Tj"]
    for kind, text in blocks:
        size, lead = (12, 22) if kind == "h" else (10, 16)
        lines = [text] if kind == "h" else textwrap.wrap(text, width)
        ops.append(f"/{font} {size} Tf")
        for i, line in enumerate(lines):
            step = lead + 6 if i == 0 else 14
            ops.append(f"0 {-step} Td")
            ops.append(f"{encode(line)} Tj")
    ops.append("ET")
    return "\n".join(ops).encode("latin-1")


def _tounicode(codes: set[int]) -> bytes:
    highs = sorted({c >> 8 for c in codes})
    ranges = "\n".join(f"<{h:02X}00> <{h:02X}FF> <{h:02X}00>" for h in highs)
    body = (
        "/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n"
        "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n"
        "/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n"
        "1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n"
        f"{len(highs)} beginbfrange\n{ranges}\nendbfrange\n"
        "endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n"
    )
    return body.encode("ascii")


def build() -> bytes:
    en = _page_stream(EN_TITLE, EN_BLOCKS, "F1", 92, _en_string)
    ko = _page_stream(KO_TITLE, KO_BLOCKS, "F2", 44, _ko_string)
    ko_text = KO_TITLE + "".join(t for _, t in KO_BLOCKS)
    codes = {ord(ch) for ch in ko_text}
    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R 4 0 R] /Count 2 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Contents 5 0 R "
        b"/Resources << /Font << /F1 7 0 R >> >> >>" % (WIDTH, HEIGHT),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Contents 6 0 R "
        b"/Resources << /Font << /F2 8 0 R >> >> >>" % (WIDTH, HEIGHT),
        b"<< /Length %d >>\nstream\n" % len(en) + en + b"\nendstream",
        b"<< /Length %d >>\nstream\n" % len(ko) + ko + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Type /Font /Subtype /Type0 /BaseFont /HYGoThic-Medium /Encoding /UniKS-UCS2-H "
        b"/DescendantFonts [9 0 R] /ToUnicode 11 0 R >>",
        b"<< /Type /Font /Subtype /CIDFontType0 /BaseFont /HYGoThic-Medium "
        b"/CIDSystemInfo << /Registry (Adobe) /Ordering (Korea1) /Supplement 1 >> "
        b"/FontDescriptor 10 0 R /DW 1000 >>",
        b"<< /Type /FontDescriptor /FontName /HYGoThic-Medium /Flags 6 "
        b"/FontBBox [-6 -145 1003 880] /ItalicAngle 0 /Ascent 880 /Descent -120 "
        b"/CapHeight 880 /StemV 93 >>",
    ]
    cmap = _tounicode(codes)
    objects.append(b"<< /Length %d >>\nstream\n" % len(cmap) + cmap + b"\nendstream")
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for num, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % num + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, xref)
    return bytes(out)


def main(argv: list[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else DEFAULT_OUT
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(build())
    print(f"wrote {out} ({out.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
