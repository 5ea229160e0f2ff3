#!/usr/bin/env python3
"""Facts about a PNG screenshot, for the report-rendering test: prints one JSON object
{"width", "height", "colours" (distinct RGB values), "nonWhite" (share of pixels that are not
near-white), "has": {"#rrggbb": pixel count} for each colour given as an argument}.

Decodes 8-bit RGB/RGBA, non-interlaced PNGs (what Chromium's --screenshot writes) with zlib
only (PNG specification, ISO/IEC 15948: chunks, zlib-compressed scanlines, filters 0-4).
Exits 1 with a message for anything else."""
import json, struct, sys, zlib


def main(path, wanted):
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        sys.exit(f"{path}: not a PNG")
    pos, idat, header = 8, [], None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + length
    width, height, depth, colour_type, _, _, interlace = header
    if depth != 8 or colour_type not in (2, 6) or interlace != 0:
        sys.exit(f"{path}: unsupported PNG (depth {depth}, colour type {colour_type}, interlace {interlace})")
    bpp = 3 if colour_type == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = width * bpp
    prev = bytearray(stride)
    counts, non_white, i = {}, 0, 0
    want = {w.lower(): 0 for w in wanted}
    for _ in range(height):
        f = raw[i]; line = bytearray(raw[i + 1:i + 1 + stride]); i += 1 + stride
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if f == 1: line[x] = (line[x] + a) & 255
            elif f == 2: line[x] = (line[x] + b) & 255
            elif f == 3: line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c; pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        for x in range(0, stride, bpp):
            rgb = (line[x], line[x + 1], line[x + 2])
            counts[rgb] = counts.get(rgb, 0) + 1
        prev = line
    for rgb, n in counts.items():
        if min(rgb) < 235:
            non_white += n
        key = "#%02x%02x%02x" % rgb
        if key in want:
            want[key] = n
    print(json.dumps({"width": width, "height": height, "colours": len(counts),
                      "nonWhite": round(non_white / (width * height), 4), "has": want}))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: png-stats.py FILE.png [#rrggbb ...]")
    main(sys.argv[1], sys.argv[2:])
