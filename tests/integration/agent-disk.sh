#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A small data dir filled by a container's logs (issue 9, case 8): the logs stop
# at a floor of free space and at the node's total, dropped lines are counted
# in the log; on a data dir filled by something else the agent gives back its
# reserve, serves reads and stop (recorded for good) and restarts; with the
# reserve spent too, a create fails cleanly and leaves nothing behind; an
# upload that would not fit is refused before its body is read.
. "$(dirname "$0")/lib.sh"

DATA_MB=20
mkdir -p "$T/data"
must "mounting a ${DATA_MB} MB data dir" mount -t tmpfs -o size=${DATA_MB}m,mode=0711 shoal-it-disk "$T/data"
# no cap first: the floor of free space alone must keep the disk from filling
node_start --log-max-total 0

avail_kb() { df --output=avail -k "$T/data" | tail -n 1 | tr -d ' '; }
logs_kb() { # bytes of container logs, in KiB
	local f sum=0
	for f in "$T"/data/containers/*/*-json.log*; do
		[ -e "$f" ] && sum=$((sum + $(stat -c %s "$f")))
	done
	echo $((sum / 1024))
}
# steady CMD: CMD's number no longer changes over a second
steady() {
	local a b
	a=$("$@")
	sleep 1
	b=$("$@")
	[ "$a" = "$b" ]
}
# a line of 100 characters, as fast as the container can write it
LOGGER=(sh -c 'yes 0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456')

FLOOR_KB=$((DATA_MB * 1024 * 5 / 100)) # min(5%, 64m)
log "the free-space floor: a logging container stops at about ${FLOOR_KB} KiB free"
must_get c0 "starting a quiet container" shoal run -d --network none --name quiet busybox sleep 1000
must_get c1 "starting a logging container" shoal run -d --network none --name logger busybox "${LOGGER[@]}"
wait_until 60 steady avail_kb || fail "the log kept growing for a minute"
free=$(avail_kb)
log "free: ${free} KiB, logs: $(logs_kb) KiB"
if [ "$free" -ge $((FLOOR_KB / 2)) ] && [ "$free" -le $((FLOOR_KB + 512)) ]; then
	ok "logging stopped at the floor (${free} KiB free, floor ${FLOOR_KB} KiB)"
else
	fail "free space after logging: ${free} KiB, expected about ${FLOOR_KB} KiB"
fi
st=$(shoal inspect -f '{{.State.Running}}' logger 2>&1)
expect_eq "the logging container still runs" "true" "$st"

log "a full disk: the agent still serves reads, stop and restarts"
dd if=/dev/zero of="$T/data/filler" bs=4k >/dev/null 2>&1
expect_eq "the data dir is full" 0 "$(avail_kb)"
# within a second the agent gives back its reserve, for its own records
wait_until 5 grep -q "is full: released .* bytes of reserve" "$T/shoald.log" &&
	ok "the agent gave back its reserve on the full disk" || fail "no reserve released (shoald.log)"
must "stopping a container on a full disk" shoal stop -t 1 quiet
st=$(shoal inspect -f '{{.State.Running}} {{.State.ExitCode}}' quiet 2>&1)
expect_eq "it is stopped, with its exit code" "false 137" "$st"
out=$(shoal ps -a 2>&1)
expect_contains "ps on a full disk" "logger" "$out"
out=$(shoal inspect -f '{{.State.Running}}' logger 2>&1)
expect_eq "inspect on a full disk" "true" "$out"

agent_stop
agent_start --log-max-total 0
out=$(shoal ps 2>&1)
expect_contains "the agent restarts on a full disk and lists the container" "logger" "$out"
st=$(shoal inspect -f '{{.State.Running}} {{.State.ExitCode}}' quiet 2>&1)
expect_eq "the stop made on the full disk is still recorded after the restart" "false 137" "$st"
must "stopping the logging container on a full disk" shoal stop -t 1 logger
st=$(shoal inspect -f '{{.State.Running}}' logger 2>&1)
expect_eq "stopped" "false" "$st"

log "the reserve spent too: a write that needs space fails cleanly"
dd if=/dev/zero of="$T/data/filler2" bs=4k >/dev/null 2>&1
expect_eq "the data dir is full again" 0 "$(avail_kb)"
n_before=$(shoal ps -aq | wc -l)
out=$(shoal create --network none busybox true 2>&1); rc=$?
[ $rc -ne 0 ] && ok "a create on a full disk fails: $out" || fail "a create on a full disk succeeded: $out"
expect_eq "and leaves no container behind" "$n_before" "$(shoal ps -aq | wc -l)"
out=$(api GET /_ping)
expect_eq "the API answers after the failed create" "200 OK" "$out"
out=$(shoal ps -a 2>&1)
expect_contains "ps still answers" "logger" "$out"
agent_stop
agent_start --log-max-total 0
expect_eq "with the reserve spent too, the agent restarts and answers" "200 OK" "$(api GET /_ping)"
expect_contains "and lists the containers" "logger" "$(shoal ps -a 2>&1)"
rm -f "$T/data/filler2"

log "space back: the next run's dropped lines are counted in its log"
rm -f "$T/data/filler"
must "starting the logger again" shoal start logger
wait_until 60 steady avail_kb || fail "the log kept growing for a minute"
must "stopping it" shoal stop -t 1 logger
out=$(shoal logs logger 2>&1 | tail -n 1)
log "last log line: $out"
expect_contains "the log ends with the count of dropped lines" "log lines dropped: the disk is nearly full" "$out"

before=$(avail_kb)
must "removing the logging container" shoal rm -f logger
after=$(avail_kb)
log "free: ${before} KiB before the rm, ${after} KiB after"
[ "$after" -gt $((before + 10 * 1024)) ] && ok "removing the container gives the space back" ||
	fail "free space after rm: ${after} KiB (before ${before} KiB)"
must "removing the quiet container" shoal rm -f quiet

log "an upload bigger than the data dir's room is refused before its body"
truncate -s 30M "$T/big.tar"
out=$(curl -s --max-time 10 --unix-socket "$SOCK" -X POST -T "$T/big.tar" -w ' %{http_code}' \
	"http://shoal/images/create?fromSrc=-&repo=big")
expect_contains "a 30 MB import into a ${DATA_MB} MB data dir: 507" " 507" "$out"
expect_contains "naming the data dir" "no room for a 31457280-byte body in $T/data" "$out"
rm -f "$T/big.tar"
expect_eq "the agent answers after it" "200 OK" "$(api GET /_ping)"

log "the node's total: --log-max-total 3m"
agent_stop
agent_start --log-max-total 3m
must_get c2 "starting a logging container" shoal run -d --network none --name capped busybox "${LOGGER[@]}"
wait_until 60 steady logs_kb || fail "the logs kept growing for a minute"
used=$(logs_kb)
[ "$used" -le $((3 * 1024 + 64)) ] && [ "$used" -ge $((3 * 1024 - 512)) ] &&
	ok "the logs stopped at the node's total (${used} KiB)" ||
	fail "logs at ${used} KiB, expected about 3072 KiB"
must "stopping it" shoal stop -t 1 capped
out=$(shoal logs capped 2>&1 | tail -n 1)
expect_contains "the marker names the cap" "log lines dropped: the node's total for container logs" "$out"
must "removing it" shoal rm -f capped

finish
