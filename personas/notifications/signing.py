"""Standard Webhooks signatures: `webhook-signature: v1,<base64 HMAC-SHA256 of
"id.timestamp.body">` keyed with the base64-decoded part of the `whsec_` secret."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from standardwebhooks import Webhook


def headers(message_id: str, moment: datetime, body: str, secrets: Sequence[str]) -> dict[str, str]:
    """The headers of one attempt: its id, its time, and a signature per secret (the
    current one first; during a rotation the previous one too)."""
    signatures = [Webhook(secret).sign(message_id, moment, body) for secret in secrets]
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": " ".join(signatures),
        "content-type": "application/json",
    }
