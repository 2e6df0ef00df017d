#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `shoal pull` end to end: Debian's docker-registry inside the node's network
# namespace (plain HTTP on 127.0.0.1, storage in the test's dir) holds the test
# image, pushed with skopeo; the agent pulls it and runs a container from it; a
# second pull downloads no layer (the registry's access log says so); the same
# storage behind htpasswd Basic auth refuses wrong credentials and takes right
# ones; a stub in front of the registry asks for a Bearer token from its own
# token endpoint, corrupts a layer (refused, the store unchanged) and drops a
# connection half way through a layer (resumed with a Range request).
. "$(dirname "$0")/lib.sh"

for tool in docker-registry skopeo htpasswd; do
	command -v "$tool" >/dev/null || {
		echo "SKIP: $tool is missing (scripts/deps.sh installs it)"
		exit $SKIP
	}
done

REG=127.0.0.1:5000      # the registry, no auth
REG_AUTH=127.0.0.1:5001 # the same storage behind htpasswd
REG_STUB=127.0.0.1:5002 # the stub: bearer tokens, corruption, dropped connections
HELPER_PIDS=()

pull_cleanup() {
	local rc=$?
	for p in "${HELPER_PIDS[@]}"; do
		kill "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	# and whatever a launcher in between left running with our files open
	for p in $(pgrep -f "$T/(registry-|stub)" 2>/dev/null); do
		kill "$p" 2>/dev/null
	done
	if [ "$FAILURES" -ne 0 ] || [ "$rc" -ne 0 ]; then
		echo "---- registry log (tail) ----"
		tail -n 20 "$T/registry.log" 2>/dev/null
		echo "---- stub log ----"
		tail -n 30 "$T/stub.log" 2>/dev/null
	fi
	(exit "$rc")
	cleanup
}
trap pull_cleanup EXIT

node_start --insecure-registry "$REG" --insecure-registry "$REG_AUTH" \
	--insecure-registry "$REG_STUB"

# registry_start ADDR LOG [AUTH-YAML]: a registry on the shared storage
registry_start() {
	local addr=$1 logf=$2 auth=${3-}
	cat >"$T/registry-${addr##*:}.yml" <<EOF
version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $T/registry
  delete:
    enabled: true
http:
  addr: $addr
  secret: shoal-test-only
$auth
EOF
	# nsenter execs it: $! is the registry itself
	nsenter --net="/run/netns/$NETNS" docker-registry serve "$T/registry-${addr##*:}.yml" >>"$logf" 2>&1 &
	HELPER_PIDS+=($!)
	wait_until 15 in_node curl -s -o /dev/null "http://$addr/v2/" ||
		fatal "docker-registry on $addr did not come up: $(tail -n 5 "$logf")"
}

log "a registry in the node's namespace, the test image pushed into it"
mkdir -p "$T/registry"
registry_start "$REG" "$T/registry.log"
must "pushing the test image with skopeo" in_node skopeo --insecure-policy copy --quiet \
	--dest-tls-verify=false "docker-archive:$TEST_IMAGE" "docker://$REG/busybox:it"
