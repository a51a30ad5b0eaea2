"""Imports point one way: core <- registry <- governance <- predictions <- monitoring <-
compliance (and predictions <- interop, a side branch), and no app imports demo. Every import counts, the ones inside functions too (migrations aside)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAY_IMPORT = {
    "core": set(),
    "registry": {"core"},
    "governance": {"core", "registry"},
    "predictions": {"core", "registry", "governance"},
    "monitoring": {"core", "registry", "governance", "predictions"},
    # A side branch: the other tools' APIs (MLflow) read the registry, ask governance for
    # moves and authenticate as the prediction API does; nothing but demo imports them.
    "interop": {"core", "registry", "governance", "predictions"},
    # Evidence for auditors reads every domain app (trace, cards, inventory, PDFs).
    "compliance": {"core", "registry", "governance", "predictions", "monitoring"},
    "demo": {"core", "registry", "governance", "predictions", "monitoring", "interop",
             "compliance"},
}
PROJECT = set(MAY_IMPORT) | {"config"}


def _imported(tree: ast.AST, package: list[str]) -> list[tuple[int, str]]:
    """(line, module) of every import in `tree`; relative ones resolved against `package`."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found.append((node.lineno, module))
        elif (isinstance(node, ast.Call) and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
              and (getattr(node.func, "attr", None) == "import_module"
                   or getattr(node.func, "id", None) in {"import_module", "__import__"})):
            found.append((node.lineno, node.args[0].value))
    return found


def upward_imports(app: str, module: str, source: str) -> list[str]:
    """The imports in `source` (module `module` of `app`) that `app` may not make."""
    package = module.split(".")[:-1]  # a package's __init__ too: its package is itself
    problems = []
    for line, imported in _imported(ast.parse(source), package):
        top = imported.split(".")[0]
        if top in PROJECT and top != app and top not in MAY_IMPORT[app]:
            problems.append(f"{module.replace('.', '/')}.py:{line} imports {imported}")
    return problems


def _modules(app: str):
    for path in sorted((ROOT / app).rglob("*.py")):
        relative = path.relative_to(ROOT)
        if "migrations" not in relative.parts:
            yield ".".join(relative.with_suffix("").parts), path


@pytest.mark.parametrize("app", sorted(MAY_IMPORT))
def test_no_app_imports_upwards(app):
    problems = [problem for module, path in _modules(app)
                for problem in upward_imports(app, module, path.read_text())]
    assert not problems, f"{app} may import only {sorted(MAY_IMPORT[app]) or 'no app'}:\n" + \
        "\n".join(problems)


def test_every_app_is_checked():
    apps = {path.parent.name for path in ROOT.glob("*/apps.py")}
    assert apps == set(MAY_IMPORT)


@pytest.mark.parametrize(("app", "module", "source", "expected"), [
    ("core", "core.audit", "import registry.models", ["core/audit.py:1 imports registry.models"]),
    ("core", "core.audit", "from config import settings",
     ["core/audit.py:1 imports config"]),
    ("governance", "governance.services.approvals",
     "def notify():\n    from monitoring import services\n",
     ["governance/services/approvals.py:2 imports monitoring"]),
    ("monitoring", "monitoring.services", "from demo.people import PEOPLE",
     ["monitoring/services.py:1 imports demo.people"]),
    ("registry", "registry.apps",
     "import importlib\nimportlib.import_module('predictions.serving')",
     ["registry/apps.py:2 imports predictions.serving"]),
    ("predictions", "predictions.serving",
     "from governance import rules\nfrom . import logs\nimport numpy\n", []),
    ("governance", "governance.services.rollouts", "from ..rules import PRODUCTION", []),
    ("governance", "governance.admin.__init__", "from .approvals import ApprovalAdmin", []),
    ("core", "core.management.commands.verify_audit", "from ... import audit", []),
    ("core", "core.management.__init__", "from .. import registry", []),  # core.registry
])
def test_the_checker_names_each_upward_import(app, module, source, expected):
    assert upward_imports(app, module, source) == expected
