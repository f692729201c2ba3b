"""schemathesis fuzzes the running service from its own OpenAPI document with every check it has: every
operation, a bounded number of cases each, including stateful sequences through the document's links, on a
service without a token and on one with a token (where a request with no token or a wrong one must be refused);
and the endless stream, whose events it reads for a few seconds and checks one by one against the event schema.
No 5xx, no answer that breaks its schema, no schema-valid request refused and no schema-breaking one accepted
(beyond the rules tests/process/schemathesis.toml names), no hang."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCHEMATHESIS = shutil.which("schemathesis") or str(Path(sys.executable).with_name("schemathesis"))
CONFIG = str(Path(__file__).with_name("schemathesis.toml"))
TOKEN = "fuzz-token-0123456789"


def schemathesis(url: str, *options: str, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run([SCHEMATHESIS, "--config-file", CONFIG, "run", f"{url}/openapi.json", "--checks", "all",
                           "--seed", "1", *options], capture_output=True, text=True, timeout=timeout)


@pytest.mark.skipif(not Path(SCHEMATHESIS).exists(), reason="schemathesis is a test extra (scripts/test.sh)")
@pytest.mark.parametrize("token", [None, TOKEN], ids=["no token", "token"])
def test_schemathesis_passes_every_check_on_every_operation(server_factory, token):
    server = server_factory(env={"TSSTATS_TOKEN": token} if token else None)
    headers = ["-H", f"Authorization: Bearer {token}"] if token else []
    result = schemathesis(server.url, "--max-examples", "30", "--request-timeout", "10",
                          "--exclude-path", "/api/dashboard/stream", *headers, timeout=600)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    summary = result.stdout.split("SUMMARY")[-1]
    selected, listed = map(int, re.search(r"Selected: (\d+)/(\d+)", summary).groups())
    assert selected == listed - 1  # every operation of the document but the stream
    assert f"Tested: {selected}" in summary and " passed" in summary and "failed" not in summary
    assert server.process.poll() is None  # still serving


@pytest.mark.skipif(not Path(SCHEMATHESIS).exists(), reason="schemathesis is a test extra (scripts/test.sh)")
def test_the_streams_events_match_their_schema(server_factory):
    server = server_factory()
    result = schemathesis(server.url, "--include-path", "/api/dashboard/stream", "--max-examples", "2",
                          "--request-timeout", "3", "--phases", "fuzzing", timeout=120)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    assert "No issues found" in result.stdout and " passed" in result.stdout
