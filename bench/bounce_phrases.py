"""Generated scenarios: every failure phrase Sisimai's reason modules know, classified by us.

Sisimai (Debian's ``libsisimai-perl``, BSD-2-Clause) decides a bounce's reason by matching its
text against a list of phrases per reason (``Sisimai/Reason/*.pm``: plain ``$index`` lists and
``$regex`` alternations), and each MTA's and provider's module lists its own words per reason
(``Sisimai/Lhost/*.pm``, ``Sisimai/Rhost/*.pm``: ``$messagesof``; scored as a second set).
Those lists are twenty years of "how servers say it" gathered from real bounces, by people
who are not us. This script turns each list into sample texts (each plain phrase as is; each
regex expanded so that every alternative appears at least once, with ``x`` for a wildcard),
maps the reason to our category with the corpus README's table, and classifies each text as
the remote server's words in a bare ``550`` reply, without an enhanced
status code: only the words can decide.

It scores ``category7`` (the seven categories support sees): Sisimai 4.25 files PTR, SPF and
relay refusals under ``blocked`` where our table has ``sender_config``, and both fold into
``spam_blocked`` there. ``filtered`` phrases are kept in the table but expected to disagree:
our evidence rules answer a recipient's filter with ``spam_blocked`` (nothing says the mailbox
is missing), the label table with ``nonexistent_address``.

Usage::

    python bench/bounce_phrases.py [--misses]           # score (needs tests/data/sisimai_phrases)
    python bench/bounce_phrases.py --write [--perl5 DIR] # regenerate the phrase file from
                                                          # Debian's libsisimai-perl (not CI)

The generated phrases are committed in ``tests/data/sisimai_phrases/phrases.jsonl`` with
Sisimai's licence, so a clone scores them without Perl; ``tests/bounce/test_bounce_phrases.py``
reads them.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path
from re import _constants as sre_constants  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.bounce.classify import decide
from gateway.bounce.rules_file import default_rules
from gateway.core.model import Category

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "sisimai_phrases"
PERL5 = Path("/usr/share/perl5/Sisimai/Reason")
# The corpus README's table (tests/data/bounce-corpus/README.md), Sisimai reason -> category.
CATEGORY_OF = {
    reason: category
    for category, reasons in {
        "nonexistent_address": "userunknown hostunknown hasmoved notaccept filtered",
        "mailbox_disabled": "suspend",
        "mailbox_full": "mailboxfull",
        "message_too_large": "mesgtoobig exceedlimit emailtoolarge",
        "spam_blocked": "blocked spamdetected badreputation policyviolation virusdetected rejected",
        "sender_config": (
            "authfailure requireptr norelaying securityerror failedstarttls notcompliantrfc "
            "contenterror"
        ),
        "receiving_problem": (
            "systemerror systemfull networkerror expired toomanyconn speeding mailererror "
            "syntaxerror onhold undefined"
        ),
    }.items()
    for reason in reasons.split()
}
_STRING = re.compile(r"'((?:[^'\\]|\\.)*)'|\"((?:[^\"\\]|\\.)*)\"|#[^\n]*")
_WILDCARD = "x"


def read_module(path: Path) -> tuple[list[str], list[str]]:
    """Return the plain phrases and the regex sources of one ``Sisimai/Reason/*.pm``."""
    source = path.read_text(encoding="utf-8")
    phrases: list[str] = []
    for block in re.finditer(r"state \$index = \[(.*?)\];", source, re.S):
        for token in _STRING.finditer(block.group(1)):
            if not token.group(0).startswith("#"):
                phrases.append(token.group(1) if token.group(1) is not None else token.group(2))
    regexes = []
    for block in re.finditer(r"state \$regex = qr(?:\{|/)(.*?)(?:\}x?|/x?);", source, re.S):
        body = re.sub(r"\s#[^\n]*", "", block.group(1)).replace("\\z", "$")
        # /x: white space is ignored outside character classes, kept inside them.
        body = re.sub(r"\[[^\]]*\]", lambda m: m.group(0).replace(" ", "\\x20"), body)
        regexes.append(re.sub(r"\s+", "", body))
    return phrases, regexes


def _one_char(items: list[tuple[object, object]]) -> str:
    """A character a class ``[...]`` matches (a wildcard for a negated one)."""
    for op, value in items:
        if op is sre_constants.NEGATE:
            return _WILDCARD
        if op is sre_constants.LITERAL:
            return chr(value)  # type: ignore[arg-type]
        if op is sre_constants.RANGE:
            return chr(value[0])  # type: ignore[index]
        if op is sre_constants.CATEGORY:
            return _category_char(value)
    return _WILDCARD


def _category_char(value: object) -> str:
    if value is sre_constants.CATEGORY_DIGIT:
        return "1"
    if value is sre_constants.CATEGORY_SPACE:
        return " "
    return _WILDCARD


def expand(items: object) -> list[str]:
    """Texts a parsed regex matches, every alternative of every branch at least once.

    Branches are not multiplied out (that grows exponentially): the i-th text takes the
    i-th alternative of each part, cycling the shorter lists.
    """
    out = [""]
    for op, value in items:  # type: ignore[attr-defined]
        if op is sre_constants.LITERAL:
            alternatives = [chr(value)]
        elif op in (sre_constants.NOT_LITERAL, sre_constants.ANY):
            alternatives = [_WILDCARD]
        elif op is sre_constants.IN:
            alternatives = [_one_char(value)]
        elif op is sre_constants.CATEGORY:
            alternatives = [_category_char(value)]
        elif op is sre_constants.BRANCH:
            alternatives = [text for branch in value[1] for text in expand(branch)]
        elif op is sre_constants.SUBPATTERN:
            alternatives = expand(value[-1])
        elif op is sre_constants.ATOMIC_GROUP:
            alternatives = expand(value)
        elif op in (
            sre_constants.MAX_REPEAT,
            sre_constants.MIN_REPEAT,
            sre_constants.POSSESSIVE_REPEAT,
        ):
            low, _, sub = value
            alternatives = [text * max(low, 1) if low else text for text in expand(sub)]
        else:  # anchors, back references
            alternatives = [""]
        width = max(len(out), len(alternatives))
        out = [out[i % len(out)] + alternatives[i % len(alternatives)] for i in range(width)]
    return out


def _messagesof(source: str) -> list[tuple[str, str]]:
    """(reason, text) pairs of an ``Lhost``/``Rhost`` module's ``$messagesof`` table: the words
    one MTA or provider uses for each reason."""
    pairs = []
    for start in re.finditer(r"\$messagesof\s*=\s*\{", source):
        depth, body = 0, ""
        for end in range(start.end() - 1, len(source)):
            depth += {"{": 1, "}": -1}.get(source[end], 0)
            if depth == 0:
                body = source[start.end() : end]
                break
        for entry in re.finditer(r"'(\w+)'\s*=>\s*\[(.*?)\]", body, re.S):
            for token in _STRING.finditer(entry.group(2)):
                text = token.group(1) if token.group(1) is not None else token.group(2)
                # Skip comments and the bare numeric codes some provider tables list.
                if text and len(text) >= 6 and not text.isdigit():
                    pairs.append((entry.group(1).lower(), text))
    return pairs


def generate(perl5: Path) -> list[dict[str, str]]:
    """Phrase rows from a ``Sisimai/Reason`` folder and its sibling ``Lhost``/``Rhost``
    folders (each MTA's and provider's own words), for the reasons the label table maps."""
    rows = []
    for folder in ("Lhost", "Rhost"):
        for module in sorted((perl5.parent / folder).glob("*.pm")):
            for reason, text in _messagesof(module.read_text(encoding="utf-8", errors="replace")):
                if reason in CATEGORY_OF:
                    rows.append(
                        {
                            "module": f"{folder}/{module.stem}",
                            "reason": reason,
                            "category": CATEGORY_OF[reason],
                            "text": " ".join(text.split()),
                        }
                    )
    for module in sorted(perl5.glob("*.pm")):
        reason = module.stem.lower()
        if reason not in CATEGORY_OF:
            continue  # vacation, feedback, delivered, onhold: not a reply text
        phrases, regexes = read_module(module)
        texts = list(phrases)
        for rx in regexes:
            texts.extend(expand(sre_parse.parse(rx)))
        seen = set()
        for raw in texts:
            text = " ".join(raw.split())
            if text and text not in seen:
                seen.add(text)
                rows.append(
                    {
                        "module": f"Reason/{module.stem}",
                        "reason": reason,
                        "category": CATEGORY_OF[reason],
                        "text": text,
                    }
                )
    return rows


def load() -> list[dict[str, str]]:
    """Read the committed phrase rows."""
    with (DATA / "phrases.jsonl").open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def classify(text: str) -> Category:
    """Our category for ``text`` as the words of a bare 550 reply."""
    return decide(default_rules(), reply_code=550, status=None, diagnostic=f"550 {text}")


def score(rows: list[dict[str, str]]) -> tuple[Counter[str], Counter[str], list[tuple[str, str]]]:
    """Return (rows per reason, agreements per reason, misses as (reason, text))."""
    total: Counter[str] = Counter()
    agree: Counter[str] = Counter()
    misses = []
    for row in rows:
        got = classify(row["text"])
        total[row["reason"]] += 1
        if got.category7 == Category(row["category"]).category7:
            agree[row["reason"]] += 1
        else:
            misses.append((row["reason"], f"{got.value:<20} {row['text']}"))
    return total, agree, misses


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="regenerate the phrase file")
    parser.add_argument("--perl5", type=Path, default=PERL5, help="Sisimai/Reason folder")
    parser.add_argument("--misses", action="store_true", help="list every disagreement")
    args = parser.parse_args(argv)
    if args.write:
        if not args.perl5.is_dir():
            print(f"{args.perl5} not found: apt-get install libsisimai-perl", file=sys.stderr)
            return 2
        rows = generate(args.perl5)
        DATA.mkdir(parents=True, exist_ok=True)
        with (DATA / "phrases.jsonl").open("w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        print(f"wrote {len(rows)} phrases to {DATA / 'phrases.jsonl'}")
        return 0
    every = load()
    vendors = [row for row in every if not row["module"].startswith("Reason/")]
    _, vendor_agree, vendor_misses = score(vendors)
    rows = [row for row in every if row["module"].startswith("Reason/")]
    total, agree, misses = score(rows)
    false_nonexistent = [
        row["text"]
        for row in rows
        if row["category"] != "nonexistent_address"
        and classify(row["text"]) is Category.NONEXISTENT_ADDRESS
    ]
    print(f"{'reason':<17}{'category':<22}{'agree':>6}{'of':>5}")
    for reason in sorted(total):
        print(f"{reason:<17}{CATEGORY_OF[reason]:<22}{agree[reason]:>6}{total[reason]:>5}")
    kept = [r for r in total if r != "filtered"]
    print(
        f"all: {sum(agree.values())}/{sum(total.values())} agree on category7; without "
        f"'filtered' (answered spam_blocked on purpose): "
        f"{sum(agree[r] for r in kept)}/{sum(total[r] for r in kept)}"
    )
    print(f"nonexistent_address given to another reason's phrase: {len(false_nonexistent)}")
    for text in false_nonexistent:
        print(f"    {text}")
    print(
        f"Lhost/Rhost modules (each MTA's and provider's own words): "
        f"{sum(vendor_agree.values())}/{len(vendors)} agree on category7"
    )
    if args.misses:
        for reason, line in vendor_misses:
            print(f"   {reason:<16}{line}")
    if args.misses:
        by_reason: dict[str, list[str]] = defaultdict(list)
        for reason, line in misses:
            by_reason[reason].append(line)
        for reason, lines in sorted(by_reason.items()):
            print(f"== {reason} (want {CATEGORY_OF[reason]})")
            for line in lines:
                print(f"   {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