must_get layers "reading the pushed manifest" in_node python3 -c '
import json, sys, urllib.request
r = urllib.request.Request(sys.argv[1], headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
m = json.load(urllib.request.urlopen(r))
print(" ".join(l["digest"][7:] for l in m["layers"]))' "http://$REG/v2/busybox/manifests/it"
read -r -a LAYERS <<<"$layers"
expect_eq "the image has two layers" 2 "${#LAYERS[@]}"
# the loaded copy goes, so that the pull has to download every layer
must "removing the loaded image" shoal rmi busybox
expect_eq "no layers left in the store" "" "$(ls -A "$T/data/images/layers")"

# layer_gets LOG: GETs of the image's layers in a registry log
layer_gets() {
	local n=0 l
	for l in "${LAYERS[@]}"; do
		n=$((n + $(grep -c "GET /v2/busybox/blobs/sha256:$l" "$1")))
	done
	echo "$n"
}
image_ids() { shoal images -q | sort -u | tr '\n' ' '; }

log "shoal pull, then a container from the pulled image"
out=$(shoal pull "$REG/busybox:it" 2>&1)
rc=$?
expect_eq "shoal pull exits 0" 0 "$rc"
expect_contains "pulling from" "it: Pulling from busybox" "$out"
expect_contains "first layer complete" "${LAYERS[0]:0:12}: Pull complete" "$out"
expect_contains "second layer complete" "${LAYERS[1]:0:12}: Pull complete" "$out"
expect_contains "checksums verified" "${LAYERS[0]:0:12}: Verifying Checksum" "$out"
expect_contains "the digest" "Digest: sha256:" "$out"
expect_contains "downloaded" "Status: Downloaded newer image for $REG/busybox:it" "$out"
expect_eq "the last line is the full name" "$REG/busybox:it" "$(tail -n 1 <<<"$out")"
expect_eq "each layer downloaded once" 2 "$(layer_gets "$T/registry.log")"
out=$(shoal run --rm --network none "$REG/busybox:it" sh -c 'echo pulled; cat /etc/os-release 2>/dev/null | head -1')
expect_contains "a container runs from the pulled image" "pulled" "$out"
out=$(shoal image inspect -f '{{json .RepoDigests}}' "$REG/busybox:it" 2>&1)
expect_contains "the repo digest is recorded" "$REG/busybox@sha256:" "$out"

log "a second pull downloads nothing"
out=$(shoal image pull "$REG/busybox:it" 2>&1)
expect_eq "shoal image pull exits 0" 0 $?
expect_eq "every layer already exists" 2 "$(grep -c ': Already exists' <<<"$out")"
expect_contains "up to date" "Status: Image is up to date for $REG/busybox:it" "$out"
expect_eq "no layer was downloaded again" 2 "$(layer_gets "$T/registry.log")"
out=$(shoal pull -q "$REG/busybox:it" 2>&1)
expect_eq "--quiet prints the name only" "$REG/busybox:it" "$out"

# the docker CLI, where there is one, reads the same stream
if command -v docker >/dev/null; then
	out=$(DOCKER_CONFIG="$T/docker-config" timeout 30 docker -H "unix://$SOCK" pull "$REG/busybox:it" 2>&1)
	expect_eq "docker pull against shoald exits 0" 0 $?
	expect_contains "docker pull shows the status" "Image is up to date for $REG/busybox:it" "$out"
else
	log "no docker CLI here: docker pull not tried"
fi

log "the API: Docker's progress stream, and errors"
out=$(curl -s --max-time 30 --unix-socket "$SOCK" -X POST \
	"http://shoal/images/create?fromImage=$REG/busybox&tag=it")
expect_contains "stream: pulling from" '{"status":"Pulling from busybox","id":"it"}' "$out"
expect_contains "stream: already exists" "{\"status\":\"Already exists\",\"progressDetail\":{},\"id\":\"${LAYERS[0]:0:12}\"}" "$out"
expect_contains "stream: final status" '"status":"Status: Image is up to date for 127.0.0.1:5000/busybox:it"' "$out"
res=$(api POST "/images/create?fromImage=$REG/busybox&tag=nope")
expect_contains "an unknown tag is a 404" "404 " "$res"
expect_contains "naming the manifest" "manifest for $REG/busybox:nope not found" "$res"
out=$(shoal pull "$REG/nothing-here" 2>&1)
expect_eq "shoal pull of an unknown image fails" 1 $?
expect_contains "with the registry's word" "manifest unknown" "$out"
out=$(shoal pull 127.0.0.1:5999/busybox:it 2>&1)
expect_eq "a registry not listed as insecure is HTTPS only" 1 $?
expect_contains "the error names it" "127.0.0.1:5999" "$out"

log "htpasswd Basic auth"
htpasswd -Bbn alice secret >"$T/htpasswd" 2>/dev/null || fatal "htpasswd failed"
registry_start "$REG_AUTH" "$T/registry-auth.log" "auth:
  htpasswd:
    realm: shoal-test
    path: $T/htpasswd"
must "removing the pulled image" shoal rmi -f "$(shoal images -q | head -1)"
out=$(shoal pull "$REG_AUTH/busybox:it" 2>&1)
expect_eq "without credentials: refused" 1 $?
expect_contains "requires authentication, naming the registry" "registry $REG_AUTH requires authentication" "$out"
out=$(SHOAL_REGISTRY_AUTH=alice:wrong shoal pull "$REG_AUTH/busybox:it" 2>&1)
expect_eq "wrong credentials: refused" 1 $?
expect_contains "naming the registry and the user" "registry $REG_AUTH refused the credentials of user alice" "$out"
expect_eq "nothing in the store" "" "$(image_ids)"
out=$(SHOAL_REGISTRY_AUTH=alice:secret shoal pull "$REG_AUTH/busybox:it" 2>&1)
expect_eq "right credentials: pulled" 0 $?
expect_contains "pulled through Basic auth" "Status: Downloaded newer image for $REG_AUTH/busybox:it" "$out"
expect_eq "the layers came through the authenticated registry" 2 "$(layer_gets "$T/registry-auth.log")"

# The stub: a registry in front of the real one. Its mode file says what it
# does: "bearer" (a token from /token, for alice:secret, on every request),
# "corrupt HEX" (one byte of that blob flipped), "drop HEX" (the first GET of
# that blob without a Range ends half way).
cat >"$T/stub.py" <<'PY'
import base64, json, os, socket, sys, urllib.error, urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

addr, upstream, mode_file, log_file = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
dropped = set()
TOKEN = "tok-" + os.urandom(8).hex()


def log(line):
    with open(log_file, "a") as f:
        f.write(line + "\n")


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def send(self, code, body=b"", headers=()):
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.close_connection = True

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        mode = open(mode_file).read().split()
        rng = self.headers.get("Range", "")
        auth = self.headers.get("Authorization", "")
        log("%s %s range=%s auth=%s" % (self.command, self.path, rng or "-", auth.split(" ")[0] or "-"))
        if mode[0] == "bearer":
            if self.path.startswith("/token"):
                want = "Basic " + base64.b64encode(b"alice:secret").decode()
                if auth != want:
                    return self.send(401, b'{"details":"bad credentials"}')
                return self.send(200, json.dumps({"token": TOKEN}).encode(),
                                 [("Content-Type", "application/json")])
            if auth != "Bearer " + TOKEN:
                challenge = 'Bearer realm="http://%s/token",service="shoal-stub",scope="repository:busybox:pull"' % addr
                return self.send(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"token required"}]}',
                                 [("WWW-Authenticate", challenge), ("Content-Type", "application/json")])
        req = urllib.request.Request("http://" + upstream + self.path, method=self.command)
        for k in ("Accept", "Range"):
            if self.headers.get(k):
                req.add_header(k, self.headers[k])
        try:
            r = urllib.request.urlopen(req)
            code, body, hdrs = r.status, r.read(), r.headers
        except urllib.error.HTTPError as e:
            code, body, hdrs = e.code, e.read(), e.headers
        keep = [(k, hdrs[k]) for k in ("Content-Type", "Docker-Content-Digest", "Content-Range")
                if hdrs.get(k)]
        blob = self.path.rsplit("/blobs/sha256:", 1)[-1] if "/blobs/sha256:" in self.path else None
        if mode[0] == "corrupt" and blob == mode[1] and body:
            body = body[:len(body) // 2] + bytes([body[len(body) // 2] ^ 0x5A]) + body[len(body) // 2 + 1:]
        if mode[0] == "drop" and blob == mode[1] and not rng and blob not in dropped and self.command == "GET":
            dropped.add(blob)
            self.send_response(code)
            for k, v in keep:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[:len(body) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            log("dropped %s after %d of %d bytes" % (blob[:12], len(body) // 2, len(body)))
            return
        self.send(code, body, keep)


host, port = addr.split(":")
ThreadingHTTPServer((host, int(port)), H).serve_forever()
PY
echo bearer >"$T/stub-mode"
nsenter --net="/run/netns/$NETNS" python3 "$T/stub.py" "$REG_STUB" "$REG" "$T/stub-mode" "$T/stub.log" >>"$T/stub.out" 2>&1 &
HELPER_PIDS+=($!)
wait_until 15 in_node curl -s -o /dev/null "http://$REG_STUB/v2/" ||
	fatal "the stub registry did not come up: $(cat "$T/stub.out")"

log "a Bearer token from the registry's token server"
must "removing the pulled image" shoal rmi -f "$(shoal images -q | head -1)"
out=$(SHOAL_REGISTRY_AUTH=alice:wrong shoal pull "$REG_STUB/busybox:it" 2>&1)
expect_eq "wrong credentials at the token server: refused" 1 $?
expect_contains "naming the registry and its token server" "registry $REG_STUB: the token server http://$REG_STUB/token refused the credentials of user alice" "$out"
out=$(SHOAL_REGISTRY_AUTH=alice:secret shoal pull "$REG_STUB/busybox:it" 2>&1)
expect_eq "right credentials: a token, then the pull" 0 $?
expect_contains "pulled with a token" "Status: Downloaded newer image for $REG_STUB/busybox:it" "$out"
expect_contains "the token asked for pull access to the repository" "scope=repository%3Abusybox%3Apull" "$(grep 'GET /token' "$T/stub.log")"
expect_eq "every layer fetched with the token" 2 "$(grep "/blobs/sha256:${LAYERS[0]}\|/blobs/sha256:${LAYERS[1]}" "$T/stub.log" | grep -c 'auth=Bearer')"

log "a corrupted layer is refused and leaves the store as it was"
must "removing the pulled image" shoal rmi -f "$(shoal images -q | head -1)"
before=$(cd "$T/data/images" && find blobs layers images | sort)
echo "corrupt ${LAYERS[0]}" >"$T/stub-mode"
out=$(shoal pull "$REG_STUB/busybox:it" 2>&1)
expect_eq "the pull fails" 1 $?
expect_contains "with a digest mismatch naming the layer" "layer sha256:${LAYERS[0]}: digest mismatch" "$out"
expect_eq "the store is unchanged" "$before" "$(cd "$T/data/images" && find blobs layers images | sort)"
expect_eq "no image in the store" "" "$(image_ids)"

log "a connection dropped half way through a layer is resumed"
echo "drop ${LAYERS[0]}" >"$T/stub-mode"
out=$(shoal pull "$REG_STUB/busybox:it" 2>&1)
expect_eq "the pull succeeds" 0 $?
expect_contains "the stub dropped the first GET" "dropped ${LAYERS[0]:0:12}" "$(cat "$T/stub.log")"
expect_contains "the rest came with a Range request" "GET /v2/busybox/blobs/sha256:${LAYERS[0]} range=bytes=" "$(cat "$T/stub.log")"
out=$(shoal run --rm --network none "$REG_STUB/busybox:it" echo resumed)
expect_eq "a container runs from it" "resumed" "$out"
expect_eq "no download left behind" "" "$(ls -A "$T/data/images/tmp/pull" 2>/dev/null)"

finish
