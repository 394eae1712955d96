#!/bin/sh
# Install, from Debian 12 packages, what hmmfs needs to build, test and
# benchmark (bench/run.sh: python3, gnuplot; libfuse3-dev has the examples;
# xxhash's xxhsum checks a device's hash in the demo; bc times bench steps;
# POCL, the OpenCL ICD loader and clinfo give make check a real OpenCL
# runtime for device=opencl on the CPU; GlusterFS and iproute2 run the
# two-node test, tests/gluster/run.sh).
# OPT_PKGS serve the everyday-workload suite and bench (bench/everyday.sh:
# rsync, git, perf): installed with the rest as root, only named without
# root, since building does not need them.
# Fast when everything is there (one dpkg-query); otherwise apt-get installs
# the missing packages, which needs root.  Run by the README's two commands
# and by `make deps`; `make` itself does not run it.
set -eu

PKGS="build-essential pkg-config fuse3 libfuse3-dev liburing-dev libaio-dev \
libxxhash-dev libcunit1-dev liburcu-dev fio attr acl util-linux e2fsprogs \
python3 gnuplot-nox xxhash bc pocl-opencl-icd ocl-icd-libopencl1 clinfo \
glusterfs-server glusterfs-client iproute2"
OPT_PKGS="rsync git linux-perf"

missing_of() {
	for p in "$@"; do
		st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
		case "$st" in
		*"install ok installed"*) ;;
		*) printf ' %s' "$p" ;;
		esac
	done
}
# shellcheck disable=SC2086
missing=$(missing_of $PKGS)
# shellcheck disable=SC2086
optional=$(missing_of $OPT_PKGS)
[ -z "$missing$optional" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	if [ -n "$missing" ]; then
		echo "hmmfs: need root to install packages; run: sudo apt-get install$missing$optional" >&2
		exit 1
	fi
	echo "hmmfs: notice: the everyday-workload suite needs:$optional (sudo apt-get install$optional)" >&2
	exit 0
fi
missing="$missing$optional"
echo "hmmfs: installing missing packages:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
echo "hmmfs: packages installed"
