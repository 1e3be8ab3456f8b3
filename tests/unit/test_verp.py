"""Signed return paths and unsubscribe tokens: round trips, tampering, rotation, expiry."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core.verp import (
    ReturnPathToken,
    make_return_path,
    make_unsubscribe_token,
    parse_return_path,
    parse_unsubscribe_token,
    recipient_set_digest,
)

SECRET = b"current-secret"
OLD = b"previous-secret"
DOMAIN = "bounces.example.com"
NOW = datetime(2025, 3, 10, 14, 30, tzinfo=UTC)
LIFETIME = timedelta(days=30)
QID = "01HZX3V6Q8R7ZJ5K2M9N4P0ABC"  # 26 characters, like a ULID


def parse(address: str, now: datetime = NOW, secrets: tuple[bytes, ...] = (SECRET,)) -> object:
    return parse_return_path(address, secrets, DOMAIN, now, LIFETIME)


def local_part(address: str) -> str:
    return address.rpartition("@")[0]


def token_part(address: str) -> str:
    return local_part(address).partition("+")[2]


@pytest.mark.parametrize(
    ("queue_id", "ids"),
    [
        (QID, [7]),
        (QID, [0]),
        (QID, [2**40 - 1]),
        (QID, [1, 2, 3]),
        ("a", [5]),
        ("aB3", [10, 11, 500]),
        ("zzzzzzzzzzzzzzzzzzzzzzzzzz", [123456789]),
    ],
)
def test_round_trip_lists_the_recipients(queue_id: str, ids: list[int]) -> None:
    address = make_return_path(queue_id, ids, SECRET, DOMAIN, NOW)
    assert address.startswith("b+")
    assert address.endswith("@" + DOMAIN)
    assert len(local_part(address)) <= 64
    assert parse(address) == ReturnPathToken(queue_id, tuple(sorted(ids)), date(2025, 3, 10))


def test_one_recipient_with_a_26_char_queue_id_fits_64_octets() -> None:
    address = make_return_path(QID, [2**40 - 1], SECRET, DOMAIN, NOW)
    assert len(local_part(address)) <= 64
    token = parse(address)
    assert isinstance(token, ReturnPathToken)
    assert token.recipient_ids == (2**40 - 1,)


def test_recipient_ids_are_deduplicated_and_sorted() -> None:
    token = parse(make_return_path("q1", [9, 3, 9, 4], SECRET, DOMAIN, NOW))
    assert isinstance(token, ReturnPathToken)
    assert token.recipient_ids == (3, 4, 9)


def test_queue_ids_are_case_sensitive_inside_a_case_insensitive_token() -> None:
    upper = parse(make_return_path("ABC", [1], SECRET, DOMAIN, NOW))
    lower = parse(make_return_path("abc", [1], SECRET, DOMAIN, NOW))
    assert isinstance(upper, ReturnPathToken)
    assert isinstance(lower, ReturnPathToken)
    assert (upper.queue_id, lower.queue_id) == ("ABC", "abc")


def test_many_recipients_fall_back_to_a_digest_that_fits() -> None:
    ids = list(range(1000, 1100, 3))
    address = make_return_path(QID, ids, SECRET, DOMAIN, NOW)
    assert len(local_part(address)) <= 64
    token = parse(address)
    assert isinstance(token, ReturnPathToken)
    assert token.queue_id == QID
    assert token.recipient_ids == ()
    assert token.recipient_digest == recipient_set_digest(ids)
    assert token.recipient_digest == recipient_set_digest(list(reversed(ids)))
    assert token.recipient_digest != recipient_set_digest(ids[:-1])


def test_case_folded_local_part_is_accepted() -> None:
    address = make_return_path(QID, [42], SECRET, DOMAIN, NOW)
    assert parse(address.upper()) == parse(address)
    assert parse(address.swapcase()) == parse(address)


def test_angle_brackets_and_domain_case_are_tolerated() -> None:
    address = make_return_path(QID, [42], SECRET, DOMAIN, NOW)
    assert parse(f"<{address}>") == parse(address)
    assert parse(address.replace(DOMAIN, "Bounces.Example.COM.")) == parse(address)


def test_every_single_character_change_is_refused() -> None:
    address = make_return_path(QID, [42], SECRET, DOMAIN, NOW)
    token = token_part(address)
    for i, char in enumerate(token):
        for replacement in "a7q":
            if replacement == char:
                continue
            forged = token[:i] + replacement + token[i + 1 :]
            assert parse(f"b+{forged}@{DOMAIN}") is None, (i, replacement)


@pytest.mark.parametrize("cut", [1, 5, 16])
def test_truncated_or_extended_tokens_are_refused(cut: int) -> None:
    address = make_return_path(QID, [42], SECRET, DOMAIN, NOW)
    token = token_part(address)
    assert parse(f"b+{token[:-cut]}@{DOMAIN}") is None
    assert parse(f"b+{token}{'a' * cut}@{DOMAIN}") is None


def test_wrong_secret_is_refused() -> None:
    address = make_return_path(QID, [42], b"someone-else", DOMAIN, NOW)
    assert parse(address) is None


def test_previous_secret_is_accepted_during_rotation() -> None:
    address = make_return_path(QID, [42], OLD, DOMAIN, NOW)
    token = parse(address, secrets=(SECRET, OLD))
    assert isinstance(token, ReturnPathToken)
    assert token.recipient_ids == (42,)
    assert parse(address, secrets=(SECRET,)) is None


def test_empty_secrets_never_verify() -> None:
    address = make_return_path(QID, [42], SECRET, DOMAIN, NOW)
    assert parse(address, secrets=()) is None
    assert parse(address, secrets=(b"",)) is None
    with pytest.raises(ValueError, match="secret"):
        make_return_path(QID, [42], b"", DOMAIN, NOW)


@pytest.mark.parametrize(
    ("age", "accepted"),
    [
        (timedelta(0), True),
        (timedelta(days=30), True),
        (timedelta(days=30, hours=9), True),  # issued 14:30 day 0; day-granular lifetime
        (timedelta(days=31), False),
        (timedelta(days=400), False),
        (timedelta(days=-1), True),  # a clock a day behind ours
        (timedelta(days=-2), False),  # issued in the future: refused
    ],
)
def test_expiry(age: timedelta, accepted: bool) -> None:
    address = make_return_path(QID, [42], SECRET, DOMAIN, NOW)
    assert (parse(address, now=NOW + age) is not None) is accepted


def test_forged_domain_is_refused() -> None:
    address = make_return_path(QID, [42], SECRET, DOMAIN, NOW)
    token = token_part(address)
    assert parse(f"b+{token}@evil.example") is None
    assert parse(f"b+{token}@sub.{DOMAIN}") is None
    # The domain is bound by the MAC too: a token made for another domain fails here.
    other = make_return_path(QID, [42], SECRET, "other.example", NOW)
    assert parse(f"b+{token_part(other)}@{DOMAIN}") is None


def test_custom_local_prefix() -> None:
    address = make_return_path(QID, [42], SECRET, DOMAIN, NOW, local="bounce")
    assert address.startswith("bounce+")
    assert parse(address) is not None


@pytest.mark.parametrize(
    "address",
    [
        "",
        "b@" + DOMAIN,
        "b+@" + DOMAIN,
        "b+aaaa@" + DOMAIN,
        "b+" + "a" * 300 + "@" + DOMAIN,
        "b+!!!!@" + DOMAIN,
        "no-at-sign",
        "@" + DOMAIN,
        "b+é@" + DOMAIN,
    ],
)
def test_malformed_addresses_are_refused(address: str) -> None:
    assert parse(address) is None


@pytest.mark.parametrize(
    ("queue_id", "ids", "local"),
    [
        ("", [1], "b"),
        ("a-b", [1], "b"),
        ("x" * 32, [1], "b"),
        ("ok", [], "b"),
        ("ok", [-1], "b"),
        ("ok", [2**63], "b"),
        ("ok", [1], "b+c"),
        ("ok", [1], ""),
    ],
)
def test_make_refuses_bad_input(queue_id: str, ids: list[int], local: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - several messages, one contract
        make_return_path(queue_id, ids, SECRET, DOMAIN, NOW, local=local)


@settings(max_examples=500)
@given(st.text(max_size=120))
def test_random_strings_never_parse_and_never_raise(text: str) -> None:
    assert parse(text) is None
    assert parse(f"b+{text}@{DOMAIN}") is None


@settings(max_examples=300)
@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz234567", min_size=50, max_size=70))
def test_random_tokens_in_the_alphabet_never_parse(token: str) -> None:
    assert parse(f"b+{token}@{DOMAIN}") is None


@settings(max_examples=200)
@given(
    st.text(
        alphabet="0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
        min_size=1,
        max_size=26,
    ),
    st.lists(st.integers(min_value=0, max_value=2**63 - 1), min_size=1, max_size=40),
)
def test_property_round_trip(queue_id: str, ids: list[int]) -> None:
    token = parse(make_return_path(queue_id, ids, SECRET, DOMAIN, NOW).upper())
    assert isinstance(token, ReturnPathToken)
    assert token.queue_id == queue_id
    if token.recipient_ids:
        assert token.recipient_ids == tuple(sorted(set(ids)))
    else:
        assert token.recipient_digest == recipient_set_digest(ids)


# --- unsubscribe tokens -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tenant", "address"),
    [("acme", "joe@example.com"), ("loja-ç", "José.Silva+tag@exemplo.com.br"), ("t", "")],
)
def test_unsubscribe_round_trip(tenant: str, address: str) -> None:
    token = make_unsubscribe_token(tenant, address, SECRET)
    assert token == token.lower()
    assert token.isalnum()  # safe in a URL path, a query and a mailto subject
    assert parse_unsubscribe_token(token, [SECRET]) == (tenant, address)
    assert parse_unsubscribe_token(token.upper(), [SECRET]) == (tenant, address)


def test_unsubscribe_rotation_and_wrong_secret() -> None:
    token = make_unsubscribe_token("acme", "joe@example.com", OLD)
    assert parse_unsubscribe_token(token, [SECRET, OLD]) == ("acme", "joe@example.com")
    assert parse_unsubscribe_token(token, [SECRET]) is None
    assert parse_unsubscribe_token(token, []) is None


def test_unsubscribe_tampering_is_refused() -> None:
    token = make_unsubscribe_token("acme", "joe@example.com", SECRET)
    for i in range(len(token)):
        forged = token[:i] + ("b" if token[i] != "b" else "c") + token[i + 1 :]
        assert parse_unsubscribe_token(forged, [SECRET]) is None


def test_a_return_path_token_is_not_an_unsubscribe_token() -> None:
    address = make_return_path(QID, [42], SECRET, DOMAIN, NOW)
    assert parse_unsubscribe_token(token_part(address), [SECRET]) is None


def test_unsubscribe_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="secret"):
        make_unsubscribe_token("acme", "joe@example.com", b"")
    with pytest.raises(ValueError, match="NUL"):
        make_unsubscribe_token("ac\x00me", "joe@example.com", SECRET)


@settings(max_examples=300)
@given(st.text(max_size=200))
def test_random_unsubscribe_tokens_never_parse_and_never_raise(text: str) -> None:
    assert parse_unsubscribe_token(text, [SECRET]) is None
