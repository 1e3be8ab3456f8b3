#!/usr/bin/env bash
# docker/smoke.sh: build docker/Dockerfile with podman on a Debian bookworm base and prove
# the image works. On the base made with mmdebstrap (Debian's python3 + python3-venv: no
# container registry is needed), it builds the image from this checkout, runs it with host
# networking and the listeners moved to free loopback ports by GATEWAY__* overrides, then:
#   - /healthz answers 200 from the host, and the image's own HEALTHCHECK command (read
#     from the built image) exits 0 when run inside the container with `podman exec`;
#   - the gateway process (PID 1) runs as uid 10001, not root;
#   - a message sent with smtplib is accepted (250) and arrives at a sink on loopback: the
#     gateway looks the recipient domain up on a small DNS server on loopback (MX -> A
#     127.0.0.1) and relays to the sink's port (relay.mx_port);
#   - `podman stop` (SIGTERM) stops it within its shutdown grace, with exit code 0.
# It removes what it made (container, image, temporary files, and the base unless cached).
#
# Usage:  docker/smoke.sh          (from anywhere; builds the checkout this file is in)
# Needs:  podman, runc, mmdebstrap, python3 on the host. When podman/runc/mmdebstrap are
#         missing and this runs as root with apt-get, they are installed (apt-get install),
#         unless GATEWAY_SMOKE_INSTALL=0.
# Environment:
#   GATEWAY_SMOKE_CACHE=DIR  keep the Debian base in DIR (base-bookworm.tar) and as the image
#                            localhost/gateway-smoke-base:bookworm, and reuse both next time
#                            (rebuilt when the tar is older than 7 days). Unset: the base is
#                            made afresh and removed at the end.
#   GATEWAY_SMOKE_INSTALL=0  never apt-get install missing tools (skip instead).
# Exit codes:
#   0   passed
#   1   failed: one line "smoke.sh: FAILED: <why>" on stderr, with the container's log
#   77  skipped: podman cannot run containers here; one line on stdout,
#       "smoke.sh: skipped: <why>"
#
# podman runs with a private containers.conf (CONTAINERS_CONF, nothing in /etc is changed):
# runtime runc, cgroup manager cgroupfs, no default ulimits (crun, and runc setting rlimits,
# fail on machines with hybrid cgroups v1), file events and k8s-file logs (no systemd
# needed). The build mounts the host's CA bundle over the base's, so pip inside the build
# trusts whatever TLS proxy the host trusts.
set -euo pipefail
umask 022

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STARTED=$SECONDS
RUN_ID="$$-$(date +%s)"
IMAGE="localhost/gateway-smoke:$RUN_ID"
CONTAINER="gateway-smoke-$RUN_ID"
BASE_TAG="localhost/gateway-smoke-base:bookworm"
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
DOMAIN=smoke.example.com
RCPT="rcpt@$DOMAIN"
UID_EXPECTED=10001
WORK=""
HELPER_PID=""
BASE_IMAGE=""
REMOVE_BASE=0
CONTAINER_MADE=0
IMAGE_MADE=0

say() { printf 'smoke.sh: [%3ds] %s\n' "$((SECONDS - STARTED))" "$*"; }
skip() {
    printf 'smoke.sh: skipped: %s\n' "$*"
    exit 77
}
show_logs() {
    if [ "$CONTAINER_MADE" = 1 ]; then
        echo "----- container log ($CONTAINER) -----" >&2
        podman logs "$CONTAINER" >&2 2>&1 || echo "(podman logs failed)" >&2
        echo "----- end of container log -----" >&2
    fi
}
fail() {
    show_logs
    printf 'smoke.sh: FAILED: %s\n' "$*" >&2
    exit 1
}
# First line of a file, for one-line reasons.
first_line() { { grep -m1 -v '^[[:space:]]*$' "$1" || true; } | cut -c1-300; }

