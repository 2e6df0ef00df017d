#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# mkimage-busybox.sh OUT.tar [TAG]
#
# Builds a docker-archive (`docker save` layout) of a tiny image from the static
# busybox binary. Two layers: a base, and a small second layer that deletes a
# base file (whiteout) and replaces /var/www (opaque directory), so loads
# exercise multi-layer images and both kinds of whiteout. Deterministic: fixed
# mtimes and owners, sorted entries, so the image id depends only on busybox.
set -eu

out=${1:?usage: mkimage-busybox.sh OUT.tar [TAG]}
tag=${2:-busybox:latest}
busybox=${BUSYBOX:-/bin/busybox}

[ -x "$busybox" ] || { echo "mkimage-busybox: $busybox not found (apt-get install busybox-static)" >&2; exit 1; }
mkdir -p "$(dirname "$out")"

BUSYBOX="$busybox" OUT="$out" TAG="$tag" exec python3 - <<'EOF'
import hashlib, io, json, os, subprocess, tarfile

busybox = os.environ["BUSYBOX"]
out = os.environ["OUT"]
tag = os.environ["TAG"]
MTIME = 1704067200  # 2024-01-01T00:00:00Z
CREATED = "2024-01-01T00:00:00Z"
PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def entry(name, kind=tarfile.REGTYPE, mode=0o644, uid=0, gid=0, data=b"", link=""):
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.mode = mode
    ti.uid, ti.gid = uid, gid
    ti.uname = ti.gname = ""
    ti.mtime = MTIME
    ti.linkname = link
    ti.size = len(data) if kind == tarfile.REGTYPE else 0
    return (name, ti, data)


def dirs_of(names):
    seen = set()
    for n in names:
        parts = n.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            seen.add("/".join(parts[:i]))
    return seen


def make_tar(entries):
    """A tar of entries plus their missing parent directories, sorted by name."""
    names = {e[0] for e in entries}
    for d in dirs_of(names) - names:
        entries.append(entry(d, tarfile.DIRTYPE, 0o755))
    entries.sort(key=lambda e: e[0])
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as t:
        for _, ti, data in entries:
            t.addfile(ti, io.BytesIO(data) if ti.isreg() else None)
    return buf.getvalue()


with open(busybox, "rb") as f:
    bb = f.read()
applets = subprocess.run([busybox, "--list-full"], capture_output=True, text=True,
                         check=True).stdout.split()

base = [
    entry("bin", tarfile.DIRTYPE, 0o755),
    entry("bin/busybox", mode=0o755, data=bb),
    entry("etc", tarfile.DIRTYPE, 0o755),
    entry("etc/passwd", data=b"root:x:0:0:root:/root:/bin/sh\n"
          b"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
          b"app:x:1000:1000:app:/home/app:/bin/sh\n"),
    entry("etc/group", data=b"root:x:0:\nnogroup:x:65534:\napp:x:1000:\n"),
    entry("etc/motd", data=b"this file is deleted by the second layer\n"),
    entry("home", tarfile.DIRTYPE, 0o755),
    entry("home/app", tarfile.DIRTYPE, 0o755, uid=1000, gid=1000),
    entry("root", tarfile.DIRTYPE, 0o700),
    entry("tmp", tarfile.DIRTYPE, 0o1777),
    entry("var", tarfile.DIRTYPE, 0o755),
    entry("var/www", tarfile.DIRTYPE, 0o755),
    entry("var/www/placeholder.html", data=b"hidden by the second layer\n"),
]
have = {e[0] for e in base}
for a in applets:
    a = a.lstrip("/")
    if a not in have and a != "bin/busybox":
        have.add(a)
        base.append(entry(a, tarfile.SYMTYPE, 0o777, link="/bin/busybox"))
if "bin/sh" not in have:
    base.append(entry("bin/sh", tarfile.SYMTYPE, 0o777, link="/bin/busybox"))

top = [
    entry("etc", tarfile.DIRTYPE, 0o755),
    entry("etc/.wh.motd"),
    entry("var", tarfile.DIRTYPE, 0o755),
    entry("var/www", tarfile.DIRTYPE, 0o755),
    entry("var/www/.wh..wh..opq"),
    entry("var/www/index.html", data=b"hello from shoal\n"),
]

layers = [make_tar(base), make_tar(top)]
diff_ids = ["sha256:" + hashlib.sha256(l).hexdigest() for l in layers]
config = {
    "architecture": "amd64",
    "os": "linux",
    "created": CREATED,
    "config": {"Env": [PATH], "Cmd": ["sh"], "WorkingDir": "/"},
    "rootfs": {"type": "layers", "diff_ids": diff_ids},
    "history": [
        {"created": CREATED, "created_by": "busybox base"},
        {"created": CREATED, "created_by": "index.html, whiteouts"},
    ],
}
config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
config_hex = hashlib.sha256(config_bytes).hexdigest()

files = [(config_hex + ".json", config_bytes)]
layer_paths = []
for d, l in zip(diff_ids, layers):
    p = d[7:] + "/layer.tar"
    layer_paths.append(p)
    files.append((d[7:] + "/VERSION", b"1.0"))
    files.append((p, l))
manifest = [{"Config": config_hex + ".json", "RepoTags": [tag], "Layers": layer_paths}]
files.append(("manifest.json", json.dumps(manifest, separators=(",", ":")).encode()))
repo, _, t = tag.rpartition(":")
if "/" in t or not repo:
    repo, t = tag, "latest"
files.append(("repositories", json.dumps({repo: {t: diff_ids[-1][7:]}}).encode()))

outer = [entry(n, data=d) for n, d in files]
tmp = out + ".tmp"
with open(tmp, "wb") as f:
    f.write(make_tar(outer))
os.rename(tmp, out)
EOF
