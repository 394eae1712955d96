#!/usr/bin/env python3
# tests/gluster/c2o.py WRITER_DIR READER_DIR [PAUSE] — close-to-open across
# two views of one file: ROUNDS rounds of one writer operation (append,
# overwrite in place, truncate, growth by rewrite, pwrite past the end)
# done and closed through WRITER_DIR, then a fresh open through
# READER_DIR that must read exactly the writer's bytes.  Between rounds
# the reader reads the file whole, so its caches stay warm; PAUSE seconds
# (default 0) after each write let attr_timeout run out, so the kernel
# asks for attributes before the open.  Prints one line per stale read,
# then "stale N of ROUNDS"; exit 1 if any.
import os
import sys

wr, rd = sys.argv[1], sys.argv[2]
pause = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
rounds = int(os.environ.get("ROUNDS", "20"))
name = "c2o-%d-%s" % (os.getpid(), str(pause).replace(".", "_"))
data = os.urandom(140892)
with open(os.path.join(wr, name), "wb") as fh:
    fh.write(data)


def read_all(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        size, got = os.fstat(fd).st_size, b""
        while True:
            b = os.read(fd, 1 << 20)
            if not b:
                return size, got
            got += b
    finally:
        os.close(fd)


stale = 0
for r in range(rounds):
    read_all(os.path.join(rd, name))
    w = os.path.join(wr, name)
    op = r % 5
    if op == 0:
        add = os.urandom(70000)
        with open(w, "ab") as fh:
            fh.write(add)
        data += add
    elif op == 1:
        b = os.urandom(5000)
        fd = os.open(w, os.O_WRONLY)
        os.pwrite(fd, b, 1000)
        os.close(fd)
        data = data[:1000] + b + data[6000:]
    elif op == 2:
        os.truncate(w, len(data) // 2)
        data = data[:len(data) // 2]
    elif op == 3:
        data = os.urandom(len(data) + 12345)
        with open(w, "wb") as fh:
            fh.write(data)
    else:
        b = os.urandom(3000)
        fd = os.open(w, os.O_WRONLY)
        os.pwrite(fd, b, len(data) + 100)
        os.close(fd)
        data = data + b"\0" * 100 + b
    if pause:
        import time
        time.sleep(pause)
    size, got = read_all(os.path.join(rd, name))
    if got != data:
        stale += 1
        print("round %d op %d: fstat %d, read %d bytes, want %d" %
              (r, op, size, len(got), len(data)))
os.unlink(os.path.join(wr, name))
print("stale %d of %d" % (stale, rounds))
sys.exit(1 if stale else 0)
