#!/bin/sh
# bench/fd-limit.sh — the daemon's descriptors against files served: create
# N small files through a mount, read them, list the directory with a stat
# of each, drop the kernel's inodes (drop_caches), read them again.  With
# LIMIT set, the running daemon's descriptor limit is lowered to it first
# (prlimit; the daemon raises its own at start).  Prints one line: errors
# per phase, wall seconds of the whole run, the most descriptors the daemon
# held (sampled after each phase) and fd_reopens.  Needs root (drop_caches).
#   HMMFS (default build/hmmfs), HMMFSCTL (default build/hmmfsctl),
#   N (default 20000), LIMIT (default none), OPTS (-o list, default none),
#   BENCH_DIR where BACKING and the mount go (default /var/tmp).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
hmmfs=${HMMFS:-$top/build/hmmfs}
hmmfsctl=${HMMFSCTL:-$top/build/hmmfsctl}
n=${N:-20000}
base=$(mktemp -d "${BENCH_DIR:-/var/tmp}/hmmfs-fd.XXXXXX")
cleanup() {
	mountpoint -q "$base/m" 2>/dev/null && { fusermount3 -u "$base/m" || umount -l "$base/m"; }
	rm -rf "$base"
}
trap cleanup EXIT INT TERM
mkdir -p "$base/b" "$base/m"
"$hmmfs" "$base/b" "$base/m" -f ${OPTS:+-o "$OPTS"} 2>"$base/log" &
pid=$!
for _ in $(seq 100); do mountpoint -q "$base/m" && break; sleep 0.1; done
[ -n "${LIMIT:-}" ] && prlimit --pid "$pid" --nofile="$LIMIT:$LIMIT"
python3 - "$base/m/d" "$n" "$pid" <<'EOF'
import errno, os, sys, time
d, n, pid = sys.argv[1], int(sys.argv[2]), sys.argv[3]
peak = 0
why = {}
def err(e):
    why[errno.errorcode.get(e.errno, str(e.errno))] = 1 + why.get(
        errno.errorcode.get(e.errno, str(e.errno)), 0)
    return 1
def fds():
    global peak
    peak = max(peak, len(os.listdir("/proc/%s/fd" % pid)))
def create():
    e = 0
    for i in range(n):
        try:
            with open("%s/f%05d" % (d, i), "w") as f:
                f.write("file %d\n" % i)
        except OSError as x:
            e += err(x)
    return e
def read():
    e = 0
    for i in range(n):
        try:
            with open("%s/f%05d" % (d, i)) as f:
                e += f.read() != "file %d\n" % i
        except OSError as x:
            e += err(x)
    return e
def ls():
    e = 0
    try:
        for name in os.listdir(d):
            try:
                os.lstat(d + "/" + name)
            except OSError as x:
                e += err(x)
    except OSError as x:
        e += err(x)
    return e
def drop():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("2")
    return 0
os.mkdir(d)
t = time.monotonic()
errs = []
for phase in (create, read, ls, drop, read, ls):
    errs.append("%s=%d" % (phase.__name__, phase()))
    fds()
print("errors %s %s  wall %.1f s  peak daemon fds %d" %
      (" ".join(errs), why or "", time.monotonic() - t, peak))
EOF
"$hmmfsctl" stats "$base/m" --json 2>/dev/null | grep -oE '"(fds_open|fd_reopens)":[0-9]+' | tr '\n' ' ' || true
echo
