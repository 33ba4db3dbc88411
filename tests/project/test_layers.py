"""The house's rules that the import contract (pyproject: tool.importlinter) cannot state:
no project import hides inside a function, and no module grows past what a reader holds."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("subscribers", "campaigns", "mailer", "automations", "api", "webhooks", "settings")
# A module past this many lines holds more than one concept (docs/architecture.md).
MAX_LINES = 400


def product_modules() -> list[Path]:
    return sorted(
        path
        for package in PRODUCT
        for path in (ROOT / package).rglob("*.py")
        if "migrations" not in path.parts
    )


def local_project_imports(tree: ast.AST) -> list[tuple[int, str]]:
    """Imports of the project's own packages inside functions, except in AppConfig.ready
    (where Django wants receivers connected once the apps are loaded)."""
    found = []

    def visit(node: ast.AST, in_function: bool, in_ready: bool) -> None:
        for child in ast.iter_child_nodes(node):
            function = isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            ready = in_ready or (function and child.name == "ready")
            if in_function and not in_ready and isinstance(child, ast.Import | ast.ImportFrom):
                names = (
                    [a.name for a in child.names]
                    if isinstance(child, ast.Import)
                    else [child.module or ""]
                )
                if any(name.split(".")[0] in PRODUCT for name in names):
                    found.append((child.lineno, ", ".join(names)))
            visit(child, in_function or function, ready)

    visit(tree, False, False)
    return found


def test_no_project_module_is_imported_inside_a_function():
    hidden = [
        f"{path.relative_to(ROOT)}:{line}: {names}"
        for path in product_modules()
        for line, names in local_project_imports(ast.parse(path.read_text()))
    ]
    assert hidden == [], "import these at the top of the module (a local import hides a cycle)"


def test_the_check_finds_an_import_hidden_in_a_function():
    tree = ast.parse(
        "def f():\n    from mailer import ledger\n\nclass A:\n    def ready(self):\n"
        "        from mailer import receivers\n"
    )

    assert local_project_imports(tree) == [(2, "mailer")]


def test_no_module_of_the_product_is_longer_than_a_reader_holds():
    long = [
        f"{path.relative_to(ROOT)}: {lines} lines"
        for path in product_modules()
        if (lines := path.read_text().count("\n")) > MAX_LINES
    ]
    assert long == [], f"split these by concept (at most {MAX_LINES} lines each)"
