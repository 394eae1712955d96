#!/bin/sh
# scripts/demo.sh — the main job: mount a demo backing directory through
# hmmfs with default options and show it working.  Run by `make demo`.
#
#   HMMFS_DEMO_DIR   where backing/ and mnt/ go (default /tmp/hmmfs-demo)
#   HMMFS            the daemon (default build/hmmfs)
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
hmmfs=${HMMFS:-$top/build/hmmfs}
dir=${HMMFS_DEMO_DIR:-/tmp/hmmfs-demo}
backing=$dir/backing
mnt=$dir/mnt

if [ -t 1 ]; then bold='\033[1m' plain='\033[0m'; else bold='' plain=''; fi
step() { printf "\n${bold}\$ %s${plain}\n" "$*"; sh -c "$*"; }

mkdir -p "$backing" "$mnt"
if mountpoint -q "$mnt"; then
	echo "hmmfs demo: unmounting the previous demo at $mnt"
	fusermount3 -u "$mnt" || umount -l "$mnt"
fi

# Something to look at in BACKING.
printf 'Hello from the backing directory.\n' >"$backing/hello.txt"
mkdir -p "$backing/docs"
cp "$top/README.md" "$backing/docs/README.md" 2>/dev/null || true
head -c 8388608 /dev/urandom >"$backing/random.bin"

echo "hmmfs demo: mounting $backing at $mnt (default options)"
"$hmmfs" "$backing" "$mnt"

step "mount | grep ' $mnt '"
step "ls -l '$mnt'"
step "cat '$mnt/hello.txt'"
step "echo 'written through hmmfs' > '$mnt/new.txt' && cat '$backing/new.txt'"
step "cmp '$mnt/random.bin' '$backing/random.bin' && echo 'random.bin: same bytes through the mount'"
step "dd if='$mnt/random.bin' of=/dev/null bs=1M 2>&1 | tail -n 1"
step "df -h '$mnt'"

# The device tier (hostsim by default): move half of random.bin to device
# memory, read it back through the bounce path, look at where it lives.
ctl=${HMMFSCTL:-$top/build/hmmfsctl}
step "'$ctl' migrate --to device '$mnt/random.bin' --length 4M"
step "'$ctl' residency '$mnt/random.bin'"
step "cmp '$mnt/random.bin' '$backing/random.bin' && echo 'random.bin: same bytes, half of them read through bounce buffers'"
step "'$ctl' devop '$mnt/random.bin' --op xor --value 255 --offset 0 --length 4096 && '$ctl' devop '$mnt/random.bin' --op xor --value 255 --offset 0 --length 4096"
step "cmp '$mnt/random.bin' '$backing/random.bin' && echo 'random.bin: two device-side XORs cancel out'"
# Read-only replicas: the other half gets a copy in device memory while
# it stays on the host; the device hashes its copy, a write drops it.
step "'$ctl' replicate --to device:0 '$mnt/random.bin' --offset 4M --length 4M"
step "'$ctl' residency '$mnt/random.bin'"
step "'$ctl' devop '$mnt/random.bin' --op xxh64 --device 0 && xxhsum -H1 '$backing/random.bin' 2>/dev/null"
step "printf x | dd of='$mnt/random.bin' bs=1 seek=6000000 conv=notrunc status=none && '$ctl' residency '$mnt/random.bin' --offset 5M --length 1M"
step "'$ctl' stats '$mnt'"

cat <<MSG

hmmfs is mounted at $mnt (backing: $backing).
Unmount it with:   fusermount3 -u $mnt    (or: umount $mnt)
MSG
