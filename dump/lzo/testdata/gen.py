#!/usr/bin/python3
# Regenerates vectors.bin: LZO1X blocks made by liblzo2 (Debian's
# python3-lzo) from pages of a real QEMU dump of a Debian 6.1 guest, plus a
# few synthetic inputs. Run: gen.py /path/to/qemu-elf.vmcore
#
# vectors.bin is a sequence of records:
#   u16 name length, name, u8 level, u32 plain length,
#   32 bytes SHA-256 of the plain data, u32 block length, block
# (all little-endian). Level 1 is lzo1x_1_compress (what makedumpfile and
# QEMU use), level 9 is lzo1x_999_compress (more varied instructions).
import hashlib, os, random, struct, sys, zlib
import lzo

def load_pages(path):
    """Pick pages of varied compressibility from the ELF core's RAM."""
    f = open(path, 'rb')
    eh = f.read(64)
    phoff, = struct.unpack_from('<Q', eh, 32)
    phnum, = struct.unpack_from('<H', eh, 56)
    loads = []
    f.seek(phoff)
    for _ in range(phnum):
        t, _, off, _, pa, fs, _, _ = struct.unpack('<IIQQQQQQ', f.read(56))
        if t == 1 and fs >= 1 << 20:
            loads.append((off, pa, fs))
    off, pa, fs = max(loads, key=lambda l: l[2])
    buckets = {}
    for addr in range(0x1000000, min(pa + fs, 0x8000000), 0x1000 * 37):
        f.seek(off + addr - pa)
        page = f.read(4096)
        if page.count(0) == 4096:
            continue
        ratio = len(zlib.compress(page, 1)) * 10 // 4096
        buckets.setdefault(ratio, (addr, page))
    return [('page-%#x' % a, p) for _, (a, p) in sorted(buckets.items())]

def synthetic():
    rnd = random.Random(1)
    noise = bytes(rnd.getrandbits(8) for _ in range(4096))
    text = b''.join(b'line %d of a repetitive log\n' % (i % 97) for i in range(3000))
    return [
        ('zero-page', bytes(4096)),
        ('one-byte', b'x'),
        ('three-bytes', b'abc'),
        ('seventeen', b'0123456789abcdefg'),
        ('pattern-run', b'ab' * 3000),
        ('random-page', noise),
        ('text-80k', text),
        ('random-then-repeat-40k', noise * 10),
    ]

def main():
    out = open(os.path.join(os.path.dirname(__file__), 'vectors.bin'), 'wb')
    for name, plain in synthetic() + load_pages(sys.argv[1]):
        for level in (1, 9):
            block = lzo.compress(plain, level, False)
            n = name.encode()
            out.write(struct.pack('<H', len(n)) + n + struct.pack('<BI', level, len(plain)))
            out.write(hashlib.sha256(plain).digest())
            out.write(struct.pack('<I', len(block)) + block)

main()
