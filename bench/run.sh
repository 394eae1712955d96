#!/bin/bash
# bench/run.sh — the benchmark suite (`make bench`, `make bench QUICK=1`).
#
# In one run on one machine, side by side, over one BACKING directory on the
# real disk:
#   native          BACKING itself, no FUSE
#   passthrough_ll  libfuse's example, built here from libfuse3-dev's
#                   examples, default options (-o source=BACKING)
#   hmmfs           default options except host_cache=HOST_CACHE
#   hmmfs-device    the same, the working set migrated to the hostsim device
#                   before each job (warm jobs on the small working set)
#   hmmfs-ksm       the same with -o ksm=on (warm jobs on the small set)
# fio jobs (bench/seq-1m.fio, bench/rand-4k.fio, bench/meta.fio), a listing
# of a 100k-entry directory, the daemons' peak RSS and CPU seconds per GiB,
# migration throughput both ways, bounce reads against host-tier reads, and
# the dedupe scan rate and memory saved.  A configuration or measurement
# that this build cannot run gets a "not run: why" row, never a number.
#
# Writes bench/results/DATE[-quick]/: results.md (the table, the machine
# line), results.tsv, PNG plots, raw/ (fio JSON, not committed).
#
# Environment:
#   QUICK=1        the subset of jobs, small files, short jobs (< 5 min)
#   HMMFS, HMMFSCTL  the binaries (default build/hmmfs, build/hmmfsctl)
#   BENCH_DIR      where BACKING and the mounts go (default /var/tmp; must
#                  be a real disk, not tmpfs)
#   RESULTS        output directory (default bench/results/DATE[-quick])
#   HOST_CACHE     hmmfs host_cache (default 256M quick, 512M full); the
#                  working sets are HOST_CACHE/2 ("small") and 2x ("large")
#   RUNTIME        seconds per fio job (default 3 quick, 4 full)
#   NFILES         files for create/stat/unlink (default 2000 quick, 20000
#                  full, at most a sixth of the hard descriptor limit,
#                  see below)
#   NDIRENT        entries in the listed directory (default 100000)
#
# Needs root (drop_caches, FUSE mounts).  Everything it mounts or starts is
# unmounted and stopped on exit, failure or interrupt.
set -eu -o pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
hmmfs=${HMMFS:-$top/build/hmmfs}
hmmfsctl=${HMMFSCTL:-$top/build/hmmfsctl}
quick=${QUICK:-0}
[ "$quick" = 0 ] && quick=
t_start=$(date +%s)

if [ -n "$quick" ]; then
	HOST_CACHE=${HOST_CACHE:-256M} RUNTIME=${RUNTIME:-3}
	NFILES=${NFILES:-2000} KSM_FILE=${KSM_FILE:-64M} mode=quick
else
	HOST_CACHE=${HOST_CACHE:-512M} RUNTIME=${RUNTIME:-4}
	NFILES=${NFILES:-20000} KSM_FILE=${KSM_FILE:-256M} mode=full
fi
NDIRENT=${NDIRENT:-100000}
# Both FUSE daemons keep a descriptor for every inode the kernel holds,
# and hmmfs a second for a file with cached data; bench/meta.fio's three
# jobs make NFILES files each (fio writes the stat and unlink jobs' files
# at start).  Give every process the hard limit and keep 6 x NFILES under
# it, or the daemons run out (EMFILE) before the jobs end.
ulimit -n "$(ulimit -Hn)"
nfiles_note=
nofile=$(ulimit -n)
if [ "$nofile" != unlimited ] && [ "$NFILES" -gt $((nofile / 6)) ]; then
	NFILES=$((nofile / 6))
	nfiles_note=" (capped at a sixth of the descriptor limit, $nofile)"
fi
RESULTS=${RESULTS:-$top/bench/results/$(date +%F)${quick:+-quick}}

