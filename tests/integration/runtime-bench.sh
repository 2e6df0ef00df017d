#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Side-by-side start latency: shoal (rt_spawn + monitor) and `runc run`, each
# running /bin/true in a fresh container with its own network namespace.
# usage: runtime-bench.sh BUILD_DIR [N]
set -eu
build=$1
n=${2:-40}
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root"; exit 77; }
tmp=$(mktemp -d /tmp/shoal-rtbench-XXXXXX)
trap 'runc delete -f shoal-bench-$$ >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT

"$build/tests/integration/runtime-container" "$build/bin/shoal-monitor" --bench "$n"

command -v runc >/dev/null || { echo "runc not installed: no comparison"; exit 0; }
mkdir -p "$tmp/rootfs/bin"
cp /bin/busybox "$tmp/rootfs/bin/busybox"
ln -s busybox "$tmp/rootfs/bin/true"
(cd "$tmp" && runc spec)
sed -i -e 's/"terminal": true/"terminal": false/' -e 's/"sh"/"\/bin\/true"/' "$tmp/config.json"
i=0
: > "$tmp/times"
while [ $i -lt "$n" ]; do
	t0=$(date +%s%N)
	runc run --bundle "$tmp" "shoal-bench-$$" >/dev/null
	t1=$(date +%s%N)
	echo $(( (t1 - t0) / 1000 )) >> "$tmp/times"
	i=$((i + 1))
done
sort -n "$tmp/times" | awk '{a[NR]=$1} END {printf "runc run /bin/true x%d: median %.2f ms, min %.2f ms\n", NR, a[int((NR+1)/2)]/1000, a[1]/1000}'
