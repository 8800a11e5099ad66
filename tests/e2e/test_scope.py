"""Who may write and see what: workers in their grids, supervisors in their subtree."""

from __future__ import annotations

from tests.support import PROTOCOL, Fleet, new_id


async def test_worker_writes_only_into_own_grids_as_self(fleet: Fleet) -> None:
    zhang = await fleet.device("w-zhang")
    reply = await zhang.push(
        [
            zhang.checkin("xinhua-g2"),  # wang's grid, not zhang's
            zhang.checkin("xinhua-g1", worker_id="w-wang"),
            zhang.note(new_id(), "h-xh-301", {"text": "不是我的网格"}),
        ]
    )
    assert [r["code"] for r in reply["results"]] == [
        "forbidden_grid",
        "forbidden_worker",
        "forbidden_grid",
    ]


async def test_worker_pulls_only_own_checkins_and_own_grids(fleet: Fleet) -> None:
    zhang = await fleet.device("w-zhang")
    wang = await fleet.device("w-wang")
    li = await fleet.device("w-li")
    await zhang.push([zhang.checkin("xinhua-g1"), zhang.note(new_id(), "h-xh-101", {"text": "甲"})])
    await wang.push([wang.checkin("xinhua-g1"), wang.note(new_id(), "h-xh-301", {"text": "乙"})])
    await li.push([li.checkin("qunzhong-g1"), li.note(new_id(), "h-qz-101", {"text": "丙"})])

    changes, _ = await zhang.pull_all()
    checkins = [c["record"] for c in changes if c["type"] == "checkin"]
    assert {c["worker_id"] for c in checkins} == {"w-zhang"}
    notes = [c["record"] for c in changes if c["type"] == "note"]
    assert {n["grid_id"] for n in notes} == {"xinhua-g1"}
    households = {c["record"]["id"] for c in changes if c["type"] == "household"}
    assert households == {"h-xh-101", "h-xh-102", "h-xh-201"}

    wang_changes, _ = await wang.pull_all()
    wang_notes = {c["record"]["grid_id"] for c in wang_changes if c["type"] == "note"}
    assert wang_notes == {"xinhua-g1", "xinhua-g2"}


async def test_supervisor_sees_only_subtree(fleet: Fleet) -> None:
    zhang = await fleet.device("w-zhang")
    li = await fleet.device("w-li")
    await zhang.push([zhang.checkin("xinhua-g1")])
    await li.push([li.checkin("qunzhong-g1")])
    for supervisor, grids in [
        ("s-xinhua", {"xinhua-g1"}),
        ("s-qunzhong", {"qunzhong-g1"}),
        ("s-dongfeng", {"xinhua-g1", "qunzhong-g1"}),
    ]:
        headers = await fleet.supervisor(supervisor)
        page = (await fleet.client.get("/v1/sync/pull", headers=headers)).json()
        seen = {c["record"]["grid_id"] for c in page["changes"] if c["type"] == "checkin"}
        assert seen == grids, supervisor
    xinhua = await fleet.supervisor("s-xinhua")
    inside = await fleet.client.get("/v1/units/xinhua-g1", headers=xinhua)
    assert inside.status_code == 200
    outside = await fleet.client.get("/v1/units/qunzhong-g1", headers=xinhua)
    assert outside.status_code == 404
    # A supervisor cannot enrol a worker of another community, nor push.
    denied = await fleet.client.post("/v1/enrolments", json={"worker_id": "w-li"}, headers=xinhua)
    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "forbidden"
    allowed = await fleet.client.post(
        "/v1/enrolments", json={"worker_id": "w-zhang"}, headers=xinhua
    )
    assert allowed.status_code == 201
    push = await fleet.post(
        "/v1/sync/push", {"push_id": str(new_id()), "device_time_ms": 1, "items": []}, xinhua
    )
    assert push.status_code == 403


async def test_revoked_token_is_refused(fleet: Fleet) -> None:
    zhang = await fleet.device("w-zhang")
    await zhang.push([zhang.checkin("xinhua-g1")])
    xinhua = await fleet.supervisor("s-xinhua")
    revoked = await fleet.client.post(f"/v1/devices/{zhang.device_id}/revoke", headers=xinhua)
    assert revoked.status_code == 200
    for response in [
        await fleet.client.get("/v1/sync/pull", headers=zhang.headers),
        await fleet.post(
            "/v1/sync/push",
            {"push_id": str(new_id()), "device_time_ms": 1, "items": [zhang.checkin("xinhua-g1")]},
            zhang.headers,
        ),
    ]:
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "token_revoked"
    unknown = await fleet.client.get(
        "/v1/sync/pull", headers={**PROTOCOL, "Authorization": "Bearer nope"}
    )
    assert unknown.status_code == 401
    assert unknown.json()["error"]["code"] == "unauthorized"
    missing = await fleet.client.get("/v1/sync/pull", headers=PROTOCOL)
    assert missing.status_code == 401


async def test_enrolment_code_is_one_time(fleet: Fleet) -> None:
    code = await fleet.code("w-zhang")
    first = await fleet.client.post("/v1/auth/enrol", json={"code": code, "device_id": "d1"})
    assert first.status_code == 201
    again = await fleet.client.post("/v1/auth/enrol", json={"code": code, "device_id": "d2"})
    assert again.status_code == 400
    assert again.json()["error"]["code"] == "enrolment_invalid"
    # A token is stored only as a hash: the plain token appears nowhere in the database.
    token = first.json()["token"]
    async with fleet.services.engine.connect() as conn:
        from sqlalchemy import text

        hashes = (await conn.execute(text("SELECT token_hash FROM api_token"))).scalars().all()
    assert token not in hashes and len(hashes) == 1


async def test_token_of_inactive_worker_is_refused(fleet: Fleet) -> None:
    from sqlalchemy import text

    zhang = await fleet.device("w-zhang")
    async with fleet.services.engine.begin() as conn:
        await conn.execute(text("UPDATE worker SET active = false WHERE id = 'w-zhang'"))
    response = await fleet.client.get("/v1/sync/pull", headers=zhang.headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_revoked"