cleanup() {
    local rc=$?
    set +e
    if [ -n "$HELPER_PID" ]; then
        kill "$HELPER_PID" 2>/dev/null
        wait "$HELPER_PID" 2>/dev/null
    fi
    if [ "$CONTAINER_MADE" = 1 ]; then
        timeout 60 podman rm --force --time 5 "$CONTAINER" >/dev/null 2>&1
    fi
    if [ "$IMAGE_MADE" = 1 ]; then
        timeout 60 podman rmi --force "$IMAGE" >/dev/null 2>&1
    fi
    if [ "$REMOVE_BASE" = 1 ] && [ -n "$BASE_IMAGE" ]; then
        timeout 60 podman rmi --force "$BASE_IMAGE" >/dev/null 2>&1
    fi
    if [ -n "$WORK" ]; then
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- tools -------------------------------------------------------------------------------
command -v python3 >/dev/null || skip "python3 is not installed on the host (the sink, DNS server and client are Python)"
command -v timeout >/dev/null || skip "coreutils timeout is not installed"
missing=()
for tool in podman runc mmdebstrap; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "${GATEWAY_SMOKE_INSTALL:-1}" = 0 ]; then
        skip "not installed: ${missing[*]} (GATEWAY_SMOKE_INSTALL=0: not installing)"
    elif [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        skip "not installed: ${missing[*]} (and no apt-get as root to install them)"
    fi
    say "installing ${missing[*]} with apt-get"
    log=$(mktemp)
    if ! DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -q "${missing[@]}" >"$log" 2>&1; then
        DEBIAN_FRONTEND=noninteractive timeout 300 apt-get update -q >>"$log" 2>&1 || true
        if ! DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -q "${missing[@]}" >>"$log" 2>&1; then
            reason=$(grep -m1 '^E:' "$log" || tail -n1 "$log")
            rm -f "$log"
            skip "apt-get install ${missing[*]} failed: $reason"
        fi
    fi
    rm -f "$log"
fi

WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/gateway-smoke.XXXXXX")
cat >"$WORK/containers.conf" <<'EOF'
[containers]
default_ulimits = []
log_driver = "k8s-file"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
export CONTAINERS_CONF="$WORK/containers.conf"

if ! timeout 120 podman info >"$WORK/info.log" 2>&1; then
    skip "podman info fails: $(first_line "$WORK/info.log")"
fi
say "podman $(podman version --format '{{.Client.Version}}' 2>/dev/null || echo '?'), runtime runc, cgroupfs, host network"

# ---- the Debian base ---------------------------------------------------------------------
make_base_tar() { # $1: the tar to write
    say "making a Debian bookworm base with mmdebstrap (python3, python3-venv, ca-certificates)"
    if ! timeout 900 mmdebstrap --variant=minbase --format=tar \
        --include=python3,python3-venv,ca-certificates \
        bookworm "$1.part" >"$WORK/mmdebstrap.log" 2>&1; then
        tail -n 20 "$WORK/mmdebstrap.log" >&2
        fail "mmdebstrap could not make the base (log above)"
    fi
    mv "$1.part" "$1"
}
import_base() { # $1: tar, $2: tag
    if ! timeout 300 podman import "$1" "$2" >"$WORK/import.log" 2>&1; then
        cat "$WORK/import.log" >&2
        fail "podman import of the base failed"
    fi
}

if [ -n "${GATEWAY_SMOKE_CACHE:-}" ]; then
    mkdir -p "$GATEWAY_SMOKE_CACHE"
    tar="$GATEWAY_SMOKE_CACHE/base-bookworm.tar"
    exec 9>"$GATEWAY_SMOKE_CACHE/.lock"
    timeout 1200 flock 9 || fail "could not lock $GATEWAY_SMOKE_CACHE/.lock within 20 minutes"
    if [ -f "$tar" ] && [ -n "$(find "$tar" -mtime +7)" ]; then
        say "the cached base is older than 7 days: making it again"
        rm -f "$tar"
        podman rmi --force "$BASE_TAG" >/dev/null 2>&1 || true
    fi
    if [ ! -f "$tar" ]; then
        podman rmi --force "$BASE_TAG" >/dev/null 2>&1 || true
        make_base_tar "$tar"
    else
        say "using the cached base $tar"
    fi
    if ! podman image exists "$BASE_TAG"; then
        import_base "$tar" "$BASE_TAG"
    fi
    exec 9>&-
    BASE_IMAGE=$BASE_TAG
else
    make_base_tar "$WORK/base.tar"
    BASE_IMAGE="localhost/gateway-smoke-base:$RUN_ID"
    REMOVE_BASE=1
    import_base "$WORK/base.tar" "$BASE_IMAGE"
    rm -f "$WORK/base.tar"
fi

if ! timeout 120 podman run --rm --network=host "$BASE_IMAGE" true >"$WORK/probe.log" 2>&1; then
    skip "podman cannot run a container here: $(first_line "$WORK/probe.log")"
fi

# ---- build -------------------------------------------------------------------------------
say "building docker/Dockerfile on $BASE_IMAGE as $IMAGE"
mounts=()
if [ -f "$CA_BUNDLE" ]; then
    mounts=(-v "$CA_BUNDLE:$CA_BUNDLE:ro")
fi
IMAGE_MADE=1
if ! timeout 900 podman build --format docker --layers=false --network=host "${mounts[@]}" \
    --build-arg "BASE=$BASE_IMAGE" -f "$ROOT/docker/Dockerfile" -t "$IMAGE" "$ROOT" \
    >"$WORK/build.log" 2>&1; then
    tail -n 40 "$WORK/build.log" >&2
    fail "podman build failed (last 40 lines above)"
fi
say "built: $(grep -c '^Collecting' "$WORK/build.log" || true) packages from the lock, image $(podman image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%d MB", $1 / 1e6}')"

