"""Two private Postfix instances (x relays, y is the destination) from the extracted package.

Postfix's master(8) must start as root (it then runs its daemons as ``mail_owner``); each
instance has its own config directory, queue, data directory and log file under the lab's
work folder, listens only on its own loopback address, and is started by ``master -d`` as a
child of the lab (never ``postfix start``, never the system's /etc/postfix or its queue).
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

MTA = "postfix"
_CLASS = "a restriction class chosen by the recipient's domain"
#: How each security and policy refusal is made (recorded in labels.jsonl): Postfix's own
#: checks with their default codes and words, no configured text.
HOW = {
    "rbl_listed": "the lab DNS lists x's loopback address in bl.lab; y's "
    f"'reject_rbl_client bl.lab' ({_CLASS}) refuses x at RCPT with 554; x writes the report",
    "no_ptr": "the lab DNS has no PTR for x's loopback address; y's "
    f"'reject_unknown_reverse_client_hostname' ({_CLASS}) answers with its default 450 until "
    "x's queue lifetime ends; x writes the report",
    "tls_required": f"y's port {Y_TLS_PORT} has 'smtpd_tls_security_level = encrypt' with a "
    "throwaway certificate made by openssl at run time; x ('smtp_tls_security_level = "
    "none') does not use STARTTLS and y refuses its MAIL; x writes the report",
    "sender_domain": f"y's 'reject_unknown_sender_domain' ({_CLASS}) looks up the envelope "
    "sender's domain (the gateway's return-path domain), which the lab DNS answers NXDOMAIN "
    "for, and answers with its default 450 until x's queue lifetime ends; x writes the report",
    "greylisted": f"y's 'defer' restriction ({_CLASS}) answers every RCPT with its default "
    "450 until x's queue lifetime ends, as a greylist that never lets x in; x writes the report",
}
QUEUE_DIRS = [
    "active",
    "bounce",
    "corrupt",
    "defer",
    "deferred",
    "flush",
    "hold",
    "incoming",
    "maildrop",
    "pid",
    "private",
    "public",
    "saved",
    "trace",
]

MASTER_CF = """\
{listen} inet n - n - - smtpd
{extra_listen}
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
smtp      unix  - - n - - smtp
relay     unix  - - n - - smtp
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
virtual   unix  - n n - - virtual
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
tlsmgr    unix  - - n 1000? 1 tlsmgr
"""


def _common(work: Path, root: Path, host: str, name: str) -> str:
    return f"""\
