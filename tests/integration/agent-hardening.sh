#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Hardening (issue 9, cases 1 and 10): a non-root user in a container holds no
# capability (run and exec), the seccomp profile denies io_uring as Docker 25+
# does, and create refuses nonsense limits, hostnames and users before
# anything is stored.
. "$(dirname "$0")/lib.sh"
command -v cc >/dev/null || { echo "SKIP: no C compiler for the probe image"; exit $SKIP; }
node_start

# Docker's default set: CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID
# SETPCAP NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP.
DEFAULT=00000000a80425fb
NONE=0000000000000000

# probe_image: imports probe:it, a static program that tries one thing and
# prints "ok" or the errno (busybox has neither io_uring nor a raw socket tool
# that does not fall back to an ICMP datagram socket)
probe_image() {
	cat >"$T/probe.c" <<'C'
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(int argc, char **argv)
{
	long r = -1;
	if (argc < 2)
		return 2;
	if (strcmp(argv[1], "io_uring_setup") == 0) {
		static char params[120];
		r = syscall(425 /* io_uring_setup, the same on every arch */, 1, params);
	} else if (strcmp(argv[1], "rawsock") == 0) {
		r = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
	} else {
		return 2;
	}
	if (r < 0) {
		printf("%s\n", errno == EPERM ? "EPERM" : errno == ENOSYS ? "ENOSYS" : strerror(errno));
		return 1;
	}
	printf("ok\n");
	return 0;
}
C
	mkdir -p "$T/probeimg" &&
		cc -static -O2 -o "$T/probeimg/probe" "$T/probe.c" &&
		tar -C "$T/probeimg" -cf "$T/probeimg.tar" probe &&
		shoal image import "$T/probeimg.tar" probe:it >/dev/null
}

# caps_of OUTPUT NAME: the hex of one Cap* line of /proc/self/status
caps_of() { printf '%s\n' "$1" | awk -v n="$2:" '$1 == n {print $2}'; }

# expect_caps WHAT OUTPUT INH PRM EFF BND AMB
expect_caps() {
	local what=$1 out=$2
	expect_eq "$what: CapInh" "$3" "$(caps_of "$out" CapInh)"
	expect_eq "$what: CapPrm" "$4" "$(caps_of "$out" CapPrm)"
	expect_eq "$what: CapEff" "$5" "$(caps_of "$out" CapEff)"
	expect_eq "$what: CapBnd" "$6" "$(caps_of "$out" CapBnd)"
	expect_eq "$what: CapAmb" "$7" "$(caps_of "$out" CapAmb)"
}

log "case 1: capabilities of a non-root user (run)"
out=$(shoal run --rm --network none -u 1000 busybox grep Cap /proc/self/status)
expect_caps "run -u 1000" "$out" $NONE $NONE $NONE $DEFAULT $NONE
out=$(shoal run --rm --network none busybox grep Cap /proc/self/status)
expect_caps "run as root" "$out" $NONE $DEFAULT $DEFAULT $DEFAULT $NONE
# --cap-add for a non-root user widens the bounding set only (what a setcap'd
# binary could draw on); NET_ADMIN is bit 12
out=$(shoal run --rm --network none -u 1000 --cap-add NET_ADMIN busybox grep Cap /proc/self/status)
expect_caps "run -u 1000 --cap-add NET_ADMIN" "$out" $NONE $NONE $NONE 00000000a80435fb $NONE
out=$(shoal run --rm --network none -u 1000 --cap-add NET_ADMIN busybox ip link set lo down 2>&1)
rc=$?
[ "$rc" -ne 0 ] || fail "uid 1000 with --cap-add NET_ADMIN set a link down"
expect_contains "uid 1000 with --cap-add NET_ADMIN setting a link down" "not permitted" "$out"

out=$(shoal run --rm --network none -u 1000 busybox sh -c 'echo "x::0:0::/:/bin/sh" >> /etc/passwd' 2>&1)
rc=$?
[ "$rc" -ne 0 ] || fail "uid 1000 appended to /etc/passwd (exit $rc)"
expect_contains "uid 1000 writing /etc/passwd" "Permission denied" "$out"
shoal run --rm --network none busybox sh -c 'echo "x::0:0::/:/bin/sh" >> /etc/passwd'
expect_eq "root in the container still writes /etc/passwd" 0 $?

must "importing the probe image" probe_image
out=$(shoal run --rm --network none -u 1000 probe:it /probe rawsock)
expect_eq "uid 1000 opening a raw socket" "EPERM" "$out"
out=$(shoal run --rm --network none probe:it /probe rawsock)
expect_eq "root (CAP_NET_RAW) opening a raw socket" "ok" "$out"

log "case 1: io_uring denied by the seccomp profile"
out=$(shoal run --rm --network none probe:it /probe io_uring_setup)
case "$out" in
EPERM | ENOSYS) ok "io_uring_setup as root: $out" ;;
*) fail "io_uring_setup as root in a container: expected EPERM or ENOSYS, got '$out'" ;;
esac
out=$(shoal run --rm --network none -u 1000 probe:it /probe io_uring_setup)
case "$out" in
EPERM | ENOSYS) ok "io_uring_setup as uid 1000: $out" ;;
*) fail "io_uring_setup as uid 1000: expected EPERM or ENOSYS, got '$out'" ;;
esac