# ---- sink and DNS server on loopback -----------------------------------------------------
cat >"$WORK/helpers.py" <<'EOF'
"""A DNS server (UDP) and an SMTP sink on 127.0.0.1, ports chosen by the kernel.

DNS: MX for DOMAIN -> mx.DOMAIN; A for any name under DOMAIN -> 127.0.0.1; other types
under DOMAIN: no data; anything else: NXDOMAIN. The sink stores each message as
DIR/msg-N.eml with its envelope in DIR/msg-N.json. Writes {"smtp": port, "dns": port}
to READY when both listen.
"""
import asyncio, json, os, struct, sys

out, ready, domain = sys.argv[1], sys.argv[2], sys.argv[3]
mx_host = "mx." + domain


def wire(name):
    return b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"


def answer(query):
    ident, flags = struct.unpack(">HH", query[:4])
    i, labels = 12, []
    while query[i]:
        labels.append(query[i + 1 : i + 1 + query[i]].decode("ascii").lower())
        i += 1 + query[i]
    qtype = struct.unpack(">H", query[i + 1 : i + 3])[0]
    question = query[12 : i + 5]
    name = ".".join(labels)
    ours = name == domain or name.endswith("." + domain)
    rrs = []
    if ours and qtype == 15 and name == domain:
        rdata = struct.pack(">H", 10) + wire(mx_host)
        rrs.append(struct.pack(">HHHIH", 0xC00C, 15, 1, 60, len(rdata)) + rdata)
    elif ours and qtype == 1:
        rrs.append(struct.pack(">HHHIH", 0xC00C, 1, 1, 60, 4) + bytes([127, 0, 0, 1]))
    rflags = 0x8000 | (flags & 0x7900) | 0x0400 | 0x0080 | (0 if ours else 3)
    return struct.pack(">HHHHHH", ident, rflags, 1, len(rrs), 0, 0) + question + b"".join(rrs)


class Dns(asyncio.DatagramProtocol):
    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        try:
            self.transport.sendto(answer(data), addr)
        except Exception as exc:  # a malformed query: no answer
            print(f"dns: {exc!r}", file=sys.stderr)


count = 0


async def session(reader, writer):
    global count
    envelope = {"mail_from": None, "rcpt_to": []}
    writer.write(b"220 sink.smoke ESMTP\r\n")
    while True:
        await writer.drain()
        line = await reader.readline()
        if not line:
            break
        verb = line[:4].upper()
        if verb in (b"EHLO", b"HELO"):
            writer.write(b"250 sink.smoke\r\n")
        elif verb == b"MAIL":
            envelope = {"mail_from": line.decode().strip(), "rcpt_to": []}
            writer.write(b"250 2.1.0 ok\r\n")
        elif verb == b"RCPT":
            envelope["rcpt_to"].append(line.decode().strip())
            writer.write(b"250 2.1.5 ok\r\n")
        elif verb == b"DATA":
            writer.write(b"354 go ahead\r\n")
            await writer.drain()
            body = []
            while True:
                part = await reader.readline()
                if not part or part == b".\r\n":
                    break
                body.append(part[1:] if part.startswith(b"..") else part)
            count += 1
            base = os.path.join(out, f"msg-{count}")
            with open(base + ".json.part", "w") as f:
                json.dump(envelope, f)
            os.rename(base + ".json.part", base + ".json")
            with open(base + ".eml.part", "wb") as f:
                f.write(b"".join(body))
            os.rename(base + ".eml.part", base + ".eml")
            writer.write(b"250 2.0.0 stored\r\n")
        elif verb == b"QUIT":
            writer.write(b"221 2.0.0 bye\r\n")
            await writer.drain()
            break
        else:
            writer.write(b"250 ok\r\n")
    writer.close()