say() { printf 'bench: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

# Sizes in bytes (K, M, G suffixes).
bytes() { numfmt --from=iec "$1"; }
hc_bytes=$(bytes "$HOST_CACHE")
ws_small=$((hc_bytes / 2))
ws_large=$((hc_bytes * 2))
ksm_file=$(bytes "$KSM_FILE")

[ -x "$hmmfs" ] && [ -x "$hmmfsctl" ] || die "build hmmfs first (make)"
for t in fio python3 gnuplot fusermount3 cc pkg-config; do
	command -v "$t" >/dev/null || die "$t not found: run scripts/deps.sh"
done

base=$(mktemp -d "${BENCH_DIR:-/var/tmp}/hmmfs-bench.XXXXXX")
fstype=$(stat -f -c %T "$base")
[ "$fstype" = tmpfs ] && die "BENCH_DIR is on tmpfs; use a real disk"
B=$base/backing M=$base/mnt
mkdir -p "$B" "$M"
pid=""	# the running daemon, if any

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if mountpoint -q "$M" 2>/dev/null; then
		fusermount3 -u "$M" 2>/dev/null || umount -l "$M" || true
	fi
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$base"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rm -rf "$RESULTS"
RAW=$RESULTS/raw
mkdir -p "$RAW"
: >"$RAW/jobs.tsv"	# cfg job status json|why cpu_s
: >"$RAW/extra.tsv"	# key value unit note
: >"$RAW/configs.tsv"	# cfg status options|why
extra() { printf '%s\t%s\t%s\t%s\n' "$@" >>"$RAW/extra.tsv"; }

# --- what this build supports -------------------------------------------
hmmfs_help=$("$hmmfs" --help 2>&1 || true)
ctl_help=$("$hmmfsctl" --help 2>&1 || true)
has_device="" has_ksm="" has_bounce=""
why_device="" why_ksm="" why_bounce=""
if ! grep -q 'device=hostsim' <<<"$hmmfs_help"; then
	why_device="hmmfs --help has no -o device=hostsim"
elif ! grep -q 'migrate --to' <<<"$ctl_help"; then
	why_device="hmmfsctl has no migrate command"
else
	has_device=1
fi
if ! grep -q 'ksm=' <<<"$hmmfs_help"; then
	why_ksm="hmmfs --help has no -o ksm= (dedupe not built yet)"
elif ! grep -qE '^ +ksm ' <<<"$ctl_help"; then
	why_ksm="hmmfsctl has no ksm command"
else
	has_ksm=1
fi
if [ -z "$has_device" ]; then
	why_bounce=$why_device
elif ! grep -q 'migrate=bounce' <<<"$hmmfs_help"; then
	why_bounce="hmmfs --help has no -o migrate=bounce"
else
	has_bounce=1
fi
can_drop=1
[ -w /proc/sys/vm/drop_caches ] || can_drop=""

# --- passthrough_ll, built from the installed examples ---------------------
ptll=$base/passthrough_ll ptll_src="" why_ptll=""
for d in /usr/share/doc/libfuse3-dev/examples /usr/share/doc/libfuse3-dev/example \
	 /usr/share/doc/fuse3/examples; do
	[ -f "$d/passthrough_ll.c" ] && { ptll_src=$d; break; }
done
if [ -z "$ptll_src" ]; then
	why_ptll="passthrough_ll.c not found in libfuse3-dev's examples"
elif ! cc -O2 -DHAVE_FALLOCATE -DHAVE_POSIX_FALLOCATE -DHAVE_COPY_FILE_RANGE \
	-I"$ptll_src" "$ptll_src/passthrough_ll.c" -o "$ptll" \
	$(pkg-config --cflags --libs fuse3) -lpthread 2>"$RAW/ptll-build.log"; then
	why_ptll="passthrough_ll did not build (raw/ptll-build.log)"
fi

# --- the machine ------------------------------------------------------------
cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
mem=$(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)
os=$(. /etc/os-release && echo "$PRETTY_NAME")
rev=$(git -C "$top" describe --always --dirty 2>/dev/null || echo unknown)
fusever=$(dpkg-query -W -f='${Version}' libfuse3-dev 2>/dev/null || echo "?")
{
	echo "machine: $(nproc) cores ($cpu), $mem RAM, $os, kernel $(uname -r);"
	echo "BACKING on $(df -T "$base" | awk 'NR == 2 {print $2}') under ${BENCH_DIR:-/var/tmp};"
	echo "$(fio --version), libfuse3-dev $fusever, hmmfs $rev; $mode run $(date '+%F %H:%M');"
	echo "host_cache=$HOST_CACHE, working sets small=$((ws_small >> 20)) MiB, large=$((ws_large >> 20)) MiB,"
	echo "$RUNTIME s per fio job, $NFILES files for create/stat/unlink$nfiles_note, $NDIRENT entries listed"
} | tr '\n' ' ' | sed 's/ $//' >"$RAW/machine.txt"

# --- mounting -----------------------------------------------------------------
# cfg_opts CFG: hmmfs -o options for a configuration.
cfg_opts() {
	case $1 in
	hmmfs|hmmfs-device) echo "host_cache=$HOST_CACHE" ;;
	hmmfs-ksm) echo "host_cache=$HOST_CACHE,ksm=on" ;;
	esac
}

