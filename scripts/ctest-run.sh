#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs ctest in BUILD_DIR with the given arguments, then fails the run if a test
# skipped (exit 77, or any other SKIP_* property) without being in the skip
# allow-list: a test that skips on a CI machine has not run, and nobody reads
# "***Skipped" in a green log. ctest's own output is left as it is.
#
# usage: ctest-run.sh BUILD_DIR [CTEST ARGS...]
# Environment: SHOAL_SKIP_ALLOW, the allow-list (default tests/skip-allow.txt).
set -uo pipefail

build=${1:?usage: ctest-run.sh BUILD_DIR [CTEST ARGS...]}
shift
allow=$(realpath -e "${SHOAL_SKIP_ALLOW:-$(dirname "$0")/../tests/skip-allow.txt}") ||
	{ echo "ctest-run: no skip allow-list" >&2; exit 2; }

# Checked before the run, not after it: "NAME  # why", one a line.
allowed=()
n=0
while IFS= read -r line || [ -n "$line" ]; do
	n=$((n + 1))
	read -r name extra <<<"${line%%#*}"
	[ -z "$name" ] && continue
	why=${line#*#}
	if [ -n "$extra" ] || [[ "$line" != *"#"* ]] || [ -z "${why//[[:space:]]/}" ]; then
		echo "ctest-run: $allow:$n: expected \"TEST-NAME  # why it may skip\"" >&2
		exit 2
	fi
	allowed+=("$name")
done <"$allow"

cd "$build" || exit 2

# The JUnit report is the one place where ctest tells a skip from a pass
# (LastTest.log says "Test Passed." for both), with the test's output beside it.
report=Testing/Temporary/ctest-run-junit.xml
mkdir -p Testing/Temporary
rm -f "$report"
ctest --output-junit "$report" "$@"
rc=$?

if [ ! -s "$report" ]; then
	# ctest -N and the like run nothing and write no report
	[ "$rc" -eq 0 ] && echo "ctest-run: ctest wrote no report ($report); skips not checked"
	exit "$rc"
fi

# One line per unexpected skip: NAME<TAB>REASON (the test's SKIP line, or its
# last line of output).
unexpected=$(python3 - "$report" "${allowed[@]}" <<'PY'
import sys
import xml.etree.ElementTree as ET

report, allowed = sys.argv[1], set(sys.argv[2:])
for case in ET.parse(report).getroot().iter("testcase"):
    if case.find("skipped") is None or case.get("name") in allowed:
        continue
    lines = [l.strip() for l in (case.findtext("system-out") or "").splitlines() if l.strip()]
    reason = next((l for l in lines if l.upper().startswith("SKIP")), lines[-1] if lines else "")
    print("%s\t%s" % (case.get("name"), reason or case.find("skipped").get("message", "")))
PY
)
if [ $? -ne 0 ]; then
	echo "ctest-run: cannot read $report to check the skipped tests" >&2
	[ "$rc" -ne 0 ] && exit "$rc"
	exit 2
fi

if [ -n "$unexpected" ]; then
	echo
	echo "Tests skipped without being in $allow:"
	while IFS=$'\t' read -r name reason; do
		printf '\t%s: %s\n' "$name" "$reason"
	done <<<"$unexpected"
	echo "ctest-run: $(grep -c . <<<"$unexpected") test(s) skipped unexpectedly: give this machine" \
		"what they need, or allow the skip (with the reason) in $allow"
	# ctest's own failure status, if it had one, wins
	[ "$rc" -ne 0 ] && exit "$rc"
	exit 1
fi
exit "$rc"
