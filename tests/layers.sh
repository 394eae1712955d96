#!/bin/sh
# tests/layers.sh [ROOT] — the include graph between directories matches
# docs/ARCHITECTURE.md.
#
# ARCHITECTURE.md lists, between "<!-- layers: begin -->" and
# "<!-- layers: end -->", one line per source directory: "dir -> dirs it
# may include".  This script reads every #include "dir/file" in the .c and
# .h files of those directories and fails, naming file and line, on an
# include the list does not allow, on a directory with sources that the
# list leaves out, and on a cycle in the list itself (tsort).  An include
# of a file in the same directory is always allowed; tests/ and bench/
# are not layers and are not checked.
set -u
root=${1:-$(dirname "$0")/..}
cd "$root" || exit 2
doc=docs/ARCHITECTURE.md

rules=$(awk '/<!-- layers: begin -->/ { on = 1; next }
	     /<!-- layers: end -->/ { on = 0 }
	     on && / -> ?/ { print }' "$doc")
if [ -z "$rules" ]; then
	echo "layers: no list between the layers markers in $doc" >&2
	exit 1
fi
bad=0

# Every directory holding hmmfs sources is in the list.
for d in $(find . -path ./tests -prune -o -path ./bench -prune -o \
		-path './build*' -prune -o -path ./.git -prune -o \
		-name '*.[ch]' -print | cut -d/ -f2 | sort -u); do
	if ! printf '%s\n' "$rules" | grep -q "^$d *->"; then
		echo "layers: $d/ has sources but no line in $doc" >&2
		bad=1
	fi
done

# The list has no cycle: each pair "d e" is an edge for tsort.
if ! printf '%s\n' "$rules" |
	awk '{ print $1, $1; for (i = 3; i <= NF; i++) print $1, $i }' |
	tsort >/dev/null 2>&1; then
	echo "layers: the list in $doc has a cycle:" >&2
	printf '%s\n' "$rules" | awk '{ print $1, $1; for (i = 3; i <= NF; i++) print $1, $i }' |
		tsort 2>&1 >/dev/null | sed 's/^/    /' >&2
	bad=1
fi

# Every include between directories is one the list allows.
wrong=$(printf '%s\n' "$rules" | while read -r dir arrow allowed; do
	if [ ! -d "$dir" ]; then
		echo "layers: $doc lists $dir/, which does not exist"
		continue
	fi
	grep -Hn '^#include "[a-z_]*/' "$dir"/*.[ch] |
		sed 's/^\([^:]*\):\([0-9]*\):#include "\([a-z_]*\)\/.*/\1 \2 \3/' |
		while read -r file line to; do
			case " $dir $allowed " in
			*" $to "*) ;;
			*) echo "layers: $file:$line: $dir/ includes $to/, which $doc does not allow" ;;
			esac
		done
done)
if [ -n "$wrong" ]; then
	printf '%s\n' "$wrong" >&2
	bad=1
fi

if [ "$bad" = 0 ]; then
	echo "layers: the includes of $(printf '%s\n' "$rules" | wc -l) directories match $doc"
fi
exit "$bad"