async def main():
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(Dns, local_addr=("127.0.0.1", 0))
    server = await asyncio.start_server(session, "127.0.0.1", 0)
    ports = {"smtp": server.sockets[0].getsockname()[1], "dns": transport.get_extra_info("sockname")[1]}
    with open(ready + ".part", "w") as f:
        json.dump(ports, f)
    os.rename(ready + ".part", ready)
    await asyncio.sleep(1800)  # never outlives a forgotten cleanup by much


asyncio.run(main())
EOF
mkdir "$WORK/sink"
python3 "$WORK/helpers.py" "$WORK/sink" "$WORK/ready.json" "$DOMAIN" 2>"$WORK/helpers.log" &
HELPER_PID=$!
deadline=$((SECONDS + 20))
until [ -f "$WORK/ready.json" ]; do
    kill -0 "$HELPER_PID" 2>/dev/null || { cat "$WORK/helpers.log" >&2; fail "the sink/DNS helper exited"; }
    [ "$SECONDS" -lt "$deadline" ] || fail "the sink/DNS helper did not start within 20s"
    sleep 0.2
done
read -r SINK_PORT DNS_PORT < <(python3 -c 'import json, sys; p = json.load(open(sys.argv[1])); print(p["smtp"], p["dns"])' "$WORK/ready.json")
# Two free loopback ports for the gateway (the container shares the host's network).
read -r SMTP_PORT ADMIN_PORT < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
')
say "sink on 127.0.0.1:$SINK_PORT, DNS on 127.0.0.1:$DNS_PORT (udp); gateway SMTP :$SMTP_PORT, admin :$ADMIN_PORT"

# ---- run ---------------------------------------------------------------------------------
SECRET=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')
CONTAINER_MADE=1
if ! timeout 120 podman run -d --name "$CONTAINER" --network=host \
    -e "GATEWAY__SMTP__LISTEN=\"127.0.0.1:$SMTP_PORT\"" \
    -e "GATEWAY__ADMIN__LISTEN=\"127.0.0.1:$ADMIN_PORT\"" \
    -e "GATEWAY__SMTP__HOSTNAME=\"smoke.gateway.test\"" \
    -e "GATEWAY__BOUNCE__SECRET=\"$SECRET\"" \
    -e "GATEWAY__DNS__NAMESERVERS=[\"127.0.0.1:$DNS_PORT\"]" \
    -e "GATEWAY__RELAY__MX_PORT=$SINK_PORT" \
    "$IMAGE" >"$WORK/run.log" 2>&1; then
    cat "$WORK/run.log" >&2
    fail "podman run failed"
fi
say "started container $CONTAINER"

running() { [ "$(podman inspect --format '{{.State.Running}}' "$CONTAINER" 2>/dev/null)" = true ]; }
healthz() { # prints the HTTP status of /healthz, or an error
    python3 -c '
import sys, urllib.request
try:
    print(urllib.request.urlopen(sys.argv[1], timeout=3).status)
except Exception as exc:
    print(repr(exc))
' "http://127.0.0.1:$ADMIN_PORT/healthz"
}
deadline=$((SECONDS + 60))
while :; do
    status=$(healthz)
    [ "$status" = 200 ] && break
    running || fail "the container exited before /healthz answered (exit code $(podman inspect --format '{{.State.ExitCode}}' "$CONTAINER"))"
    [ "$SECONDS" -lt "$deadline" ] || fail "/healthz did not answer 200 within 60s (last: $status)"
    sleep 0.5
done
say "/healthz from the host: 200"

