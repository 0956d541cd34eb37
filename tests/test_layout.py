"""The engine's shape: imports go one way between subpackages, and the
dashboard uses only the public API."""

from __future__ import annotations

import ast
from pathlib import Path

from engine.paths import REPO

ENGINE = REPO / "engine"
# a subpackage may import from the ones after it in this order, never from the ones before it
LAYERS = ["service", "serve", "train", "plan", "probe", "model", "data", "runs"]


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.append(node.module)
        elif isinstance(node, ast.Import):
            out.extend(a.name for a in node.names)
    return out


def test_imports_go_one_way_between_subpackages():
    wrong = []
    for path in ENGINE.glob("*/*.py"):
        layer = LAYERS.index(path.parent.name)
        for module in _imports(path):
            parts = module.split(".")
            if parts[0] == "engine" and len(parts) > 1 and parts[1] in LAYERS and LAYERS.index(parts[1]) < layer:
                wrong.append(f"{path.relative_to(REPO)} imports {module}")
    assert not wrong, wrong


def test_pages_use_only_the_public_api():
    import engine

    for path in [REPO / "app.py", *(REPO / "pages").glob("*.py"), *(REPO / "ui").glob("*.py")]:
        for module in _imports(path):
            assert not module.startswith("engine."), f"{path.name} imports {module}; use `from engine import …`"
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "engine":
                missing = [a.name for a in node.names if a.name not in engine.__all__]
                assert not missing, f"{path.name}: {missing} are not in engine's public API"


def test_the_lazy_api_and_the_type_checking_imports_agree():
    """`engine/__init__.py` names each public name twice (the lazy map, and the imports type checkers read): both must
    name the same objects from the same modules."""
    import engine

    tree = ast.parse((ENGINE / "__init__.py").read_text())
    block = next(n for n in tree.body if isinstance(n, ast.If) and getattr(n.test, "id", "") == "TYPE_CHECKING")
    eager = {a.name: n.module for n in block.body if isinstance(n, ast.ImportFrom) for a in n.names}
    assert eager == engine._API


def _module_graph() -> dict[str, set[str]]:
    """Every engine module and the engine modules it imports anywhere: at the top, inside functions, under
    TYPE_CHECKING (`ast.walk` sees them all). The package itself (its lazy public API) is left out."""
    mods = {}
    for path in ENGINE.rglob("*.py"):
        parts = path.relative_to(REPO).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if name != "engine":
            mods[name] = path
    graph = {}
    for name, path in mods.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("engine."):
                deps |= {m for m in [node.module, *(f"{node.module}.{a.name}" for a in node.names)] if m in mods}
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name in mods}
        graph[name] = deps - {name}
    return graph


def test_no_import_cycle_anywhere_in_the_engine():
    graph, cycles, state, stack = _module_graph(), [], {}, []

    def visit(u: str) -> None:
        state[u] = "open"
        stack.append(u)
        for v in sorted(graph[u]):
            if state.get(v) == "open":
                cycles.append(stack[stack.index(v) :])
            elif v not in state:
                visit(v)
        stack.pop()
        state[u] = "done"

    for u in sorted(graph):
        if u not in state:
            visit(u)
    assert len(graph) > 50 and graph["engine.data.decode"] == {
        "engine.data.imageio",
        "engine.data.spec",
        "engine.paths",
    }
    assert cycles == []


ARITHMETIC = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Pow, ast.MatMult)


def _text_path_or_layout(node: ast.expr) -> bool:
    """An operand that makes a binary operation text, a path or a layout list rather than arithmetic on a number."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    if isinstance(node, (ast.JoinedStr, ast.List)):
        return True
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in {"Path", "sub"}


def test_pages_do_no_arithmetic_on_engine_results():
    """What a page shows comes from the object the engine executes: a page formats and lays out, it never computes a
    number from an engine result (the engine offers the property: `Cost.run_minutes`, `LayerGroup.params_m`). The page
    sections in `ui/` are held to it too; `ui/charts.py` alone turns intervals into plotly's error-bar lengths and
    counts into marker sizes (drawing, not numbers shown)."""
    found = []
    sections = [p for p in (REPO / "ui").glob("*.py") if p.name != "charts.py"]
    for path in sorted([*(REPO / "pages").glob("*.py"), *sections]):
        source = path.read_text()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.BinOp) and isinstance(node.op, ARITHMETIC):
                if not (_text_path_or_layout(node.left) or _text_path_or_layout(node.right)):
                    found.append(f"{path.name}:{node.lineno} {ast.get_source_segment(source, node)}")
    assert not found, found


def test_serving_needs_nothing_from_training():
    """A model is loaded, scored, explained and exported with `engine.model`'s prediction routine, never the trainer."""
    found = [
        f"{path.name} imports {module}"
        for path in sorted((ENGINE / "serve").glob("*.py"))
        for module in _imports(path)
        if module.startswith("engine.train")
    ]
    assert not found, found