# mount_cfg CFG [OPTS]: start CFG's daemon in the foreground (so $pid is
# the daemon) and wait for the mount.  Sets T, the directory to test in.
mount_cfg() {
	local cfg=$1 opts=${2:-$(cfg_opts "$1")} i
	case $cfg in
	native) T=$B; return 0 ;;
	passthrough_ll) "$ptll" -f -o "source=$B" "$M" 2>>"$RAW/daemon.log" & ;;
	*) "$hmmfs" "$B" "$M" -f -o "$opts" 2>>"$RAW/daemon.log" & ;;
	esac
	pid=$!
	T=$M
	for i in $(seq 100); do
		mountpoint -q "$M" && return 0
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	say "$cfg: mount failed (raw/daemon.log)"
	kill "$pid" 2>/dev/null || true
	pid=""
	return 1
}

umount_cfg() {
	[ -n "$pid" ] || return 0
	fusermount3 -u "$M" || umount "$M"
	wait "$pid" || say "daemon exited with status $?"
	pid=""
}

# scrub: one line of an error message, without this run's paths.
scrub() { tr '\t' ' ' | sed -e "s|$M|MNT|g" -e "s|$B|BACKING|g" -e 's/^fio: //'; }

drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

cpu_ticks() { [ -n "$pid" ] && sed 's/.*) //' "/proc/$pid/stat" | awk '{print $12 + $13}' || echo 0; }
hwm_kb() { [ -n "$pid" ] && awk '/^VmHWM/ {print $2}' "/proc/$pid/status" || echo 0; }
clk_tck=$(getconf CLK_TCK)

# Peak RSS of each configuration's daemons, over all its mounts; for hmmfs
# also the peak less the simulated device memory it holds (hostsim's
# arena lives in the daemon: device memory, not overhead).
declare -A peak_kb peak_nodev_kb
dev_kb() {
	[ -n "$pid" ] && [ "$1" != native ] && [ "$1" != passthrough_ll ] || { echo 0; return; }
	"$hmmfsctl" stats "$M" --json 2>/dev/null |
		python3 -c 'import json, sys; d = json.load(sys.stdin); print(d.get("device_frames_hwm", 0) * d.get("page_size", 0) // 1024)' ||
		echo 0
}
note_hwm() {
	local kb dkb
	kb=$(hwm_kb)
	dkb=$(dev_kb "$1")
	[ "${kb:-0}" -gt "${peak_kb[$1]:-0}" ] && peak_kb[$1]=$kb
	[ $((kb - dkb)) -gt "${peak_nodev_kb[$1]:-0}" ] && peak_nodev_kb[$1]=$((kb - dkb))
	return 0
}