# The image's own HEALTHCHECK command, read from the built image, run inside the container.
HC_JSON=$(podman image inspect "$IMAGE" | python3 -c '
import json, sys
[image] = json.load(sys.stdin)
check = image.get("Config", {}).get("Healthcheck") or image.get("Healthcheck")
if not check or check.get("Test", [""])[0] != "CMD":
    sys.exit("no exec-form HEALTHCHECK in the image")
print(json.dumps(check["Test"][1:]))
') || fail "the image has no HEALTHCHECK (built with --format docker?)"
mapfile -t HC_CMD < <(python3 -c 'import json, sys; print(*json.loads(sys.argv[1]), sep="\n")' "$HC_JSON")
if ! timeout 30 podman exec "$CONTAINER" "${HC_CMD[@]}" >"$WORK/hc.log" 2>&1; then
    cat "$WORK/hc.log" >&2
    fail "the image's HEALTHCHECK command failed inside the container"
fi
say "the image's HEALTHCHECK command inside the container: exit 0"
if timeout 30 podman healthcheck run "$CONTAINER" >"$WORK/hc2.log" 2>&1; then
    say "podman healthcheck run: healthy"
else
    fail "podman healthcheck run: $(first_line "$WORK/hc2.log")"
fi

# The gateway itself (PID 1), not only a process started by exec, runs as the image's user.
uid=$(timeout 30 podman exec "$CONTAINER" cat /proc/1/status | awk '/^Uid:/ {print $2 "/" $3}')
[ "$uid" = "$UID_EXPECTED/$UID_EXPECTED" ] || fail "PID 1 runs as uid (real/effective) $uid, not $UID_EXPECTED"
exec_uid=$(timeout 30 podman exec "$CONTAINER" id -u)
[ "$exec_uid" = "$UID_EXPECTED" ] || fail "podman exec runs as uid $exec_uid, not $UID_EXPECTED"
say "the gateway (PID 1) runs as uid $UID_EXPECTED"
# What runs is the package installed in the venv (no source tree left in the image).
where=$(timeout 30 podman exec "$CONTAINER" python -c 'import gateway; print(gateway.__file__)')
case "$where" in
/opt/venv/lib/*/site-packages/gateway/__init__.py) say "the gateway package is the installed one: $where" ;;
*) fail "the container imports the gateway from $where, not from /opt/venv's site-packages" ;;
esac

# ---- one message through it --------------------------------------------------------------
TOKEN="smoke-$RUN_ID-$RANDOM"
if ! timeout 60 python3 - "$SMTP_PORT" "$RCPT" "$TOKEN" >"$WORK/send.log" 2>&1 <<'EOF'; then
import smtplib, sys
port, rcpt, token = int(sys.argv[1]), sys.argv[2], sys.argv[3]
message = (
    f"From: App <app@sender.example>\r\nTo: {rcpt}\r\nSubject: {token}\r\n"
    f"Message-ID: <{token}@sender.example>\r\n\r\nHello from docker/smoke.sh.\r\n"
)
with smtplib.SMTP("127.0.0.1", port, local_hostname="client.smoke", timeout=30) as client:
    client.ehlo()
    code, reply = client.mail("app@sender.example")
    assert code == 250, f"MAIL FROM: {code} {reply!r}"
    code, reply = client.rcpt(rcpt)
    assert code == 250, f"RCPT TO: {code} {reply!r}"
    code, reply = client.data(message.encode())
    assert code == 250, f"DATA: {code} {reply!r}"
    print(f"250 {reply.decode(errors='replace')}")
EOF
    cat "$WORK/send.log" >&2
    fail "the gateway did not accept the message (above)"
fi
say "accepted: $(tail -n1 "$WORK/send.log")"

deadline=$((SECONDS + 60))
found=""
while [ -z "$found" ]; do
    found=$(grep -l -F "Subject: $TOKEN" "$WORK"/sink/*.eml 2>/dev/null | head -n1 || true)
    [ -n "$found" ] && break
    running || fail "the container exited before the message reached the sink"
    [ "$SECONDS" -lt "$deadline" ] || fail "the message did not reach the sink within 60s"
    sleep 0.5
done
grep -q -i -F "<$RCPT>" "${found%.eml}.json" || fail "the sink got the message for $(cat "${found%.eml}.json"), not <$RCPT>"
say "delivered to the sink: $(basename "$found"), envelope $(cat "${found%.eml}.json")"

# ---- stop --------------------------------------------------------------------------------
# SIGTERM, then SIGKILL only after 40s (relay.shutdown_grace is 30s): 137 means it hung.
stop_started=$SECONDS
timeout 90 podman stop --time 40 "$CONTAINER" >/dev/null 2>&1 || fail "podman stop failed"
code=$(podman inspect --format '{{.State.ExitCode}}' "$CONTAINER")
[ "$code" = 0 ] || fail "the gateway exited with code $code on SIGTERM, not 0"
say "stopped on SIGTERM in $((SECONDS - stop_started))s, exit code 0"

say "PASSED in $((SECONDS - STARTED))s"
