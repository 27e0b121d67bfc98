"""Error body parsing and mapping; regions."""

from __future__ import annotations

import pickle

import httpx
import pytest

from contentstack_personalize.errors import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    error_from_response,
    parse_error_body,
)
from contentstack_personalize.regions import ConfigurationError, Region


def _response(status: int, **kwargs: object) -> httpx.Response:
    return httpx.Response(
        status,
        request=httpx.Request("GET", "https://edge.example/manifest?x=1"),
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (409, ConflictError),
        (422, BadRequestError),
        (429, RateLimitError),
        (418, BadRequestError),
        (500, ServerError),
        (502, ServerError),
        (504, ServerError),
    ],
)
def test_status_classes(status: int, cls: type[APIStatusError]) -> None:
    exc = error_from_response(_response(status, json={"message": "nope"}), attempts=3)
    assert type(exc) is cls
    assert exc.status_code == status and exc.attempts == 3 and exc.message == "nope"


def test_personalize_error_shape() -> None:
    exc = error_from_response(
        _response(
            404,
            json={
                "error": "personalize.MANIFEST.PROJECT_NOT_FOUND",
                "message": "Project not found",
            },
            headers={"x-request-id": "req-1"},
        )
    )
    assert exc.code == "personalize.MANIFEST.PROJECT_NOT_FOUND"
    assert exc.request_id == "req-1"
    text = str(exc)
    assert "404" in text and "PROJECT_NOT_FOUND" in text and "Project not found" in text
    assert "GET https://edge.example/manifest" in text and "x=1" not in text


def test_validation_shape() -> None:
    exc = error_from_response(_response(400, json={"errors": {"key": ["is required", "too long"]}}))
    assert exc.field_errors == {"key": ["is required", "too long"]}
    assert "key: is required, too long" in str(exc)


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        (b'{"error_message": "Bad creds", "error_code": 104, "errors": {}}', "104", "Bad creds"),
        (
            b'{"error": "personalize.PROJECTS.DUPLICATE_NAME"}',
            "personalize.PROJECTS.DUPLICATE_NAME",
            "personalize.PROJECTS.DUPLICATE_NAME",
        ),
        (b'{"error": {"code": "E1", "message": "inner"}}', "E1", "inner"),
        (b'{"errors": {"name": "taken"}}', None, "validation failed"),
        (b"<html><body>Bad Gateway</body></html>", None, "<html><body>Bad Gateway</body></html>"),
        (b"upstream connect error\nmore", None, "upstream connect error"),
        (b'"just a string"', None, "just a string"),
    ],
)
def test_body_shapes(body: bytes, code: str | None, message: str) -> None:
    got_code, got_message, _, _ = parse_error_body(body)
    assert (got_code, got_message) == (code, message)


def test_empty_body_uses_reason_phrase() -> None:
    exc = error_from_response(_response(503))
    assert exc.message == "Service Unavailable"


def test_rate_limit_retry_after() -> None:
    exc = error_from_response(_response(429, text="slow", headers={"Retry-After": "4"}))
    assert isinstance(exc, RateLimitError) and exc.retry_after == 4.0


def test_status_errors_pickle() -> None:
    exc = error_from_response(_response(409, json={"errors": {"key": ["dup"]}}))
    clone = pickle.loads(pickle.dumps(exc))
    assert type(clone) is ConflictError and clone.field_errors == {"key": ["dup"]}


@pytest.mark.parametrize(
    ("name", "region"),
    [
        ("eu", Region.AWS_EU),
        ("EU", Region.AWS_EU),
        ("azure-na", Region.AZURE_NA),
        ("AWS-NA", Region.AWS_NA),
        ("us", Region.AWS_NA),
        ("na", Region.AWS_NA),
        ("gcp_eu", Region.GCP_EU),
        (None, Region.AWS_NA),
        (Region.AWS_AU, Region.AWS_AU),
    ],
)
def test_region_parse(name: str | None, region: Region) -> None:
    assert Region.parse(name) is region


def test_region_urls() -> None:
    assert Region.AWS_NA.edge_url == "https://personalize-edge.contentstack.com"
    assert Region.AWS_NA.management_url == "https://personalize-api.contentstack.com"
    assert Region.AWS_NA.cma_url == "https://api.contentstack.io"
    assert Region.AWS_EU.edge_url == "https://eu-personalize-edge.contentstack.com"
    assert Region.AWS_AU.cma_url == "https://au-api.contentstack.com"
    assert Region.AZURE_EU.management_url == "https://azure-eu-personalize-api.contentstack.com"
    assert Region.GCP_NA.cma_url == "https://gcp-na-api.contentstack.com"
    assert Region.AWS_EU.developerhub_url == "https://eu-developerhub-api.contentstack.com"
    assert len(Region) == 7


def test_unknown_region_lists_known_ones() -> None:
    with pytest.raises(ConfigurationError, match="azure-na"):
        Region.parse("mars")
