"""Messages encoded by protocol version 1 clients still decode with today's schemas."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from schemas.sync import (
    AmendOp,
    CheckinOp,
    NoteDeleteOp,
    NoteEditOp,
    PushItem,
    PushRequest,
    SyncConfig,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "protocol_v1"


@pytest.mark.parametrize("name", ["push.json", "push.msgpack"])
def test_v1_push_decodes(name: str) -> None:
    data = (FIXTURES / name).read_bytes()
    module = msgspec.json if name.endswith(".json") else msgspec.msgpack
    request = module.decode(data, type=PushRequest)
    items = [module.decode(raw, type=PushItem) for raw in request.items]
    assert [type(i) for i in items] == [CheckinOp, AmendOp, NoteEditOp, NoteDeleteOp]
    checkin, amend, note, delete = items
    assert isinstance(checkin, CheckinOp) and checkin.elapsed_ms == 14_400_000
    assert checkin.route is not None and checkin.route.inside_share == 0.93
    assert isinstance(amend, AmendOp) and amend.amends == checkin.id
    assert isinstance(note, NoteEditOp) and note.fields.needs == "微心愿：希望楼道加装扶手"
    assert note.fields.follow_up is True and note.fields.tags == ["elderly", "living_alone"]
    assert isinstance(delete, NoteDeleteOp) and delete.base is not None


def test_a_handshake_from_a_server_without_its_version_decodes() -> None:
    """A server older than ``server_version`` sent this reply; today's clients still read it."""
    config = msgspec.json.decode((FIXTURES / "config.json").read_bytes(), type=SyncConfig)
    assert config.server_version == ""
    assert config.protocol_versions == [1] and config.limits.max_push_items == 1000