compatibility_level = 3.6
config_directory = {work}/etc
queue_directory = {work}/spool
data_directory = {work}/data
command_directory = {root}/usr/sbin
daemon_directory = {root}/usr/lib/postfix/sbin
shlib_directory = {root}/usr/lib/postfix
meta_directory = {root}/etc/postfix
import_environment = MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ LANG=C LD_LIBRARY_PATH
mail_owner = postfix
setgid_group = postdrop
myhostname = {name}
mydomain = {MTA}.lab
myorigin = $myhostname
inet_interfaces = all
inet_protocols = ipv4
smtp_bind_address = {host}
mydestination =
relay_domains =
alias_maps =
alias_database =
local_recipient_maps =
maillog_file = {work}/maillog
maillog_file_prefixes = {work}
biff = no
smtputf8_enable = no
smtp_tls_security_level = none
smtpd_tls_security_level = none
maximal_queue_lifetime = 20s
bounce_queue_lifetime = 20s
queue_run_delay = 4s
minimal_backoff_time = 4s
maximal_backoff_time = 8s
delay_warning_time = 0h
smtp_connect_timeout = 5s
transport_maps = texthash:{work}/etc/transport
"""


def write(work: Path, root: Path, mx_port: int, proxy_port: int) -> list[Path]:
    """Write x's and y's config; returns their work folders."""
    x_host, y_host = HOSTS[MTA]
    uid = pwd.getpwnam("postfix").pw_uid
    gid = pwd.getpwnam("postfix").pw_gid
    folders = []
    for role, host in (("x", x_host), ("y", y_host)):
        folder = work / f"{MTA}-{role}"
        etc = folder / "etc"
        etc.mkdir(parents=True, exist_ok=True)
        for sub in QUEUE_DIRS:
            (folder / "spool" / sub).mkdir(parents=True, exist_ok=True)
            os.chown(folder / "spool" / sub, 0 if sub == "pid" else uid, gid)
        (folder / "data").mkdir(exist_ok=True)
        os.chown(folder / "data", uid, gid)
        transport = [f"{BOUNCE_DOMAIN} smtp:[127.0.0.1]:{proxy_port}"]
        main = _common(folder, root, host, f"mx-{role}.{MTA}.lab")
        if role == "x":
            listen = f"{host}:{mx_port}"
            extra = ""
            main += "mynetworks = 127.0.0.0/8\n"
            main += "smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination\n"
            for s in SCENARIOS:
                d = s.domain(MTA)
                if s.name == "unknown_late":
                    transport.append(f"{d} smtp:[{y_host}]:{Y_LATE_PORT}")
                elif s.name == "tls_required":
                    transport.append(f"{d} smtp:[{y_host}]:{Y_TLS_PORT}")
                elif s.name == "conn_refused":
                    transport.append(f"{d} smtp:[{DEAD_HOST}]:{DEAD_PORT}")
                elif s.name not in ("nxdomain", "dns_servfail"):
                    transport.append(f"{d} smtp:[{y_host}]:{Y_PORT}")
        else:
            listen = f"{host}:{Y_PORT}"
            cert, key = throwaway_cert(folder, f"mx-{role}.{MTA}.lab")
            extra = (
                f"{host}:{Y_LATE_PORT} inet n - n - - smtpd -o smtpd_reject_unlisted_recipient=no\n"
                f"{host}:{Y_TLS_PORT} inet n - n - - smtpd -o smtpd_tls_security_level=encrypt"
                f" -o smtpd_tls_cert_file={cert} -o smtpd_tls_key_file={key}"
            )
            domains = [s.domain(MTA) for s in SCENARIOS if s.name not in ("relay_denied",)]
            mailboxes = [f"{who}@{d} {d}/{who}" for d in domains for who in ("alice", "full")]
            (etc / "vmailbox").write_text("\n".join(mailboxes) + "\n")
            policy = next(s for s in SCENARIOS if s.name == "policy_data").domain(MTA)
            (etc / "policy").write_text(f"{policy} REJECT\n")
            # The security and policy refusals: Postfix's own checks, one restriction class
            # per scenario, chosen by the recipient's domain (so the other scenarios are not
            # checked), answered with Postfix's default codes and words.
            checks = {
                "rbl_listed": f"reject_rbl_client {RBL_ZONE}",
                "no_ptr": "reject_unknown_reverse_client_hostname",
                "sender_domain": "reject_unknown_sender_domain",
                "greylisted": "defer",
            }
            (etc / "checks").write_text(
                "".join(f"{s.domain(MTA)} {s.name}\n" for s in SCENARIOS if s.name in checks)
            )
            classes = "".join(f"{name} = {check}\n" for name, check in checks.items())
            main += f"""\
mynetworks = {y_host}/32
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_data_restrictions = check_recipient_access texthash:{etc}/policy
smtpd_restriction_classes = {", ".join(checks)}
{classes}smtpd_recipient_restrictions = check_recipient_access texthash:{etc}/checks
virtual_mailbox_domains = {", ".join(domains)}
virtual_mailbox_maps = texthash:{etc}/vmailbox
virtual_mailbox_base = {folder}/mail
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
virtual_mailbox_limit = {SIZE_LIMIT}
message_size_limit = {SIZE_LIMIT}
"""
            quota = next(s for s in SCENARIOS if s.name == "over_quota").domain(MTA)
            box = folder / "mail" / quota
            box.mkdir(parents=True, exist_ok=True)
            # The mailbox is nearly at the limit: the next message does not fit.
            (box / "full").write_bytes(
                b"From old@example.lab Mon Dec  7 00:00:00 2026\n"
                + b"x" * (SIZE_LIMIT - 200)
                + b"\n\n"
            )
            for path in [folder / "mail", *(folder / "mail").rglob("*")]:
                os.chown(path, uid, gid)
        (etc / "transport").write_text("\n".join(transport) + "\n")
        (etc / "main.cf").write_text(main)
        (etc / "master.cf").write_text(MASTER_CF.format(listen=listen, extra_listen=extra))
        folders.append(folder)
    return folders


def start(folder: Path, root: Path) -> subprocess.Popen[bytes]:
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "LD_LIBRARY_PATH": f"{root}/usr/lib/postfix",
        "MAIL_CONFIG": str(folder / "etc"),
    }
    return subprocess.Popen(
        [str(root / "usr/lib/postfix/sbin/master"), "-d", "-c", str(folder / "etc")],
        env=env,
        stdout=(folder / "master.out").open("wb"),
        stderr=subprocess.STDOUT,
    )


def version(root: Path) -> str:
    out = subprocess.run(
        [str(root / "usr/sbin/postconf"), "-d", "-h", "mail_version"],
        env={"LD_LIBRARY_PATH": f"{root}/usr/lib/postfix"},
        capture_output=True,
        text=True,
        check=False,
    )
    return f"Postfix {out.stdout.strip()}"
