# Builds the target images and sample sets of assets/ (numpy only; PNG by hand).
import numpy as np, zlib, struct

def png(path, a):
    a = np.clip(a * 255, 0, 255).astype(np.uint8)
    h, w = a.shape
    raw = b"".join(b"\x00" + a[r].tobytes() for r in range(h))
    def chunk(t, d):
        c = struct.pack(">I", len(d)) + t + d
        return c + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
    data += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    open(path, "wb").write(data)

n = 128
yy, xx = np.mgrid[0:n, 0:n]
x = (xx + 0.5) / n * 4 - 2
y = 2 - (yy + 0.5) / n * 4          # row 0 is the top: y up

# A heart: (x^2 + y^2 - 1)^3 - x^2 y^3 <= 0, scaled, soft edge.
hx, hy = x / 1.3, (y + 0.2) / 1.3
f = (hx**2 + hy**2 - 1) ** 3 - hx**2 * hy**3
png("heart.png", 1 / (1 + np.exp(f / 0.02)))

# Two rings of different brightness (a two-scale density).
r = np.hypot(x, y)
png("rings.png", np.exp(-((r - 1.5) / 0.12) ** 2) + 0.5 * np.exp(-((r - 0.6) / 0.1) ** 2))

# The letter F in a blocky font, with a brightness gradient (denser at the bottom).
F = np.zeros((n, n))
F[16:112, 30:52] = 1      # stem
F[16:38, 52:100] = 1      # top bar
F[54:74, 52:88] = 1       # middle bar
png("letter_f.png", F * (0.4 + 0.6 * (yy / n)))

rng = np.random.default_rng(2024)
m = 4096
# Ring of radius 2, radial std 0.1 (the S2 target).
a = rng.uniform(0, 2 * np.pi, m); rad = 2 + 0.1 * rng.standard_normal(m)
np.save("ring.npy", np.stack([rad * np.cos(a), rad * np.sin(a)], 1).astype(np.float32))
# Two moons (noise 0.08), centred.
t = rng.uniform(0, np.pi, m // 2)
upper = np.stack([np.cos(t), np.sin(t)], 1)
lower = np.stack([1 - np.cos(t), 0.5 - np.sin(t)], 1)
moons = np.concatenate([upper, lower]) + 0.08 * rng.standard_normal((m, 2)) - [0.5, 0.25]
np.save("two_moons.npy", (1.5 * moons).astype(np.float32))
# Archimedean spiral, two turns, noise 0.05.
s = np.sqrt(rng.uniform(0, 1, m)) * 4 * np.pi
sp = np.stack([s * np.cos(s), s * np.sin(s)], 1) / (4 * np.pi) * 2.2
np.save("spiral.npy", (sp + 0.05 * rng.standard_normal((m, 2))).astype(np.float32))
