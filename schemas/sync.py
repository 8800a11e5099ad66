"""Push, pull and handshake messages of sync protocol version 1."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from schemas.errors import ItemCode
from schemas.text import NO_CONTROL, Id, Label

PROTOCOL_VERSIONS = (1,)
"""Protocol versions this build speaks, oldest first."""

RefId = Annotated[str, Meta(min_length=1, max_length=64)]
Ms = Annotated[int, Meta(ge=0, le=10**14)]
Count = Annotated[int, Meta(ge=0, le=100_000)]
Clock = Annotated[str, Meta(min_length=23, max_length=100)]
MAX_NESTING = 64
"""Arrays and maps a push body may nest, the envelope counted (the protocol's own need 5)."""


# ---------------------------------------------------------------- push items (tagged union "op")


class Route(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Optional summary of a patrol's GPS track, computed on the device.

    Every number has both bounds: NaN fails any bound and ±inf one of them, so no stored number
    is non-finite, and none is too large to come back as the same number in every format.
    """

    points: Count = 0
    distance_m: Annotated[float, Meta(ge=0, le=1_000_000)] = 0.0
    inside_share: Annotated[float, Meta(ge=0, le=1)] | None = None
    max_speed_mps: Annotated[float, Meta(ge=0, le=1_000_000)] | None = None
    mock_location: bool = False


class CheckinBody(msgspec.Struct, kw_only=True, omit_defaults=True):
    grid_id: RefId
    started_ms: Ms
    ended_ms: Ms
    elapsed_ms: int | None = None
    """Monotonic elapsed time of the patrol (e.g. elapsedRealtime), trusted over the wall."""
    boot_id: Annotated[str, Meta(max_length=128)] | None = None
    visit_count: Count = 0
    households: list[RefId] = msgspec.field(default_factory=list)
    route: Route | None = None
    worker_id: RefId | None = None
    """Optional; when present it must be the token's worker."""


class CheckinOp(CheckinBody, tag="checkin", tag_field="op", kw_only=True, omit_defaults=True):
    """A finished patrol round. A fact: never overwritten, only amended."""

    id: uuid.UUID


class AmendOp(CheckinBody, tag="amend", tag_field="op", kw_only=True, omit_defaults=True):
    """A correction of a check-in: a full replacement of its body, itself a new record."""

    id: uuid.UUID
    amends: uuid.UUID
    clock: Clock
    reason: Annotated[str, Meta(max_length=500)] = ""


VisitMethod = Literal["in_person", "phone", "video"]
VisitOutcome = Literal["met", "not_home", "refused"]


class NoteFields(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The editable fields of a household visit note; an edit carries only the fields it sets."""

    visited_ms: Ms | UnsetType = UNSET
    method: VisitMethod | UnsetType = UNSET
    outcome: VisitOutcome | UnsetType = UNSET
    text: Annotated[str, Meta(max_length=20_000)] | UnsetType = UNSET
    needs: Annotated[str, Meta(max_length=5_000)] | UnsetType = UNSET
    follow_up: bool | UnsetType = UNSET
    tags: list[Annotated[str, Meta(max_length=64)]] | UnsetType = UNSET
    photos: list[Annotated[str, Meta(max_length=128)]] | UnsetType = UNSET


class NoteEditOp(msgspec.Struct, tag="note", tag_field="op", kw_only=True, omit_defaults=True):
    """An edit of some fields of a visit note (the first edit of a note creates it)."""

    note_id: uuid.UUID
    household_id: RefId
    clock: Clock
    fields: NoteFields
    base: dict[str, Clock] = msgspec.field(default_factory=dict)
    """For each edited field, the clock of the value the device saw when it edited (if any)."""


class NoteDeleteOp(msgspec.Struct, tag="note_delete", tag_field="op", kw_only=True):
    note_id: uuid.UUID
    household_id: RefId
    clock: Clock
    base: Clock | None = None
    """The greatest clock of the note the deleting device knew."""


PushItem = CheckinOp | AmendOp | NoteEditOp | NoteDeleteOp


class PushRequest(msgspec.Struct, kw_only=True):
    push_id: uuid.UUID
    device_time_ms: Ms
    """The device's wall clock when it sent the push; the server measures skew with it."""
    items: list[msgspec.Raw]
    """Each item is decoded on its own, so one malformed item cannot sink its neighbours."""
    complete: bool = True
    """False when the device's outbox holds more than this push carries. Only a complete push
    moves the device's watermark (the quota's final verdict waits for it)."""


class PushRequestDoc(msgspec.Struct, kw_only=True):
    """The push request as documented (items typed); the server decodes items one by one."""

    push_id: uuid.UUID
    device_time_ms: Ms
    items: list[PushItem]
    complete: bool = True


ItemStatus = Literal["applied", "duplicate", "merged", "rejected"]


class ItemResult(msgspec.Struct, kw_only=True, omit_defaults=True):
    index: int
    status: ItemStatus
    id: uuid.UUID | None = None
    """The record's id (a check-in's, or a note's); absent for an item that did not decode."""
    code: ItemCode | None = None
    """Why the item was rejected (``status: rejected`` only)."""
    reason: str | None = None
    record: NoteRecord | None = None
    """The note after the merge (``status: merged`` only), as a pull gives it."""
    flags: list[str] = msgspec.field(default_factory=list)


class PushResponse(msgspec.Struct, kw_only=True):
    push_id: uuid.UUID
    results: list[ItemResult]
    server_time_ms: int
    skew_ms: int
    replayed: bool = False


# ---------------------------------------------------------------- pull


class CheckinRecord(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    worker_id: str
    device_id: str
    grid_id: str
    started_ms: int
    ended_ms: int
    device_started_ms: int
    device_ended_ms: int
    duration_ms: int
    duration_source: str
    visit_count: int
    households: list[str]
    route: Route | None = None
    flags: list[str] = msgspec.field(default_factory=list)
    amends: uuid.UUID | None = None
    root_id: uuid.UUID | None = None
    clock: str | None = None
    reason: str = ""
    """An amendment's stated reason."""
    received_ms: int = 0


class Alternative(msgspec.Struct, kw_only=True):
    value: Any
    clock: str
    device_id: str
    worker_id: str


class NoteRecord(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    household_id: str
    grid_id: str
    author_id: str
    """The worker whose edit created the note on the server (the first edit of this note id
    the server stored). Set once: no later edit changes it, whatever its clock; field values
    merge by clock, authorship does not."""
    fields: dict[str, Any]
    clocks: dict[str, str]
    alternatives: dict[str, list[Alternative]] = msgspec.field(default_factory=dict)
    deleted: bool = False
    version: str = ""


class HouseholdRecord(msgspec.Struct, kw_only=True):
    id: str
    grid_id: str
    building_id: str | None = None
    address: str = ""
    head_name: str = ""
    tags: list[str] = msgspec.field(default_factory=list)
    care_tier: str = "general"


class ConflictRecord(msgspec.Struct, kw_only=True):
    id: str
    note_id: uuid.UUID
    field: str
    reason: str
    losing_value: Any
    losing_clock: str
    losing_device_id: str
    winning_value: Any = None
    winning_clock: str | None = None


class CheckinChange(msgspec.Struct, tag="checkin", tag_field="type", kw_only=True):
    seq: int
    """The change's number within its transaction: informational; resume with the cursor."""
    record: CheckinRecord


class NoteChange(msgspec.Struct, tag="note", tag_field="type", kw_only=True):
    """A note's current state; ``record.deleted`` marks a tombstone."""

    seq: int
    """The change's number within its transaction: informational; resume with the cursor."""
    record: NoteRecord


class HouseholdChange(msgspec.Struct, tag="household", tag_field="type", kw_only=True):
    seq: int
    """The change's number within its transaction: informational; resume with the cursor."""
    record: HouseholdRecord


class ConflictChange(msgspec.Struct, tag="conflict", tag_field="type", kw_only=True):
    seq: int
    """The change's number within its transaction: informational; resume with the cursor."""
    record: ConflictRecord


Change = CheckinChange | NoteChange | HouseholdChange | ConflictChange


class PullResponse(msgspec.Struct, kw_only=True):
    changes: list[Change]
    cursor: str
    more: bool
    server_time_ms: int


# ---------------------------------------------------------------- handshake and auth


class Limits(msgspec.Struct, kw_only=True):
    max_push_items: int
    max_push_bytes: int
    max_pull_limit: int
    default_pull_limit: int
    max_inflight_pushes: int
    body_timeout_s: float = 30.0
    """Seconds a push body has to arrive whole once the server starts reading it (then 408)."""
    max_pull_wait_s: int = 0
    """The longest ``wait`` a pull may ask for (live pull); 0 from a server without it."""


class SyncConfig(msgspec.Struct, kw_only=True):
    server_time_ms: int
    protocol_versions: list[int]
    protocol_header: str
    limits: Limits
    media_types: list[str]
    server_version: str = ""
    """The server's version (``patrolsync --version``), for support and logs; empty from a
    server older than the field. Clients never branch on it: ``protocol_versions`` is the
    contract."""


DeviceId = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+\Z")]
"""Printable ASCII without spaces: it is the node of the device's clocks, compared bytewise."""


class EnrolRequest(msgspec.Struct, kw_only=True):
    code: Annotated[str, Meta(min_length=4, max_length=64, pattern=NO_CONTROL)]
    device_id: DeviceId
    platform: Label = ""


class EnrolResponse(msgspec.Struct, kw_only=True):
    token: str
    worker_id: str
    device_id: str
    grids: list[str]


class EnrolmentCodeRequest(msgspec.Struct, kw_only=True):
    worker_id: Id
    ttl_s: Annotated[int, Meta(ge=60, le=30 * 86400)] = 7 * 86400


class EnrolmentCodeResponse(msgspec.Struct, kw_only=True):
    code: str
    worker_id: str
    expires_ms: int


class Revoked(msgspec.Struct, kw_only=True):
    """The reply of ``POST /v1/devices/{device_id}/revoke``."""

    device_id: str
    revoked: bool
