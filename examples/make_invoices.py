"""Make a folder of example invoices: PDFs with a text layer, and PNG scans.

    python examples/make_invoices.py out/invoices            # 12 invoices
    python examples/make_invoices.py out/invoices --count 200

Seeded: the same count gives the same files, byte for byte. Every invoice says, one per line,
``Invoice number: ...``, ``Vendor: ...``, ``Date: ...``, ``Currency: ...`` and ``Total: ...``
(the fields of examples/invoice.json). PDFs are written with fpdf2 (their text layer is what
provenance checks values against); PNGs are drawn with Pillow, and also carry the same lines in a
PNG text chunk, which the emulator reads in place of OCR (it reads no pixels). Needs
``pip install 'flashlane[examples]'`` for fpdf2.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
from pathlib import Path

SEED = 22
VENDORS = ["ACME Ltd", "Globex GmbH", "Initech Inc", "Umbrella SARL", "Hooli LLC", "Stark Industries",
           "Wayne Supplies", "Soylent Foods", "Tyrell Parts", "Cyberdyne Systems"]
ITEMS = ["Paper, A4, 500 sheets", "Toner cartridge", "Desk lamp", "USB-C cable", "Office chair", "Stapler",
         "Monitor stand", "Notebooks (pack of 10)", "Coffee beans, 1 kg", "Whiteboard markers"]
CURRENCIES = ["EUR", "USD", "GBP"]


def invoice(rng: random.Random, n: int) -> dict[str, object]:
    lines = [(rng.choice(ITEMS), rng.randint(1, 9), round(rng.uniform(2, 400), 2)) for _ in range(rng.randint(1, 4))]
    date = dt.date(2026, 1, 1) + dt.timedelta(days=rng.randint(0, 330))
    return {"invoice_number": f"INV-2026-{n:04d}", "vendor": rng.choice(VENDORS), "date": date.isoformat(),
            "currency": rng.choice(CURRENCIES), "lines": lines,
            "total": round(sum(q * p for _, q, p in lines), 2)}


def text_lines(inv: dict[str, object]) -> list[str]:
    head = [f"Invoice number: {inv['invoice_number']}", f"Vendor: {inv['vendor']}", f"Date: {inv['date']}",
            f"Currency: {inv['currency']}"]
    body = [f"  {qty} x {item} @ {price:,.2f}" for item, qty, price in inv["lines"]]  # type: ignore[attr-defined]
    return [*head, "", *body, "", f"Total: {inv['total']:,.2f}"]


def write_pdf(path: Path, lines: list[str]) -> None:
    from fpdf import FPDF  # pip install 'flashlane[examples]'

    pdf = FPDF()
    pdf.set_creation_date(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))  # same seed, same bytes
    pdf.add_page()
    pdf.set_font("Helvetica", size=16)
    pdf.cell(0, 12, "INVOICE", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=11)
    for line in lines:
        pdf.cell(0, 8, line, new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(path))


def write_png(path: Path, lines: list[str]) -> None:
    from PIL import Image, ImageDraw, ImageFont
    from PIL.PngImagePlugin import PngInfo

    img = Image.new("RGB", (620, 60 + 22 * len(lines)), "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=16)
    draw.text((20, 16), "INVOICE", fill="black", font=font)
    for i, line in enumerate(lines):
        draw.text((20, 48 + 22 * i), line, fill="black", font=font)
    info = PngInfo()
    info.add_text("Description", "\n".join(lines))  # what the emulator reads (it reads no pixels)
    img.save(path, "PNG", pnginfo=info)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dest", type=Path, help="the folder to write the invoices to")
    ap.add_argument("--count", type=int, default=12, help="how many invoices (half PDFs, half PNGs)")
    args = ap.parse_args(argv)
    rng = random.Random(SEED)
    args.dest.mkdir(parents=True, exist_ok=True)
    for n in range(1, args.count + 1):
        lines = text_lines(invoice(rng, n))
        if n % 2:
            write_pdf(args.dest / f"invoice-{n:04d}.pdf", lines)
        else:
            write_png(args.dest / f"scan-{n:04d}.png", lines)
    print(f"wrote {args.count} invoices to {args.dest}")


if __name__ == "__main__":
    main()
