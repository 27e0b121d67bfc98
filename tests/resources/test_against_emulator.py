"""The resources end to end against the emulator, for sync and async clients, through the
in-process transport and through the loopback HTTP server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from contentstack_personalize import (
    AsyncPersonalizeClient,
    AuthenticationError,
    ConfigurationError,
    ConflictError,
    NotFoundError,
    PersonalizeClient,
    RetryPolicy,
)
from contentstack_personalize.auth import AuthToken
from contentstack_personalize.models import CustomEvent, Impression
from contentstack_personalize.rules import Condition, Rule, RuleCombination, all_of, any_of
from contentstack_personalize.testing import Faults, PersonalizeEmulator

from .conftest import Api

MODES = [
    ("sync", "transport"),
    ("async", "transport"),
    ("sync", "server"),
    ("async", "server"),
]


class Env:
    def __init__(self, emulator: PersonalizeEmulator, kind: str, way: str, urls: dict[str, str]):
        self.emulator = emulator
        self.kind = kind
        self.way = way
        self.urls = urls
        self.opened: list[Api] = []

    def client(self, **kwargs: Any) -> Api:
        emulator = self.emulator
        kwargs.setdefault("auth", AuthToken(emulator.authtoken))
        kwargs.setdefault("organization_uid", emulator.organization_uid)
        kwargs.setdefault("retry", RetryPolicy(sleep=False))
        kwargs.setdefault("management_rate_limit", None)
        kwargs.setdefault("read_env", False)
        project = kwargs.pop("project_uid", emulator.project_uid)
        if self.way == "transport":
            kwargs["transport"] = emulator.transport()
        else:
            kwargs.update(self.urls)
        cls = PersonalizeClient if self.kind == "sync" else AsyncPersonalizeClient
        api = Api(cls(project, **kwargs))
        self.opened.append(api)
        return api


@pytest.fixture(params=MODES, ids=["-".join(m) for m in MODES])
async def env(request: pytest.FixtureRequest) -> AsyncIterator[Env]:
    kind, way = request.param
    emulator = PersonalizeEmulator(management_rate_limit=None)
    if way == "transport":
        environment = Env(emulator, kind, way, {})
        yield environment
    else:
        with emulator.serve() as server:
            environment = Env(
                emulator,
                kind,
                way,
                {"edge_url": server.edge_url, "management_url": server.management_url},
            )
            yield environment
            for api in environment.opened:
                await api.close()
        return
    for api in environment.opened:
        await api.close()


async def test_catalogue_users_and_manifest_end_to_end(env: Env) -> None:
    emulator = env.emulator
    api = env.client()

    # Attributes: ensure is idempotent and lists presets apart.
    ensured = await api.run(lambda c: c.attributes.ensure({"plan": "Plan", "ltv": "LTV"}))
    assert [(a.key, a.name, a.is_custom) for a in ensured] == [
        ("plan", "Plan", True),
        ("ltv", "LTV", True),
    ]
    assert emulator.count("management", "POST", "/attributes") == 2
    again = await api.run(lambda c: c.attributes.ensure(["plan", "ltv"]))
    assert again == ensured
    assert emulator.count("management", "POST", "/attributes") == 2  # nothing created twice
    attributes = await api.run(lambda c: c.attributes.list())
    assert {a.key for a in attributes if a.is_preset} >= {"COUNTRY", "DEVICE_TYPE"}
    assert [a.to_api() for a in attributes] == emulator.catalogue("attributes")
    with pytest.raises(ConfigurationError, match="preset"):
        await api.run(lambda c: c.attributes.ensure(["COUNTRY"]))
    plan, ltv = ensured
    renamed = await api.run(lambda c: c.attributes.update(plan.uid, name="Plan tier"))
    assert (renamed.key, renamed.name) == ("plan", "Plan tier")
    assert (await api.run(lambda c: c.attributes.get(plan.uid))).name == "Plan tier"
    with pytest.raises(ConfigurationError, match="preset"):
        await api.run(lambda c: c.attributes.update("COUNTRY", name="Land"))
    with pytest.raises(ConflictError):
        await api.run(lambda c: c.attributes.create(key="plan"))

    # Events.
    event = await api.run(lambda c: c.events.create(key="clickCTA", description="Clicked"))
    changed = await api.run(lambda c: c.events.update(event.uid, description=None))
    assert changed.key == "clickCTA" and changed.description == ""
    assert [e.key for e in await api.run(lambda c: c.events.list())] == ["clickCTA"]

    # Audiences with a typed definition, read back identical.
    definition = all_of(
        Rule.for_key("plan", attributes, Condition.STRING_EQUALS, "gold"),
        any_of(
            Rule.for_attribute(ltv, Condition.NUMBER_GREATER_THAN, 1000),
            Rule.preset("COUNTRY", Condition.STRING_EQUALS, "FR"),
        ),
    )
    audience = await api.run(
        lambda c: c.audiences.create(name="Gold big spenders", definition=definition)
    )
    assert audience.definition == definition
    fetched = await api.run(lambda c: c.audiences.get(audience.uid))
    assert fetched.to_api() == emulator.catalogue("audiences")[0]
    updated = await api.run(lambda c: c.audiences.update(audience.uid, description="VIPs"))
    assert updated.definition == definition and updated.description == "VIPs"

    # Experiences (seeded: the library only reads them).
    seeded = emulator.add_experience("Gold home", audiences=[audience.uid], variants=("0", "1"))
    experiences = await api.run(lambda c: c.experiences.list())
    assert [(x.short_uid, x.type, x.is_segmented) for x in experiences] == [
        (seeded["shortUid"], "SEGMENTED", True)
    ]
    assert await api.run(lambda c: c.experiences.get(seeded["uid"])) == experiences[0]

    # Users on the edge.
    await api.run(lambda c: c.users.set_attributes("u1", {"plan": "gold", "ltv": 1500}))
    assert emulator.user_attributes("u1") == {"plan": "gold", "ltv": 1500}
    manifest = await api.run(lambda c: c.users.manifest("u1"))
    assert manifest.user_uid == "u1"
    assert manifest.variant_for(seeded["shortUid"]) == "0"
    outsider = await api.run(lambda c: c.users.manifest("u2"))
    assert outsider.variant_for(seeded["shortUid"]) is None
    anonymous = await api.run(lambda c: c.users.manifest())
    assert anonymous.user_uid and anonymous.user_uid not in ("u1", "u2")
    await api.run(lambda c: c.users.set_attributes("anon-1", {"ltv": 2000, "city": "Paris"}))
    await api.run(lambda c: c.users.merge(source_uid="anon-1", target_uid="u1"))
    assert emulator.user_attributes("u1") == {"plan": "gold", "ltv": 2000, "city": "Paris"}
    events: list[Impression | CustomEvent] = [
        Impression(experience_short_uid=seeded["shortUid"], variant_short_uid="0"),
        CustomEvent("clickCTA"),
    ]
    await api.run(lambda c: c.users.track("u1", events))
    assert emulator.events_of("u1") == [e.to_api() for e in events]

    # Deletes.
    await api.run(lambda c: c.audiences.delete(audience.uid))
    await api.run(lambda c: c.events.delete(event.uid))
    await api.run(lambda c: c.attributes.delete(ltv))
    assert emulator.catalogue("audiences") == []
    assert emulator.catalogue("events") == []
    assert [a["key"] for a in emulator.catalogue("attributes") if a["__type"] == "CUSTOM"] == [
        "plan"
    ]


async def test_lytics_audiences_are_read_only(env: Env) -> None:
    lytics = env.emulator.add_lytics_audience("From Lytics", members=["u1"])
    api = env.client()
    audience = await api.run(lambda c: c.audiences.get(lytics["uid"]))
    assert audience.is_read_only and audience.definition is None
    assert audience.to_api() == lytics
    before = len(env.emulator.requests)
    with pytest.raises(ConfigurationError, match="read-only"):
        await api.run(lambda c: c.audiences.update(lytics["uid"], name="Mine"))
    with pytest.raises(ConfigurationError, match="read-only"):
        await api.run(lambda c: c.audiences.delete(audience))
    writes = [r for r in env.emulator.requests[before:] if r.method in ("PUT", "DELETE")]
    assert writes == []


async def test_projects(env: Env) -> None:
    api = env.client(project_uid=None)
    projects = await api.run(lambda c: c.projects.list())
    assert [p.uid for p in projects] == [env.emulator.project_uid]
    assert projects[0].organization_uid == env.emulator.organization_uid
    created = await api.run(lambda c: c.projects.create(name="Second", description="Web"))
    assert (created.name, created.description) == ("Second", "Web")
    with pytest.raises(ConflictError) as info:
        await api.run(lambda c: c.projects.create(name="Second"))
    assert info.value.code == "personalize.PROJECTS.DUPLICATE_NAME"
    listed = await api.run(lambda c: c.projects.list())
    assert [p.name for p in listed] == ["Emulated Project", "Second"]


async def test_errors(env: Env) -> None:
    unknown = env.client(project_uid="0" * 24)
    with pytest.raises(NotFoundError) as edge:
        await unknown.run(lambda c: c.users.manifest("u1"))
    assert edge.value.code == "personalize.MANIFEST.PROJECT_NOT_FOUND"
    with pytest.raises(NotFoundError) as management:
        await unknown.run(lambda c: c.attributes.list())
    assert management.value.code == "personalize.ATTRIBUTES.PROJECT_NOT_FOUND"

    bad_token = env.client(auth=AuthToken("blt-wrong"))
    with pytest.raises(AuthenticationError):
        await bad_token.run(lambda c: c.events.list())

    api = env.client()
    with pytest.raises(NotFoundError):
        await api.run(lambda c: c.experiences.get("f" * 24))


async def test_rate_limits_and_server_errors_are_retried(env: Env) -> None:
    env.emulator.set_faults(fail_nth={1: 429, 2: "server_error", 4: 503})
    api = env.client()
    await api.run(lambda c: c.users.set_attributes("u1", {"plan": "gold"}))
    assert env.emulator.user_attributes("u1") == {"plan": "gold"}
    assert await api.run(lambda c: c.events.list()) == []
    statuses = [r.status for r in env.emulator.requests]
    assert statuses == [429, 503, 200, 503, 200]
    env.emulator.set_faults(Faults(outage=True))
    with pytest.raises(Exception, match="503"):
        await api.run(lambda c: c.users.manifest("u1"))


async def test_definition_with_every_documented_condition_is_accepted(env: Env) -> None:
    api = env.client()
    (score,) = await api.run(lambda c: c.attributes.ensure(["score"]))
    rules: list[Any] = [
        Rule.for_attribute(score, Condition.STRING_EQUALS, "a"),
        Rule.for_attribute(score, Condition.CONTAINS_SUBSTRING, "b"),
        Rule.for_attribute(score, Condition.NUMBER_EQUAL_TO, 1),
        Rule.for_attribute(score, Condition.NUMBER_GREATER_THAN, 2.5),
        Rule.for_attribute(score, Condition.NUMBER_LESS_THAN, 3),
        Rule.for_attribute(score, Condition.IS_TRUE),
        ~Rule.for_attribute(score, Condition.IS_FALSE),
        Rule.for_attribute(score, Condition.HAS_ANY_VALUE),
    ]
    definition = any_of(*rules)
    created = await api.run(lambda c: c.audiences.create(name="All", definition=definition))
    assert isinstance(created.definition, RuleCombination)
    assert created.definition.to_api() == definition.to_api()
    assert created.definition.expected_value_kinds() == {
        score.uid: {"string", "number", "boolean", "any"}
    }


def test_client_rate_limiter_keeps_under_the_emulator_limit() -> None:
    emulator = PersonalizeEmulator(management_rate_limit=10)
    with PersonalizeClient(
        emulator.project_uid,
        auth=AuthToken(emulator.authtoken),
        organization_uid=emulator.organization_uid,
        transport=emulator.transport(),
        retry=RetryPolicy.disabled(),
        management_rate_limit=10,
        read_env=False,
    ) as client:
        for _ in range(12):
            client.events.list()
    assert all(r.status == 200 for r in emulator.requests)
