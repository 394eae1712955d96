#!/bin/sh
# Install, from Debian 12 packages, what hmmfs needs to build, test and
# benchmark (bench/run.sh: python3, gnuplot; libfuse3-dev has the examples;
# bench/everyday.sh: rsync, git, perf).
# Fast when everything is there (one dpkg-query); otherwise apt-get installs
# the missing packages, which needs root.  Run by `make` before each build.
set -eu

PKGS="build-essential pkg-config fuse3 libfuse3-dev liburing-dev libaio-dev \
libxxhash-dev libcunit1-dev liburcu-dev fio attr acl util-linux e2fsprogs \
python3 gnuplot-nox rsync git linux-perf"

missing=""
for p in $PKGS; do
	st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case "$st" in
	*"install ok installed"*) ;;
	*) missing="$missing $p" ;;
	esac
done
[ -z "$missing" ] && exit 0

echo "hmmfs: installing missing packages:$missing"
if [ "$(id -u)" -ne 0 ]; then
	echo "hmmfs: need root to install packages; run: sudo apt-get install$missing" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
echo "hmmfs: packages installed"
