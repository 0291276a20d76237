#!/usr/bin/env python3
"""Draws Hangar's app and tray icons as 8-bit RGBA PNGs (Tauri rejects other
PNG kinds) and packs the macOS icon.icns. Standard library only, so anyone can
re-run it: `python3 icons/make.py`."""

import math
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))


def png(width, height, pixels):
    """pixels: rows of (r, g, b, a) tuples -> PNG bytes (colour type 6, 8 bit)."""
    raw = b"".join(b"\x00" + bytes(c for px in row for c in px) for row in pixels)

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def coverage(inside, x, y, n=4):
    """Anti-aliasing: the share of n*n subsamples of pixel (x, y) inside the shape."""
    hits = sum(inside(x + (i + 0.5) / n, y + (j + 0.5) / n) for i in range(n) for j in range(n))
    return hits / (n * n)


def rounded_square(u, v, r=0.22):
    """u, v in [0, 1]: inside a square with rounded corners."""
    dx = max(r - u, 0, u - (1 - r))
    dy = max(r - v, 0, v - (1 - r))
    return 0 <= u <= 1 and 0 <= v <= 1 and dx * dx + dy * dy <= r * r


def hangar(u, v, thick=0.09):
    """A hangar seen from the front: an arch over a doorway, on a ground line."""
    cx, base, radius = 0.5, 0.72, 0.34
    d = math.hypot(u - cx, v - base)
    arch = v <= base and radius - thick <= d <= radius
    ground = 0.13 <= u <= 0.87 and base <= v <= base + thick
    door = abs(u - cx) <= 0.1 and base - 0.2 <= v <= base
    return arch or ground or door


def blend(dst, src, a):
    return tuple(round(d * (1 - a) + s * a) for d, s in zip(dst, src))


def app_icon(size):
    rows = []
    for y in range(size):
        row = []
        for x in range(size):
            bg = coverage(lambda a, b: rounded_square(a / size, b / size), x, y)
            fg = coverage(lambda a, b: hangar(a / size, b / size), x, y)
            # A blue gradient from top to bottom, a white hangar on it.
            t = y / size
            colour = (int(40 + 30 * t), int(110 - 40 * t), int(220 - 60 * t))
            colour = blend(colour, (255, 255, 255), fg)
            row.append((*colour, round(255 * bg)))
        rows.append(row)
    return png(size, size, rows)


TRAY_STATES = {
    # state: (dot colour or None, draw pause bars)
    "idle": ((52, 199, 89), False),
    "building": ((255, 159, 10), False),
    "failed": ((255, 59, 48), False),
    "paused": ((142, 142, 147), True),
}


def tray_icon(size, state):
    dot, bars = TRAY_STATES[state]
    rows = []
    for y in range(size):
        row = []
        for x in range(size):
            def shape(a, b):
                return hangar(a / size, b / size * 0.95 + 0.02, thick=0.12)
            a = coverage(shape, x, y)
            px = (40, 40, 40, round(255 * a))

            def in_dot(a_, b_):
                return math.hypot(a_ / size - 0.8, b_ / size - 0.22) <= 0.2
            d = coverage(in_dot, x, y)
            if bars:
                def in_bars(a_, b_):
                    u, v = a_ / size, b_ / size
                    return 0.1 <= v <= 0.34 and (0.68 <= u <= 0.76 or 0.84 <= u <= 0.92)
                d = coverage(in_bars, x, y)
            if d > 0:
                px = (*blend(px[:3], dot, d), max(px[3], round(255 * d)))
            row.append(px)
        rows.append(row)
    return png(size, size, rows)


def icns(entries):
    """entries: (OSType, PNG bytes) -> an .icns file (PNG payloads, macOS 10.7+)."""
    body = b"".join(kind + struct.pack(">I", len(data) + 8) + data for kind, data in entries)
    return b"icns" + struct.pack(">I", len(body) + 8) + body


def write(name, data):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)


def main():
    sizes = {s: app_icon(s) for s in (32, 64, 128, 256, 512, 1024)}
    write("32x32.png", sizes[32])
    write("128x128.png", sizes[128])
    write("128x128@2x.png", sizes[256])
    write("icon.png", sizes[512])
    write("icon.icns", icns([(b"ic07", sizes[128]), (b"ic08", sizes[256]),
                             (b"ic09", sizes[512]), (b"ic10", sizes[1024]),
                             (b"ic11", sizes[32]), (b"ic12", sizes[64])]))
    for state in TRAY_STATES:
        write(f"tray-{state}.png", tray_icon(44, state))


if __name__ == "__main__":
    main()