# --- the jobs -------------------------------------------------------------------
# A job is "SECTION MODE NUMJOBS CACHE WS": SECTION of seq-1m.fio or
# rand-4k.fio, MODE buffered|direct, CACHE cold|warm, WS small|large.
all_jobs() {
	local s m n c w
	for w in small large; do for c in cold warm; do for n in 1 4; do
		for m in buffered direct; do
			for s in seqread-1m seqwrite-1m randread-4k randwrite-4k randrw-4k; do
				echo "$s $m $n $c $w"
			done
		done
	done; done; done
}
quick_jobs() {
	cat <<-EOF
	seqread-1m buffered 1 warm small
	seqwrite-1m buffered 1 warm small
	randread-4k buffered 1 warm small
	randwrite-4k buffered 1 warm small
	seqread-1m direct 1 warm small
	randread-4k direct 1 warm small
	randwrite-4k direct 1 warm small
	randrw-4k direct 1 warm small
	seqread-1m direct 1 cold small
	randread-4k direct 4 warm small
	randread-4k direct 1 warm large
	EOF
}
if [ -n "$quick" ]; then jobs=$(quick_jobs); else jobs=$(all_jobs); fi
# Device and ksm: the warm jobs on the small working set (device_cache and
# the scanner are sized for it); in a quick run, numjobs 1 only.
sub_jobs=$(grep ' warm small$' <<<"$jobs" | { if [ -n "$quick" ]; then grep ' 1 warm'; else cat; fi; })

# wb_counters CFG SECTION [sync]: "writeback_bytes written_bytes" of an
# hmmfs mount for a job that writes, after writing everything back (the
# kernel's dirty pages by sync(1), the cache's by hmmfsctl sync) if
# "sync"; nothing for other configurations and jobs.
wb_counters() {
	case $1/$2 in hmmfs*/*write*|hmmfs*/randrw*) ;; *) return 0 ;; esac
	[ -n "$pid" ] || return 0
	if [ -n "${3:-}" ]; then
		sync
		"$hmmfsctl" sync "$M" >/dev/null 2>&1 || true
	fi
	"$hmmfsctl" stats "$M" --json 2>/dev/null | python3 -c 'import json, sys
d = json.load(sys.stdin); print(d.get("writeback_bytes", 0), d.get("written_bytes", 0))'
}

# write_amp CFG ID "BEFORE" "AFTER": bytes written to BACKING over bytes
# written into the cache during the job (issue 15: at most 1.1).
write_amp() {
	[ -n "$3" ] && [ -n "$4" ] || return 0
	read -r b0 w0 <<<"$3"
	read -r b1 w1 <<<"$4"
	[ $((w1 - w0)) -gt 0 ] || return 0
	extra "write_amp_$1_$2" "$(awk -v b=$((b1 - b0)) -v w=$((w1 - w0)) 'BEGIN {printf "%.3f", b / w}')" x \
		"writeback_bytes / written_bytes over the job, after sync; $(((w1 - w0) >> 20)) MiB in"
}

