"""The tree shows the architecture: every layer says what it owns, which thread runs it and what it may import;
no god object. (The import rules themselves are import-linter's, run by the test command.)"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[2] / "tsstats"
LAYERS = ("core", "sources", "figures", "storage", "sampling", "comparisons", "api", "cli")
DECLARATIVE = {("api/openapi.py", "openapi_document"), ("cli/parser.py", "build_parser")}  # tables, not logic


@pytest.mark.parametrize("layer", LAYERS)
def test_each_layer_says_what_it_owns_its_thread_and_its_imports(layer):
    doc = (ast.get_docstring(ast.parse((PACKAGE / layer / "__init__.py").read_text(encoding="utf-8"))) or "").lower()
    assert "thread" in doc and "import" in doc, f"tsstats/{layer}/__init__.py: {doc[:80]!r}"


def test_the_assembly_says_it_alone_builds_things():
    doc = ast.get_docstring(ast.parse((PACKAGE / "assembly.py").read_text(encoding="utf-8"))) or ""
    assert "builds" in doc and "thread" in doc


def test_no_god_object():
    """A module over 700 lines or a class over 400 says why in its docstring ("large because"); a function reads in
    one screen (60 lines) but the declarative tables. A module is one concept: it may be long."""
    too_big = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        name = str(path.relative_to(PACKAGE))
        tree = ast.parse(text)
        if text.count("\n") > 700 and "large because" not in (ast.get_docstring(tree) or ""):
            too_big.append(f"{name}: {text.count(chr(10))} lines")
        for node in ast.walk(tree):
            length = (node.end_lineno or node.lineno) - node.lineno + 1 if hasattr(node, "lineno") else 0
            if isinstance(node, ast.ClassDef) and length > 400 and "large because" not in (ast.get_docstring(node)
                                                                                          or ""):
                too_big.append(f"{name}: class {node.name} {length} lines")
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and length > 60 \
                    and (name, node.name) not in DECLARATIVE:
                too_big.append(f"{name}: {node.name}() {length} lines")
    assert not too_big


def test_every_module_says_what_it_is():
    missing = [str(path.relative_to(PACKAGE)) for path in sorted(PACKAGE.rglob("*.py"))
               if path.name != "__main__.py" and not ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))]
    assert not missing


def test_the_architecture_page_names_every_module_and_only_modules_that_exist():
    """docs/architecture.md's table says where each concept lives: every module of a layer is named there (by
    its path, or its file name in a row that names its layer's folder), and every path it names exists."""
    import re

    text = (PACKAGE.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    table = text[text.index("| concept | owner |"):text.index("## Tests")]
    named = set(re.findall(r"`([a-z_]+(?:/[a-z_]+)*\.(?:py|sql))`", table))
    folders = {path.split("/")[0] for path in named if "/" in path}
    unknown = [path for path in named if "/" in path and not (PACKAGE / path).exists()
               and not (PACKAGE / "api" / path).exists()]
    assert not unknown
    modules = [path.relative_to(PACKAGE) for path in PACKAGE.rglob("*.py")
               if path.name not in ("__init__.py", "__main__.py")]
    unnamed = [str(module) for module in modules
               if str(module) not in named and not (module.parts[0] in folders and module.name in named)]
    assert not unnamed
