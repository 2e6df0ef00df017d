#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# mkimage-bench.sh OUT.tar HTTPD [TAG]
#
# Builds a docker-archive (`docker save` layout) of the `shoal bench lb`
# backend image: one layer holding the static HTTP server as /httpd, run as
# `/httpd 80`. Deterministic: fixed mtimes and owners.
set -eu

out=${1:?usage: mkimage-bench.sh OUT.tar HTTPD [TAG]}
httpd=${2:?usage: mkimage-bench.sh OUT.tar HTTPD [TAG]}
tag=${3:-shoal-bench:latest}

[ -x "$httpd" ] || { echo "mkimage-bench: $httpd not found" >&2; exit 1; }
mkdir -p "$(dirname "$out")"

HTTPD="$httpd" OUT="$out" TAG="$tag" exec python3 - <<'PY'
import hashlib, io, json, os, tarfile

MTIME = 1704067200  # 2024-01-01T00:00:00Z
CREATED = "2024-01-01T00:00:00Z"


def tar_of(files):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as t:
        for name, mode, data in sorted(files):
            ti = tarfile.TarInfo(name)
            ti.mode, ti.mtime, ti.uid, ti.gid, ti.uname, ti.gname = mode, MTIME, 0, 0, "", ""
            if data is None:
                ti.type = tarfile.DIRTYPE
                t.addfile(ti)
            else:
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


with open(os.environ["HTTPD"], "rb") as f:
    httpd = f.read()
tag = os.environ["TAG"]
layer = tar_of([("httpd", 0o755, httpd), ("tmp", 0o1777, None)])
diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
config = {
    "architecture": "amd64",
    "os": "linux",
    "created": CREATED,
    "config": {"Cmd": ["/httpd", "80"], "WorkingDir": "/", "ExposedPorts": {"80/tcp": {}}},
    "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    "history": [{"created": CREATED, "created_by": "shoal-bench-httpd"}],
}
cfg = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
cfg_hex = hashlib.sha256(cfg).hexdigest()
lpath = diff_id[7:] + "/layer.tar"
repo, _, t = tag.rpartition(":")
if "/" in t or not repo:
    repo, t = tag, "latest"
files = [
    (cfg_hex + ".json", 0o644, cfg),
    (diff_id[7:] + "/VERSION", 0o644, b"1.0"),
    (lpath, 0o644, layer),
    ("manifest.json", 0o644, json.dumps(
        [{"Config": cfg_hex + ".json", "RepoTags": [tag], "Layers": [lpath]}],
        separators=(",", ":")).encode()),
    ("repositories", 0o644, json.dumps({repo: {t: diff_id[7:]}}).encode()),
]
out = os.environ["OUT"]
with open(out + ".tmp", "wb") as f:
    f.write(tar_of(files))
os.rename(out + ".tmp", out)
PY
