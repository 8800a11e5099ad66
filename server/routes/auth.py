"""Enrolment of devices, codes issued by supervisors, revocation."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, post
from litestar.di import NamedDependency, Provide

from schemas.sync import (
    EnrolmentCodeRequest,
    EnrolmentCodeResponse,
    EnrolRequest,
    EnrolResponse,
    Revoked,
)
from server import enrolment, wire
from server.errors import Code
from server.openapi import AUTH, BODY, DB, PARAMS, negotiated
from server.params import DeviceId
from server.routes.deps import SUPERVISOR, Svc, Who, body, provide_services, requires_supervisor
from server.state import client_address
from server.tx import transaction


@post(
    "/v1/auth/enrol",
    operation_id="enrol",
    summary="Exchange a one-time enrolment code for a device token",
    operation_class=negotiated(body=EnrolRequest, errors=(409, 429, *BODY, *DB)),
    dependencies={
        "svc": Provide(provide_services, sync_to_thread=False),
        "ask": body(EnrolRequest),
    },
    response_class=wire.Negotiated,
)
async def enrol(
    request: Request[Any, Any, Any], svc: Svc, ask: NamedDependency[EnrolRequest]
) -> EnrolResponse:
    now = svc.clock()
    with svc.enrol_guard.attempt(client_address(request), now, Code.ENROLMENT_INVALID):
        return await transaction(
            svc.engine,
            lambda c: enrolment.enrol(c, ask.code, ask.device_id, ask.platform, now),
        )


class EnrolmentController(Controller):
    """What supervisors do with devices: issue enrolment codes, revoke."""

    path = "/v1"
    guards = (requires_supervisor,)
    dependencies = SUPERVISOR
    response_class = wire.Negotiated

    @post(
        "/enrolments",
        operation_id="issueEnrolmentCode",
        summary="A supervisor issues a one-time enrolment code for a worker",
        operation_class=negotiated(body=EnrolmentCodeRequest, errors=(404, *BODY, *AUTH, *DB)),
        dependencies={"ask": body(EnrolmentCodeRequest)},
    )
    async def issue_code(
        self, who: Who, svc: Svc, ask: NamedDependency[EnrolmentCodeRequest]
    ) -> EnrolmentCodeResponse:
        return await transaction(
            svc.engine,
            lambda c: enrolment.issue_code(c, who, ask.worker_id, ask.ttl_s, svc.clock()),
        )

    @post(
        "/devices/{device_id:str}/revoke",
        operation_id="revokeDevice",
        summary="Revoke a device and its tokens",
        status_code=200,
        operation_class=negotiated(errors=(404, *AUTH, *PARAMS, *DB)),
    )
    async def revoke(self, who: Who, svc: Svc, device_id: DeviceId) -> Revoked:
        await transaction(
            svc.engine, lambda c: enrolment.revoke_device(c, who, device_id, svc.clock())
        )
        return Revoked(device_id=device_id, revoked=True)