# run_job CFG SECTION MODE NJ CACHE WS
run_job() {
	local cfg=$1 sec=$2 mode=$3 nj=$4 cache=$5 ws=$6 id file size direct jf t0 t1 out
	id=$sec-$mode-j$nj-$cache-$ws
	file=ws-$ws
	[ "$ws" = small ] && size=$ws_small || size=$ws_large
	[ "$mode" = direct ] && direct=1 || direct=0
	case $sec in seq*) jf=$top/bench/seq-1m.fio ;; *) jf=$top/bench/rand-4k.fio ;; esac
	if [ "$cache" = cold ]; then
		if [ -z "$can_drop" ]; then
			printf '%s\t%s\tnot run\tnot root: cannot drop caches\t\n' "$cfg" "$id" >>"$RAW/jobs.tsv"
			return 0
		fi
		# The daemon's own cache goes with a remount.
		umount_cfg
		drop_caches
		mount_cfg "$cfg" || { printf '%s\t%s\tnot run\tmount failed\t\n' "$cfg" "$id" >>"$RAW/jobs.tsv"; return 0; }
	else
		cat "$T/$file" >/dev/null
		if [ "$cfg" = hmmfs-device ]; then
			"$hmmfsctl" migrate --to device "$T/$file" >/dev/null ||
				say "$cfg: hmmfsctl migrate --to device failed"
		fi
	fi
	out=$RAW/$cfg/$id.json
	mkdir -p "$RAW/$cfg"
	wb0=$(wb_counters "$cfg" "$sec")
	t0=$(cpu_ticks)
	if DIR=$T FILE=$file SIZE=$size DIRECT=$direct NUMJOBS=$nj RUNTIME=$RUNTIME \
		TIMEBASED=$([ "$cache" = warm ] && echo 1 || echo 0) \
		fio --section="$sec" --output-format=json --output="$out" "$jf" 2>"$out.err"; then
		t1=$(cpu_ticks)
		printf '%s\t%s\tok\t%s\t%s\n' "$cfg" "$id" "${out#"$RESULTS"/}" \
			"$(awk -v a="$t0" -v b="$t1" -v h="$clk_tck" 'BEGIN {print (b - a) / h}')" >>"$RAW/jobs.tsv"
	else
		printf '%s\t%s\tfailed\tfio: %s\t\n' "$cfg" "$id" "$(tail -n 1 "$out.err" | scrub)" >>"$RAW/jobs.tsv"
	fi
	[ -n "$pid" ] && [ "$cfg" = hmmfs-device ] &&
		"$hmmfsctl" stats "$M" --json >"$RAW/$cfg/$id.stats.json" 2>/dev/null
	write_amp "$cfg" "$id" "$wb0" "$(wb_counters "$cfg" "$sec" sync)"
	note_hwm "$cfg"
	say "$cfg $id: $(tail -n 1 "$RAW/jobs.tsv" | cut -f 3)"
}

# run_meta CFG: create/stat/unlink, then list the NDIRENT directory cold
# (after a remount and drop_caches) and warm.
run_meta() {
	local cfg=$1 out t0 t1 c0 c1 n
	mkdir -p "$T/meta" "$RAW/$cfg"
	out=$RAW/$cfg/meta.json
	c0=$(cpu_ticks)
	if DIR=$T/meta NFILES=$NFILES fio --output-format=json --output="$out" \
		"$top/bench/meta.fio" 2>"$out.err"; then
		c1=$(cpu_ticks)
		printf '%s\tmeta\tok\t%s\t%s\n' "$cfg" "${out#"$RESULTS"/}" \
			"$(awk -v a="$c0" -v b="$c1" -v h="$clk_tck" 'BEGIN {print (b - a) / h}')" >>"$RAW/jobs.tsv"
	else
		printf '%s\tmeta\tfailed\tfio: %s\t\n' "$cfg" "$(tail -n 1 "$out.err" | scrub)" >>"$RAW/jobs.tsv"
	fi
	for c in cold warm; do
		if [ "$c" = cold ]; then
			[ -n "$can_drop" ] || { printf '%s\tlist-%s\tnot run\tnot root: cannot drop caches\t\n' "$cfg" "$c" >>"$RAW/jobs.tsv"; continue; }
			umount_cfg; drop_caches; mount_cfg "$cfg" || return 0
		fi
		t0=$(date +%s.%N)
		n=$(python3 -c 'import os, sys; print(sum(1 for _ in os.scandir(sys.argv[1])))' "$T/dir100k")
		t1=$(date +%s.%N)
		printf '%s\tlist-%s\tentries\t%s\t%s\n' "$cfg" "$c" "$n" \
			"$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')" >>"$RAW/jobs.tsv"
	done
	note_hwm "$cfg"
	say "$cfg: metadata done"
}

