"""What every API error answer shares."""

from __future__ import annotations

import json

import httpx


def error_of(response: httpx.Response) -> dict:
    body = response.json()
    assert set(body) == {"error"}, body
    assert body["error"]["status"] == response.status_code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]


def dumps(value) -> str:
    return json.dumps(value)
