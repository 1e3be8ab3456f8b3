"""Two private Exim instances (x relays, y is the destination) from the extracted package.

Debian's exim4 binary has its account (Debian-exim) compiled in: the lab's private
/etc/passwd (inside its mount namespace) adds it. Each instance reads its own config
(``-C``), has its own spool and logs, listens only on its own loopback address, and runs
in the foreground (``-bdf``) as a child of the lab, with a queue runner every 4 s.
"""

from __future__ import annotations

import os
import pwd
import subprocess
from pathlib import Path

from bench.bounce_lab.scenarios import (
    BOUNCE_DOMAIN,
    DEAD_HOST,
    DEAD_PORT,
    HOSTS,
    RBL_ZONE,
    SCENARIOS,
    SIZE_LIMIT,
    Y_LATE_PORT,
    Y_PORT,
    Y_TLS_PORT,
)
from bench.bounce_lab.tls import throwaway_cert

MTA = "exim"
USER = "Debian-exim"
#: Exim has no built-in server-side "TLS required" refusal: its ACL's words are configured.
TLS_TEXT = "530 5.7.0 Encryption required: this server accepts mail only over TLS"
#: Exim's built-in checks deny with the bare "550 Administrative prohibition" unless the ACL
#: sets a message (the lab saw it): these are the Exim specification's dnslists example and
#: the words Exim itself logs for a failed reverse lookup, with Exim's variables.
RBL_TEXT = "rejected because $sender_host_address is in a black list at $dnslist_domain"
NO_PTR_TEXT = "no host name found for IP address $sender_host_address"
_BARE = (
    "; without a message Exim's reply is the bare '550 Administrative prohibition', which "
    "names no cause"
)
#: Scenarios made differently from the shared description (recorded in labels.jsonl).
HOW = {
    "rbl_listed": "the lab DNS lists x's loopback address in bl.lab; y's built-in 'dnslists' "
    f"ACL check refuses x at RCPT with a configured message ('{RBL_TEXT}', the Exim "
    f"specification's example){_BARE}; x writes the report",
    "no_ptr": "the lab DNS has no PTR for x's loopback address; y's built-in 'verify = "
    f"reverse_host_lookup' refuses x at RCPT with a configured message ('{NO_PTR_TEXT}', "
    f"the words Exim logs for the failed lookup){_BARE}; x writes the report",
    "greylisted": "y's ACL verb 'defer' without a message answers every RCPT for the domain "
    "with Exim's own 451 words until x's retry rule (F,20s,4s) times out; x writes the "
    "report",
    "sender_domain": "y's built-in 'verify = sender' routes the envelope sender (the gateway's "
    "return-path domain) through a dnslookup router; the lab DNS answers NXDOMAIN and Exim "
    "gives its own 'Sender verify failed'; x writes the report",
    "tls_required": "y (port "
    + str(Y_TLS_PORT)
    + ") advertises STARTTLS with a throwaway openssl certificate and x does not use it; "
    "Exim has no built-in server-side TLS requirement, so y's ACL 'deny !encrypted = *' at "
    f"RCPT carries a configured text ('{TLS_TEXT}'); x writes the report",
}


def _domain(name: str) -> str:
    return next(s for s in SCENARIOS if s.name == name).domain(MTA)


def _head(folder: Path, host: str, name: str, ports: str, root: Path) -> str:
    return f"""\
exim_path = {root}/usr/sbin/exim4
primary_hostname = {name}
spool_directory = {folder}/spool
log_file_path = {folder}/log/%slog
pid_file_path = {folder}/exim.pid
exim_user = {USER}
exim_group = {USER}
never_users = root
daemon_smtp_ports = {ports}
local_interfaces = {host}
host_lookup =
rfc1413_hosts =
keep_environment = LD_LIBRARY_PATH
tls_advertise_hosts =
delay_warning = 0s
timeout_frozen_after = 2m
ignore_bounce_errors_after = 0s
"""


def _gateway_router() -> str:
    # Ends with "no_more" and no newline: y appends "no_verify" (sender_domain's check must
    # look the return-path domain up in the lab's DNS, not route it to the gateway).
    return f"""\
to_gateway:
  driver = manualroute
  domains = {BOUNCE_DOMAIN}
  route_list = * 127.0.0.1 byname
  transport = to_gateway
  self = send
  no_more"""


def _transports(host: str, proxy_port: int) -> str:
    return f"""\
begin transports
to_gateway:
  driver = smtp
  port = {proxy_port}
  interface = {host}
remote_smtp:
  driver = smtp
  interface = {host}
to_y:
  driver = smtp
  port = {Y_PORT}
  interface = {host}
to_y_late:
  driver = smtp
  port = {Y_LATE_PORT}
  interface = {host}
to_y_tls:
  driver = smtp
  port = {Y_TLS_PORT}
  interface = {host}
  hosts_avoid_tls = *
to_dead:
  driver = smtp
  port = {DEAD_PORT}
  interface = {host}
  connect_timeout = 5s
"""