# --- BACKING: the working sets and the big directory, written natively once ---
say "$mode run; results in $RESULTS"
say "laying out $((ws_small >> 20)) + $((ws_large >> 20)) MiB and $NDIRENT entries in $base"
fio --name=lay --directory="$B" --filename=ws-small --size="$ws_small" --rw=write \
	--bs=1M --output=/dev/null
fio --name=lay --directory="$B" --filename=ws-large --size="$ws_large" --rw=write \
	--bs=1M --output=/dev/null
python3 - "$B/dir100k" "$NDIRENT" <<'EOF'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
os.mkdir(d)
for i in range(n):
    os.close(os.open(os.path.join(d, "e%06d" % i), os.O_CREAT | os.O_WRONLY, 0o644))
EOF
sync

# --- the fio matrix, configuration by configuration ---------------------------
configs="native passthrough_ll hmmfs hmmfs-device hmmfs-ksm"
for cfg in $configs; do
	why=""
	case $cfg in
	passthrough_ll) why=$why_ptll ;;
	hmmfs-device) why=$why_device ;;
	hmmfs-ksm) why=$why_ksm ;;
	esac
	if [ -n "$why" ]; then
		printf '%s\tnot run\t%s\n' "$cfg" "$why" >>"$RAW/configs.tsv"
		say "$cfg: not run: $why"
		continue
	fi
	case $cfg in
	native) opts="(BACKING directly)" ;;
	passthrough_ll) opts="-o source=BACKING (defaults)" ;;
	*) opts="-o $(cfg_opts "$cfg")" ;;
	esac
	[ "$cfg" = hmmfs-device ] && opts="$opts; data migrated to the device before each job"
	if ! mount_cfg "$cfg"; then
		printf '%s\tnot run\tmount failed (raw/daemon.log)\n' "$cfg" >>"$RAW/configs.tsv"
		continue
	fi
	printf '%s\trun\t%s\n' "$cfg" "$opts" >>"$RAW/configs.tsv"
	case $cfg in native|passthrough_ll|hmmfs) list=$jobs ;; *) list=$sub_jobs ;; esac
	while read -r sec mode nj cache ws; do
		run_job "$cfg" "$sec" "$mode" "$nj" "$cache" "$ws"
	done <<<"$list"
	case $cfg in native|passthrough_ll|hmmfs) run_meta "$cfg" ;; esac
	umount_cfg
	[ "$cfg" = native ] || extra "peak_rss_$cfg" "$(awk -v k="${peak_kb[$cfg]:-0}" 'BEGIN {printf "%.1f", k / 1024}')" MiB \
		"VmHWM of the $cfg daemon, highest over its mounts"
	case $cfg in hmmfs*)
		extra "peak_rss_less_device_$cfg" "$(awk -v k="${peak_nodev_kb[$cfg]:-0}" 'BEGIN {printf "%.1f", k / 1024}')" MiB \
			"the same less the hostsim device memory touched (device_frames_hwm); target: host_cache + 64 MiB"
	esac
done

