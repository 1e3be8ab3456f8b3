"""The recipient API's ``provider_hold`` object (issue 12 item 4).

Owns: :class:`ProviderHold`, a provider holding the message until the sender answers its
challenge (UOL, BOL, Terra anti-spam). Its own module so ``response_models`` stays small;
``response_models`` re-exports it.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

_Time = Annotated[str, Meta(extra_json_schema={"format": "date-time"})]


class ProviderHold(msgspec.Struct, kw_only=True):
    """A provider holding the message until the sender answers its challenge (issue 12)."""

    provider: Annotated[str, Meta(description="The provider's key: uol, bol or terra")]
    provider_name: str
    challenge_url: Annotated[
        str | None,
        Meta(description="The link the provider's report gives the sender; null when none"),
    ]
    what_to_do: str
    since: _Time
