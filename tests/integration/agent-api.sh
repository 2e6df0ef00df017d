#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Bad input through the API gets a 4xx with a message that names the problem,
# and leaves nothing behind.
. "$(dirname "$0")/lib.sh"
node_start

check() { # check WHAT EXPECTED_STATUS NEEDLE METHOD PATH [BODY]
	local what=$1 want=$2 needle=$3
	shift 3
	local out
	out=$(api "$@")
	expect_eq "$what: status" "$want" "${out%% *}"
	expect_contains "$what: message" "$needle" "$out"
}

check "ping" 200 "OK" GET /_ping
check "versioned path" 200 '"ApiVersion"' GET /v1.43/version
check "info" 200 '"Containers"' GET /info
check "unknown path" 404 "page not found" GET /nope
check "wrong method" 405 "not allowed" PUT /containers/create
check "not JSON" 400 "not valid JSON" POST /containers/create '{"Image": '
check "not an object" 400 "must be a JSON object" POST /containers/create '[1,2]'
check "missing Image" 400 "Image: required" POST /containers/create '{"Cmd":["true"]}'
check "Image wrong type" 400 "Image: expected a string" POST /containers/create '{"Image":5}'
check "Cmd wrong type" 400 "Cmd" POST /containers/create '{"Image":"busybox","Cmd":{"a":1}}'
check "Env element wrong type" 400 "Env[0]" POST /containers/create '{"Image":"busybox","Env":[1]}'
check "Memory wrong type" 400 "Memory: expected an integer" POST /containers/create '{"Image":"busybox","HostConfig":{"Memory":"lots"}}'
check "Memory too small" 400 "Minimum memory limit" POST /containers/create '{"Image":"busybox","HostConfig":{"Memory":1000}}'
check "NanoCpus out of range" 400 "Range of CPUs" POST /containers/create '{"Image":"busybox","HostConfig":{"NanoCpus":99000000000}}'
check "unknown capability" 400 "NOT_A_CAP" POST /containers/create '{"Image":"busybox","HostConfig":{"CapAdd":["NOT_A_CAP"]}}'
check "unknown network" 404 "network nonet not found" POST /containers/create '{"Image":"busybox","HostConfig":{"NetworkMode":"nonet"}}'
check "relative workdir" 400 "absolute path" POST /containers/create '{"Image":"busybox","WorkingDir":"rel"}'
check "unknown image" 404 "busybox-nope" POST /containers/create '{"Image":"busybox-nope"}'
check "bad name" 400 "Invalid container name" POST '/containers/create?name=-bad' '{"Image":"busybox"}'
check "duplicate key" 400 "not valid JSON" POST /containers/create '{"Image":"busybox","Image":"x"}'
big=$(head -c 1200000 /dev/zero | tr '\0' a)
check "oversized JSON body" 413 "limit" POST /containers/create "{\"Image\":\"$big\"}"
check "no such container" 404 "No such container" POST /containers/abcdef/start
check "exec without Cmd" 404 "No such container" POST /containers/nope/exec '{}'
expect_eq "nothing was created" 0 "$(shoal ps -aq | wc -l)"

out=$(api POST '/containers/create?name=dup' '{"Image":"busybox","Cmd":["true"]}')
[ "${out%% *}" = 201 ] && ok "create" || fatal "creating container dup: $out"
check "duplicate name" 409 "already in use" POST '/containers/create?name=dup' '{"Image":"busybox"}'
check "exec in a stopped container" 409 "not running" POST /containers/dup/exec '{"Cmd":["true"]}'
check "bad signal" 400 "invalid signal" POST '/containers/dup/kill?signal=NOPE'
check "kill of a stopped container" 409 "not running" POST /containers/dup/kill
check "bad wait condition" 400 "invalid condition" POST '/containers/dup/wait?condition=soon'
check "logs without streams" 400 "at least one stream" GET /containers/dup/logs
check "image in use" 409 "is using it" DELETE /images/busybox
api DELETE /containers/dup >/dev/null

log "malformed image tarballs leave the store intact"
before=$(shoal image ls -q 2>/dev/null || api GET /images/json)
ls -R "$T/data/images" 2>/dev/null | sort >"$T/store.before"
head -c 300000 "$TEST_IMAGE" >"$T/truncated.tar"
out=$(curl -s --unix-socket "$SOCK" -X POST --data-binary @"$T/truncated.tar" -w '\n%{http_code}' http://shoal/images/load)
expect_eq "truncated tarball refused" 400 "${out##*$'\n'}"
head -c 5000 /dev/urandom >"$T/garbage.tar"
out=$(curl -s --unix-socket "$SOCK" -X POST --data-binary @"$T/garbage.tar" -w '\n%{http_code}' http://shoal/images/load)
expect_eq "garbage refused" 400 "${out##*$'\n'}"
out=$(curl -s --unix-socket "$SOCK" -X POST -w '\n%{http_code}' http://shoal/images/load)
expect_eq "empty body refused" 400 "${out##*$'\n'}"
ls -R "$T/data/images" 2>/dev/null | sort >"$T/store.after"
if cmp -s "$T/store.before" "$T/store.after"; then ok "image store unchanged"; else
	fail "image store changed: $(diff "$T/store.before" "$T/store.after" | head -5)"
fi
out=$(shoal run --rm --network none busybox echo still-works)
expect_eq "image still usable" "still-works" "$out"
out=$(shoal run --rm --network none nosuchimage true 2>&1); rc=$?
expect_eq "unknown image exits 125" 125 $rc
expect_contains "unknown image says how to load it" "load" "$out"
finish