def write(work: Path, root: Path, mx_port: int, proxy_port: int) -> list[Path]:
    """Write x's and y's config; returns their work folders."""
    x_host, y_host = HOSTS[MTA]
    uid = pwd.getpwnam(USER).pw_uid
    to_y = [
        s.domain(MTA)
        for s in SCENARIOS
        if s.name
        not in ("unknown_late", "conn_refused", "nxdomain", "dns_servfail", "tls_required")
    ]
    x = (
        _head(work / f"{MTA}-x", x_host, f"mx-x.{MTA}.lab", str(mx_port), root)
        + f"""\
domainlist local_domains =
hostlist relay_from_hosts = 127.0.0.0/8
acl_smtp_rcpt = acl_check_rcpt

begin acl
acl_check_rcpt:
  accept hosts = +relay_from_hosts
  deny message = relay not permitted

begin routers
{_gateway_router()}
to_y:
  driver = manualroute
  domains = {" : ".join(to_y)}
  route_list = * {y_host} byname
  transport = to_y
  no_more
to_y_late:
  driver = manualroute
  domains = {_domain("unknown_late")}
  route_list = * {y_host} byname
  transport = to_y_late
  no_more
to_y_tls:
  driver = manualroute
  domains = {_domain("tls_required")}
  route_list = * {y_host} byname
  transport = to_y_tls
  no_more
to_dead:
  driver = manualroute
  domains = {_domain("conn_refused")}
  route_list = * {DEAD_HOST} byname
  transport = to_dead
  no_more
dnslookup:
  driver = dnslookup
  transport = remote_smtp
  no_more

{_transports(x_host, proxy_port)}
begin retry
*  *  F,20s,4s
"""
    )
    local = [s.domain(MTA) for s in SCENARIOS if s.name != "relay_denied"]
    cert, key = throwaway_cert(work / f"{MTA}-y", f"mx-y.{MTA}.lab")
    ports = f"{Y_PORT} : {Y_LATE_PORT} : {Y_TLS_PORT}"
    y = (
        _head(work / f"{MTA}-y", y_host, f"mx-y.{MTA}.lab", ports, root).replace(
            "tls_advertise_hosts =\n",
            f"tls_advertise_hosts = ${{if eq{{$received_port}}{{{Y_TLS_PORT}}}{{*}}{{}}}}\n"
            f"tls_certificate = {cert}\ntls_privatekey = {key}\n",
        )
        + f"""\
domainlist local_domains = {" : ".join(local)}
hostlist relay_from_hosts = {y_host}
message_size_limit = {SIZE_LIMIT}
acl_smtp_rcpt = acl_check_rcpt
acl_smtp_data = acl_check_data

begin acl
acl_check_rcpt:
  accept condition = ${{if eq{{$received_port}}{{{Y_LATE_PORT}}}}}
         domains = +local_domains
  deny   !domains = +local_domains
         !hosts = +relay_from_hosts
         message = relay not permitted
  require verify = recipient
  deny   domains = {_domain("rbl_listed")}
         dnslists = {RBL_ZONE}
         message = {RBL_TEXT}
  deny   domains = {_domain("no_ptr")}
         !verify = reverse_host_lookup
         message = {NO_PTR_TEXT}
  deny   domains = {_domain("sender_domain")}
         !verify = sender
  defer  domains = {_domain("greylisted")}
  deny   condition = ${{if eq{{$received_port}}{{{Y_TLS_PORT}}}}}
         !encrypted = *
         message = {TLS_TEXT}
  accept
acl_check_data:
  deny condition = ${{if match{{$recipients}}{{@{_domain("policy_data")}}}}}
  accept

begin routers
{_gateway_router()}
  no_verify
mailbox:
  driver = accept
  domains = +local_domains
  local_parts = alice : full
  transport = mailbox
# Sender verification looks the sender's domain up in the lab's DNS (sender_domain).
verify_dns:
  driver = dnslookup
  verify_only
  transport = remote_smtp

{_transports(y_host, proxy_port)}
mailbox:
  driver = appendfile
  file = {work}/{MTA}-y/mail/$domain_data/$local_part_data
  create_directory
  user = {USER}
  group = {USER}
  mode = 0600
  quota = {SIZE_LIMIT}

begin retry
*  *  F,20s,4s
"""
    )
    folders = []
    for role, text in (("x", x), ("y", y)):
        folder = work / f"{MTA}-{role}"
        for sub in ("spool", "log", "mail"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        (folder / "configure").write_text(text)
        folders.append(folder)
    box = work / f"{MTA}-y" / "mail" / _domain("over_quota")
    box.mkdir(parents=True, exist_ok=True)
    # The mailbox is nearly at its quota: the next message does not fit.
    (box / "full").write_bytes(b"x" * (SIZE_LIMIT - 200) + b"\n")
    for folder in folders:
        for path in [folder, *folder.rglob("*")]:
            if path.name != "configure":
                os.chown(path, uid, uid)
    return folders


def _env(root: Path) -> dict[str, str]:
    return {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "LD_LIBRARY_PATH": f"{root}/usr/lib/x86_64-linux-gnu",
    }


def start(folder: Path, root: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(root / "usr/sbin/exim4"), "-C", str(folder / "configure"), "-bdf", "-q4s"],
        env=_env(root),
        stdout=(folder / "daemon.out").open("wb"),
        stderr=subprocess.STDOUT,
    )


def version(root: Path) -> str:
    out = subprocess.run(
        [str(root / "usr/sbin/exim4"), "-bV"],
        env=_env(root),
        capture_output=True,
        text=True,
        check=False,
    )
    first = out.stdout.splitlines()[0] if out.stdout else "Exim (version unknown)"
    return " ".join(first.split()[:3])
