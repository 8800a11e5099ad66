"""The signatures of docs/alerts.md §13: the worker's headers, a Standard Webhooks library and
the documented receiver agree on the documented example."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from standardwebhooks import Webhook

from worker import webhooks

DOCS = (Path(__file__).parents[2] / "docs" / "alerts.md").read_text()


def _example() -> tuple[str, dict[str, str], bytes]:
    section = DOCS[DOCS.index("### What is sent") :]
    start = section.index("```http\n") + 8
    block = section[start : section.index("\n```", start)]
    head, _, body = block.partition("\n\n")
    headers = dict(line.split(": ", 1) for line in head.splitlines()[1:])
    secret = re.search(r'"secret": "(whsec_[^"]+)"', DOCS)
    assert secret is not None
    return secret.group(1), headers, body.encode()


def test_the_documented_example_is_what_the_worker_sends() -> None:
    secret, shown, body = _example()
    made = webhooks.headers_for(secret, shown["webhook-id"], int(shown["webhook-timestamp"]), body)
    for name in ("webhook-id", "webhook-timestamp", "webhook-signature", "Patrolsync-Signature"):
        assert made[name] == shown[name], name
    assert made["Idempotency-Key"] == shown["webhook-id"]
    # An independent check: the library's own signing, with the secret as it is.
    at = datetime.fromtimestamp(int(shown["webhook-timestamp"]), tz=UTC)
    assert (
        Webhook(secret).sign(shown["webhook-id"], at, body.decode()) == shown["webhook-signature"]
    )


def test_the_documented_receiver_accepts_it_and_refuses_replays() -> None:
    secret, shown, body = _example()
    code = re.search(r"### A receiver in Python\n\n```python\n(.*?)```", DOCS, re.S)
    assert code is not None
    receiver: dict[str, Any] = {}
    exec(compile(code.group(1), "alerts.md", "exec"), receiver)
    assert receiver["SECRET"] == secret
    sent = int(shown["webhook-timestamp"])
    seen: set[str] = set()
    assert receiver["handle"](shown, body, seen, now=sent + 2) == 204 and seen == {"1:41"}
    assert receiver["handle"](shown, body, set(), now=sent + 301) == 400
    moved = {**shown, "webhook-timestamp": str(sent + 300)}
    assert receiver["handle"](moved, body, set(), now=sent + 301) == 401
    assert receiver["handle"](shown, body.replace(b"opened", b"closed"), set(), now=sent) == 401