# --- migration both ways ----------------------------------------------------------
# msecs CMD...: run CMD, print its wall time in ms and its stdout's first line.
msecs() {
	local t0 t1 o
	t0=$(date +%s%N)
	o=$("$@" | head -n 1)
	t1=$(date +%s%N)
	echo "$(((t1 - t0) / 1000000)) $o"
}
if [ -n "$has_device" ] && mount_cfg hmmfs; then
	cat "$T/ws-small" >/dev/null
	pgsz=$("$hmmfsctl" stats "$M" --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["page_size"])')
	: >"$RAW/migrate.txt"
	for i in 1 2 3; do
		for dir in device host; do
			echo "$dir $(msecs "$hmmfsctl" migrate --to "$dir" "$T/ws-small")" >>"$RAW/migrate.txt"
		done
	done
	# "to device|host ms N pages moved ...": the median of three, MB/s.
	for dir in device host; do
		awk -v d="$dir" -v p="$pgsz" '$1 == d && $3 > 0 { print ($3 * p / 1e6) / ($2 ? $2 / 1000 : 0.001) }' \
			"$RAW/migrate.txt" | sort -g | sed -n 2p | {
			read -r v || v=""
			if [ -n "$v" ]; then
				extra "migrate_to_$dir" "$(printf '%.0f' "$v")" MB/s \
					"hmmfsctl migrate --to $dir of a $((ws_small >> 20)) MiB cached file, median of 3"
			else
				extra "migrate_to_$dir" "not run" "" "no pages moved (raw/migrate.txt)"
			fi
		}
	done
	umount_cfg
else
	extra migrate_to_device "not run" "" "${why_device:-mount failed}"
	extra migrate_to_host "not run" "" "${why_device:-mount failed}"
fi

# --- bounce reads against host-tier reads -------------------------------------
# seqread-1m direct=1 of the small set from the host tier, then again after
# migrating it to the device, with migrate=bounce so that reads of device
# pages are served through bounce buffers instead of promoting the pages.
bounce_read() {	# $1: label; prints MB/s
	DIR=$T FILE=ws-small SIZE=$ws_small DIRECT=1 NUMJOBS=1 RUNTIME=$RUNTIME TIMEBASED=1 \
		fio --section=seqread-1m --output-format=json --output="$RAW/bounce-$1.json" \
		"$top/bench/seq-1m.fio" 2>/dev/null &&
	python3 -c 'import json, sys; j = json.load(open(sys.argv[1]))["jobs"][0]; print("%.0f" % (j["read"]["bw_bytes"] / 1e6))' \
		"$RAW/bounce-$1.json" || echo failed
}
stat_field() {
	"$hmmfsctl" stats "$M" --json |
		python3 -c 'import json, sys; print(json.load(sys.stdin).get(sys.argv[1], 0))' "$1" || echo 0
}
if [ -n "$has_bounce" ] && mount_cfg hmmfs "host_cache=$HOST_CACHE,migrate=bounce"; then
	cat "$T/ws-small" >/dev/null
	host=$(bounce_read host)
	"$hmmfsctl" migrate --to device "$T/ws-small" >/dev/null
	b0=$(stat_field bounce_reads)
	dev=$(bounce_read device)
	b1=$(stat_field bounce_reads)
	dp=$(stat_field device_pages)
	extra seqread_host_tier "$host" MB/s "seqread-1m direct=1, warm, data in the host tier"
	if [ "$host" = failed ] || [ "$dev" = failed ]; then
		extra seqread_bounce "not run" "" "fio failed (raw/bounce-*.json)"
	elif [ "$b1" -gt "$b0" ]; then
		extra seqread_bounce "$dev" MB/s "the same read, data on the device (migrate=bounce): $((b1 - b0)) bounce reads, $dp device pages after"
		extra bounce_vs_host "$(awk -v a="$dev" -v b="$host" 'BEGIN {printf "%.2f", b ? a / b : 0}')" x "bounce read / host-tier read"
	else
		extra seqread_bounce "not run" "" "read $dev MB/s but bounce_reads did not move: the data was not read from the device"
	fi
	umount_cfg
else
	extra seqread_bounce "not run" "" "${why_bounce:-mount failed}"
fi

