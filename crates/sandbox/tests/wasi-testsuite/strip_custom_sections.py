import sys
def leb(b, i):
    r = s = 0
    while True:
        x = b[i]; i += 1
        r |= (x & 0x7f) << s; s += 7
        if x < 0x80: return r, i
def strip(data):
    assert data[:4] == b'\0asm'
    out = bytearray(data[:8]); i = 8
    while i < len(data):
        sid = data[i]; n, j = leb(data, i + 1)
        if sid != 0: out += data[i:j + n]
        i = j + n
    return bytes(out)
for p in sys.argv[1:]:
    d = open(p, 'rb').read(); s = strip(d)
    open(p, 'wb').write(s)
