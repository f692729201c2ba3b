"""The README and the API docs match the code."""

from __future__ import annotations

import re
from pathlib import Path

from tsstats.core.settings import SETTINGS

ROOT = Path(__file__).parents[2]


def test_readme_settings_table_matches_the_settings():
    readme = (ROOT / "README.md").read_text()
    rows = re.findall(r"^\| `(\w+)` \| `(--[\w-]+)` \| `(TSSTATS_\w+)` \| `([^`]*)` \| (.*) \|$", readme, re.M)
    assert [row[0] for row in rows] == [setting.name for setting in SETTINGS]
    for (name, flag, env, default, meaning), setting in zip(rows, SETTINGS, strict=True):
        assert (flag, env, default, meaning) == (setting.flag, setting.env_var, setting.shown_default(),
                                                 setting.help), name


def test_readme_commands_exist():
    readme = (ROOT / "README.md").read_text()
    assert "bash scripts/serve.sh" in readme and "bash scripts/test.sh" in readme
    assert (ROOT / "scripts/serve.sh").exists() and (ROOT / "scripts/test.sh").exists()
    assert "scripts/test.sh" in (ROOT / ".ci/run").read_text()


def app_routes(inprocess) -> set[tuple[str, str]]:
    return app_routes_of(inprocess().app)


def app_routes_of(app) -> set[tuple[str, str]]:
    """(method, path) of every route the app serves, paths written as the docs write them."""
    found = set()
    for route in app.router.routes:
        path = "/" + route.path.lstrip("/")
        path = re.sub(r"<(\w+)(:\w+)?>", r"{\1}", path)
        found.update((method, path) for method in route.methods if method != "OPTIONS")
    return found


def test_api_docs_name_every_route_and_no_other(inprocess):
    """Each method and path the app serves is written in docs/api.md as `METHOD /path` (a heading or code),
    and the docs name no route the app lacks."""
    docs = (ROOT / "docs/api.md").read_text()
    documented = set(re.findall(r"^#+ (GET|POST|PATCH|PUT|DELETE) (/[\w/{}.]*)", docs, re.M))
    documented |= set(re.findall(r"`(GET|POST|PATCH|PUT|DELETE) (/[\w/{}.]*)", docs))
    assert app_routes(inprocess) == documented


def test_openapi_document_describes_every_route_and_no_other(inprocess):
    service = inprocess()
    document = service.client().get("/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    described = {(method.upper(), path) for path, operations in document["paths"].items() for method in operations}
    assert described == app_routes_of(service.app)
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert {"200", "201", "204"} & set(operation["responses"]), (method, path)
            if path not in ("/healthz", "/", "/assets/{name}"):  # public
                assert "401" in operation["responses"], (method, path)  # the token's answer is described too


def test_operations_guide_names_only_tests_that_exist():
    """Every test docs/operations.md cites as proof is a test of the suite (a ``test_x_*`` names a family)."""
    guide = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    defined = set(re.findall(r"^def (test_\w+)", "\n".join(path.read_text(encoding="utf-8")
                                                             for path in (ROOT / "tests").rglob("test_*.py")), re.M))
    cited = set(re.findall(r"`(test_\w+?)(\*?)`", guide))
    assert cited, "the guide cites no test"
    for name, family in cited:
        found = any(test.startswith(name) for test in defined) if family else name in defined
        assert found, f"docs/operations.md cites {name}{family}, which no test defines"
