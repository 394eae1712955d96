#!/usr/bin/env python3
"""bench/sqlite_load.py DB JOURNAL SHAPE [N] — a sqlite load for
bench/everyday.sh, then its own correctness check.

JOURNAL is delete or wal (PRAGMA journal_mode; synchronous is set to
FULL, so every commit is fsync'ed as an application expects).
SHAPE is
  bulk        N transactions (default 100) of 1,000 rows each
  autocommit  N rows (default 2,000), each its own transaction
Rows are (id, text of 100 bytes, an integer), the same every run.  Then
PRAGMA integrity_check must say "ok" and the row count must match; on a
mismatch the script says what it found and exits 1.  Uses Python's own
sqlite3 module, so it needs nothing beyond python3.
"""
import os
import sqlite3
import sys


def rows(start, count):
    for i in range(start, start + count):
        yield (i, ("%08d" % i) * 12 + "abcd", i * 7919 % 1000003)


def main():
    if len(sys.argv) not in (4, 5) or sys.argv[2] not in ("delete", "wal") \
            or sys.argv[3] not in ("bulk", "autocommit"):
        sys.exit("usage: sqlite_load.py DB delete|wal bulk|autocommit [N]")
    path, journal, shape = sys.argv[1:4]
    if os.path.exists(path):
        sys.exit("sqlite_load.py: %s exists" % path)
    n = int(sys.argv[4]) if len(sys.argv) == 5 else (100 if shape == "bulk" else 2000)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA synchronous=FULL")
    mode = db.execute("PRAGMA journal_mode=%s" % journal).fetchone()[0]
    if mode != journal:
        sys.exit("sqlite_load.py: journal_mode is %s, not %s" % (mode, journal))
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT, v INTEGER)")
    if shape == "bulk":
        for tx in range(n):
            db.execute("BEGIN")
            db.executemany("INSERT INTO t VALUES (?, ?, ?)", rows(tx * 1000, 1000))
            db.execute("COMMIT")
        want = n * 1000
    else:
        for row in rows(0, n):
            db.execute("INSERT INTO t VALUES (?, ?, ?)", row)
        want = n
    db.close()

    db = sqlite3.connect(path)
    check = db.execute("PRAGMA integrity_check").fetchall()
    count, vsum = db.execute("SELECT count(*), sum(v) FROM t").fetchone()
    db.close()
    want_sum = sum(r[2] for r in rows(0, want))
    if check != [("ok",)] or count != want or vsum != want_sum:
        sys.exit("sqlite_load.py: %s: integrity_check %s, %s rows (want %d), sum %s (want %d)"
                 % (path, check, count, want, vsum, want_sum))


if __name__ == "__main__":
    main()
