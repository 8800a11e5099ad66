"""Enrolment of devices, codes issued by supervisors, revocation."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, post

from schemas.sync import EnrolmentCodeRequest, EnrolmentCodeResponse, EnrolRequest, EnrolResponse
from server import enrolment, wire
from server.errors import Code
from server.openapi import AUTH, BODY, DB, PARAMS, Revoked, documented
from server.params import DeviceId
from server.state import client_address, principal, services
from server.tx import transaction


@post(
    "/v1/auth/enrol",
    summary="Exchange a one-time enrolment code for a device token",
    operation_class=documented(EnrolRequest, EnrolResponse, 201, errors=(409, 429, *BODY, *DB)),
)
async def enrol(request: Request[Any, Any, Any]) -> Response[bytes]:
    svc = services(request)
    data = await wire.read_body(request, EnrolRequest, timeout_s=svc.settings.body_timeout_s)
    now = svc.clock()
    with svc.enrol_guard.attempt(client_address(request), now, Code.ENROLMENT_INVALID):
        reply = await transaction(
            svc.engine,
            lambda c: enrolment.enrol(c, data.code, data.device_id, data.platform, now),
        )
    return wire.respond(request, reply, 201)


@post(
    "/v1/enrolments",
    summary="A supervisor issues a one-time enrolment code for a worker",
    operation_class=documented(
        EnrolmentCodeRequest, EnrolmentCodeResponse, 201, errors=(404, *BODY, *AUTH, *DB)
    ),
)
async def issue_code(request: Request[Any, Any, Any]) -> Response[bytes]:
    svc = services(request)
    who = await principal(request)
    data = await wire.read_body(
        request, EnrolmentCodeRequest, timeout_s=svc.settings.body_timeout_s
    )
    reply = await transaction(
        svc.engine,
        lambda c: enrolment.issue_code(c, who, data.worker_id, data.ttl_s, svc.clock()),
    )
    return wire.respond(request, reply, 201)


@post(
    "/v1/devices/{device_id:str}/revoke",
    summary="Revoke a device and its tokens",
    status_code=200,
    operation_class=documented(None, Revoked, errors=(404, *AUTH, *PARAMS, *DB)),
)
async def revoke(request: Request[Any, Any, Any], device_id: DeviceId) -> Response[bytes]:
    svc = services(request)
    who = await principal(request)
    await transaction(svc.engine, lambda c: enrolment.revoke_device(c, who, device_id, svc.clock()))
    return wire.respond(request, {"device_id": device_id, "revoked": True})
