"""schemathesis fuzzes the running service from its own OpenAPI document: every operation, a bounded number of
cases each, including stateful sequences through the document's links; and the endless stream, whose events
it reads for a few seconds and checks one by one against the event schema. No 5xx, no answer that breaks its
schema, no hang."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCHEMATHESIS = shutil.which("schemathesis") or str(Path(sys.executable).with_name("schemathesis"))


@pytest.mark.skipif(not Path(SCHEMATHESIS).exists(), reason="schemathesis is a test extra (scripts/test.sh)")
def test_schemathesis_finds_no_server_error_or_schema_break(server_factory):
    server = server_factory()
    result = subprocess.run([SCHEMATHESIS, "run", f"{server.url}/openapi.json",
                             "--checks", "not_a_server_error,response_schema_conformance",
                             "--max-examples", "30", "--request-timeout", "10", "--seed", "1",
                             "--exclude-path", "/api/dashboard/stream"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "failed" not in result.stdout.split("SUMMARY")[-1]
    assert server.process.poll() is None  # still serving


@pytest.mark.skipif(not Path(SCHEMATHESIS).exists(), reason="schemathesis is a test extra (scripts/test.sh)")
def test_the_streams_events_match_their_schema(server_factory):
    server = server_factory()
    result = subprocess.run([SCHEMATHESIS, "run", f"{server.url}/openapi.json", "--include-path",
                             "/api/dashboard/stream", "--checks", "not_a_server_error,response_schema_conformance",
                             "--max-examples", "2", "--request-timeout", "3", "--phases", "fuzzing", "--seed", "1"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    assert "No issues found" in result.stdout and "2 passed" in result.stdout