# --- dedupe: scan rate and memory saved ------------------------------------------
# Four copies of one file, read through a mount with ksm=on and a host_cache
# that holds them all; the scanner at its fastest; one full scan timed.
ksm_json() { "$hmmfsctl" ksm "$M" --json || echo '{}'; }
ksm_get() {	# ksm_get KEY: a number from the ksm JSON, found at any depth
	python3 -c '
import json, sys
def find(o, k):
    if isinstance(o, dict):
        if k in o: return o[k]
        for v in o.values():
            r = find(v, k)
            if r is not None: return r
    return None
r = find(json.load(sys.stdin), sys.argv[1])
print("" if r is None else r)' "$1"
}
if [ -n "$has_ksm" ] && mkdir -p "$B/ksm" &&
	head -c "$ksm_file" /dev/urandom >"$B/ksm/c0" &&
	for i in 1 2 3; do cp "$B/ksm/c0" "$B/ksm/c$i"; done &&
	mount_cfg hmmfs-ksm "host_cache=$((ksm_file * 8)),ksm=on"; then
	for k in pages_to_scan=65536 sleep_millisecs=0; do
		"$hmmfsctl" ksm "$M" --set "$k" >/dev/null 2>&1 || say "ksm: --set $k refused"
	done
	cat "$T"/ksm/c* >/dev/null
	pgsz=$(stat_field page_size)
	cached=$((4 * ksm_file / pgsz))
	ksm_json >"$RAW/ksm-before.json" || true
	f0=$(ksm_json | ksm_get full_scans) || f0=""
	t0="" t1="" deadline=$(($(date +%s) + 60))
	[ -n "$f0" ] || deadline=0	# no full_scans: nothing to time
	while [ "$(date +%s)" -lt "$deadline" ]; do
		f=$(ksm_json | ksm_get full_scans) || f=""
		if [ -z "$t0" ] && [ "${f:-0}" -gt "${f0:-0}" ]; then t0=$(date +%s.%N) fs=$f; fi
		if [ -n "$t0" ] && [ "$f" -gt "$fs" ]; then t1=$(date +%s.%N); break; fi
		sleep 0.05
	done
	ksm_json >"$RAW/ksm-after.json" || true
	sharing=$(ksm_get pages_sharing <"$RAW/ksm-after.json") || sharing=""
	shared=$(ksm_get pages_shared <"$RAW/ksm-after.json") || shared=""
	if [ -n "$t1" ]; then
		extra ksm_scan_rate "$(awk -v p="$cached" -v s="$pgsz" -v a="$t0" -v b="$t1" 'BEGIN {printf "%.0f", p * s / 1e6 / (b - a)}')" \
			MB/s "one full scan over 4 copies of $((ksm_file >> 20)) MiB ($cached pages) read through the mount, pages_to_scan=65536, sleep_millisecs=0"
	elif [ -n "$f0" ]; then
		extra ksm_scan_rate "not run" "" "full_scans did not advance twice within 60 s (raw/ksm-after.json)"
	else
		extra ksm_scan_rate "not run" "" "hmmfsctl ksm --json has no full_scans (raw/ksm-after.json)"
	fi
	if [ -n "$sharing" ]; then
		extra ksm_saved "$(awk -v n="$sharing" -v s="$pgsz" 'BEGIN {printf "%.1f", n * s / 1048576}')" MiB \
			"pages_sharing x page size; pages_sharing=$sharing pages_shared=${shared:-?}, 4 copies of $((ksm_file >> 20)) MiB ($cached pages)"
	else
		extra ksm_saved "not run" "" "hmmfsctl ksm --json has no pages_sharing"
	fi
	umount_cfg
else
	extra ksm_scan_rate "not run" "" "${why_ksm:-mount failed}"
	extra ksm_saved "not run" "" "${why_ksm:-mount failed}"
fi

# --- report ---------------------------------------------------------------------
wall=$(($(date +%s) - t_start))
extra wall_time "$wall" s "this run, laying out and plotting included"
python3 "$top/bench/report.py" "$RESULTS"
for p in "$RESULTS"/*.gp; do
	[ -e "$p" ] || continue
	(cd "$RESULTS" && gnuplot "$(basename "$p")") || say "gnuplot failed on $p"
	rm -f "$p"
done
cat "$RESULTS/results.md"
say "done in $wall s: $RESULTS"