log "case 1: exec -u"
must_get id "starting a container to exec into" shoal run -d --network none busybox sleep 1000
out=$(shoal exec -u 1000 "$id" grep Cap /proc/self/status)
expect_caps "exec -u 1000" "$out" $NONE $NONE $NONE $DEFAULT $NONE
out=$(shoal exec "$id" grep Cap /proc/self/status)
expect_caps "exec as root" "$out" $NONE $DEFAULT $DEFAULT $DEFAULT $NONE
out=$(shoal exec -u 1000 "$id" sh -c 'echo "x::0:0::/:/bin/sh" >> /etc/passwd' 2>&1)
rc=$?
[ "$rc" -ne 0 ] || fail "exec -u 1000 appended to /etc/passwd"
expect_contains "exec -u 1000 writing /etc/passwd" "Permission denied" "$out"
shoal rm -f "$id" >/dev/null
# a container whose user is 1000: exec -u 0 into it is root again
must_get id "starting a uid 1000 container" shoal run -d --network none -u 1000 busybox sleep 1000
out=$(shoal exec "$id" grep Cap /proc/self/status)
expect_caps "exec into a uid 1000 container" "$out" $NONE $NONE $NONE $DEFAULT $NONE
out=$(shoal exec -u 0 "$id" grep Cap /proc/self/status)
expect_caps "exec -u 0 into a uid 1000 container" "$out" $NONE $DEFAULT $DEFAULT $DEFAULT $NONE
shoal rm -f "$id" >/dev/null

log "case 10: create refuses nonsense, stores nothing"
count_containers() { api GET '/containers/json?all=1' | cut -d' ' -f2- | grep -o '"Id"' | wc -l; }
before=$(count_containers)
# refuse NAME WHAT NEEDLE BODY: 400 naming the problem, and no record
refuse() {
	local name=$1 what=$2 needle=$3 body=$4 out code
	out=$(api POST "/containers/create?name=$name" "$body")
	code=${out%% *}
	expect_eq "$what: status" 400 "$code"
	expect_contains "$what: message" "$needle" "$out"
	out=$(api GET "/containers/$name/json")
	expect_eq "$what: no container stored" 404 "${out%% *}"
}
refuse bad1 "Memory INT64_MAX" "HostConfig.Memory" \
	'{"Image":"busybox","HostConfig":{"Memory":9223372036854775807}}'
mem_kib=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
refuse bad2 "Memory beyond the machine" "more than this machine has" \
	"{\"Image\":\"busybox\",\"HostConfig\":{\"Memory\":$((mem_kib * 1024 + 4096))}}"
refuse bad3 "MemorySwap -5" "HostConfig.MemorySwap" \
	'{"Image":"busybox","HostConfig":{"Memory":16777216,"MemorySwap":-5}}'
refuse bad4 "MemorySwap without Memory" "HostConfig.MemorySwap" \
	'{"Image":"busybox","HostConfig":{"MemorySwap":33554432}}'
refuse bad5 "MemorySwap below Memory" "HostConfig.MemorySwap" \
	'{"Image":"busybox","HostConfig":{"Memory":33554432,"MemorySwap":16777216}}'
refuse bad6 "hostname with a newline" "Hostname" \
	'{"Image":"busybox","Hostname":"box\n10.0.0.9 evil"}'
refuse bad7 "hostname with an underscore" "Hostname" '{"Image":"busybox","Hostname":"a_b"}'
refuse bad8 "PidsLimit -2" "HostConfig.PidsLimit" '{"Image":"busybox","HostConfig":{"PidsLimit":-2}}'
refuse bad9 "CpuShares -1" "HostConfig.CpuShares" '{"Image":"busybox","HostConfig":{"CpuShares":-1}}'
ncpu=$(nproc)
refuse bad10 "NanoCpus beyond the machine" "HostConfig.NanoCpus" \
	"{\"Image\":\"busybox\",\"HostConfig\":{\"NanoCpus\":$(((ncpu + 1) * 1000000000))}}"
refuse bad11 "User with a newline" "User" '{"Image":"busybox","User":"1000\nroot"}'
expect_eq "no container record after the refused creates" "$before" "$(count_containers)"
# a service with the same hostname is refused with it, not accepted and its
# every task then refused by the create
out=$(api POST /services/create '{"Name":"badhost","TaskTemplate":{"ContainerSpec":{"Image":"busybox","Command":["sleep","100"],"Hostname":"box\nevil"}},"Mode":{"Replicated":{"Replicas":1}}}')
expect_eq "service with a newline in its hostname: status" 400 "${out%% *}"
expect_contains "service with a newline in its hostname: message" "Hostname" "$out"
out=$(api GET /services/badhost)
expect_eq "no service stored" 404 "${out%% *}"
# the CLI says it too, and exits non-zero
out=$(shoal run --rm --network none --hostname 'a b' busybox true 2>&1)
expect_eq "shoal run --hostname 'a b' fails" 125 $?
expect_contains "shoal run --hostname 'a b' says why" "Hostname" "$out"
# what is valid still runs
out=$(shoal run --rm --network none --hostname web-1.example --memory 16m --memory-swap -1 \
	--pids-limit 50 busybox hostname)
expect_eq "a valid hostname and limits still run" "web-1.example" "$out"

log "case 10: the load warning ends its line"
# busybox:latest moved onto another image: loading busybox takes the tag back,
# with a warning that must end with its newline
must "tagging the probe image as busybox:latest" shoal image import "$T/probeimg.tar" busybox:latest
out=$(shoal image load -i "$TEST_IMAGE")
expect_contains "load warns that the old image loses its tag" "to empty string" "$out"
expect_not_contains "the warning and the next message on one line" "stringLoaded" "$out"
last=$(printf '%s\n' "$out" | tail -n 1)
expect_contains "the last line is the load's" "Loaded image" "$last"
out=$(shoal run --rm --network none busybox echo back)
expect_eq "busybox:latest is busybox again" "back" "$out"

finish
