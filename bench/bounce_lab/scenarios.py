"""The bounce lab's scripted failures: one recipient per scenario per MTA, and its label.

Each scenario names the recipient the gateway sends to, the category a correct classifier
gives the report the real MTA writes about it (the label is the scenario, by construction),
and how the lab's two instances of that MTA (``x``, the relay the gateway hands the message
to, and ``y``, the destination behind it) and its DNS produce the failure.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scenario:
    name: str
    local: str
    category: str
    what: str
    big: bool = False

    def domain(self, mta: str) -> str:
        return f"{self.name.replace('_', '-')}.{mta}.lab"

    def recipient(self, mta: str) -> str:
        return f"{self.local}@{self.domain(mta)}"


SCENARIOS = (
    Scenario(
        "unknown_rcpt",
        "nosuchuser",
        "nonexistent_address",
        "y refuses the unknown user at RCPT; x writes the report",
    ),
    Scenario(
        "unknown_late",
        "nosuchuser",
        "nonexistent_address",
        "y accepts the unknown user, then its delivery finds no mailbox; y writes the report",
    ),
    Scenario(
        "over_quota",
        "full",
        "mailbox_full",
        "y accepts; its local delivery finds the mailbox over its quota; y writes the report",
    ),
    Scenario(
        "too_large",
        "alice",
        "message_too_large",
        "y's size limit is 8000 bytes and the message about 20 kB; x writes the report",
        big=True,
    ),
    Scenario(
        "relay_denied",
        "alice",
        "sender_config",
        "y is not a destination for the domain and does not trust x; x writes the report",
    ),
    Scenario(
        "policy_data",
        "alice",
        "spam_blocked",
        "y's policy refuses the message at DATA; x writes the report",
    ),
    Scenario(
        "nxdomain",
        "alice",
        "nonexistent_address",
        "the lab DNS answers NXDOMAIN for the domain x looks up; x writes the report",
    ),
    Scenario(
        "dns_servfail",
        "alice",
        "receiving_problem",
        "the lab DNS answers SERVFAIL for the domain until x's queue lifetime ends",
    ),
    Scenario(
        "conn_refused",
        "alice",
        "receiving_problem",
        "nothing listens at the next hop until x's queue lifetime ends",
    ),
    # Security and policy refusals: y refuses for a reason the MTA states in its own words.
    Scenario(
        "rbl_listed",
        "alice",
        "spam_blocked",
        "the lab DNS lists x's loopback address in the block list bl.lab; y's built-in DNS "
        "block-list check refuses x at RCPT; x writes the report",
    ),
    Scenario(
        "no_ptr",
        "alice",
        "sender_config",
        "the lab DNS has no PTR for x's loopback address; y's built-in reverse-hostname check "
        "refuses x; x writes the report",
    ),
    Scenario(
        "tls_required",
        "alice",
        "sender_config",
        "y demands TLS (a throwaway certificate made with openssl at run time) and x does not "
        "use STARTTLS; y refuses the plaintext transaction; x writes the report",
    ),
    Scenario(
        "sender_domain",
        "alice",
        "spam_blocked",
        "y's built-in sender check looks up the envelope sender's domain (the gateway's "
        "return-path domain), which the lab DNS answers NXDOMAIN for; y refuses the sender; "
        "x writes the report",
    ),
    Scenario(
        "greylisted",
        "alice",
        "receiving_problem",
        "y answers every RCPT for the domain with a 4xx deferral (the MTA's own default words "
        "for a deferred recipient), as a greylist that never lets x in, until x's queue "
        "lifetime ends; x writes the report",
    ),
)

#: Where each MTA's two instances listen (x: the gateway's next hop; y: the destination).
HOSTS = {
    "postfix": ("127.0.1.1", "127.0.2.1"),
    "exim": ("127.0.1.2", "127.0.2.2"),
    "opensmtpd": ("127.0.1.3", "127.0.2.3"),
}
#: Where nothing listens (the connection-refused scenario's next hop).
DEAD_HOST = "127.0.3.1"
DEAD_PORT = 2599
#: y's SMTP ports: the checking one, and the one that accepts every recipient.
Y_PORT = 2526
Y_LATE_PORT = 2527
#: The lab's DNS, the one the MTAs read through their private /etc/resolv.conf.
LAB_DNS = "127.0.0.53"
#: The gateway's return-path domain (the harness's ``bounce.domain``).
BOUNCE_DOMAIN = "bounces.gateway.test"
SIZE_LIMIT = 8000
#: The lab's DNS block list: x's address reversed under it answers 127.0.0.2.
RBL_ZONE = "bl.lab"
#: y's port that demands TLS (the tls_required scenario).
Y_TLS_PORT = 2528
