"""The package stays layered: no import cycle, counting imports inside functions."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "t2i"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def internal_imports(path: Path, name: str, modules: set) -> set:
    """The t2i modules `path` imports anywhere in it (relative imports resolved)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in modules:
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found


def test_no_import_cycles():
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {m: internal_imports(p, m, set(files)) for m, p in files.items()}
    graph["t2i"] = set()  # the package's face re-exports lazily; it is nobody's dependency
    done, path = set(), []

    def visit(m):
        assert m not in path, "import cycle: " + " -> ".join(path[path.index(m):] + [m])
        if m in done:
            return
        path.append(m)
        for dep in sorted(graph[m]):
            visit(dep)
        path.pop()
        done.add(m)
    for m in sorted(graph):
        visit(m)
    assert len(graph) > 20  # the walk saw the whole package


def test_the_readme_lists_every_module_in_import_order():
    """README's "How it works" tree: every top-level module and sub-package of t2i, each
    importing only ones listed above it (so the list can be read top-down)."""
    readme = (PACKAGE.parent / "README.md").read_text()
    tree = readme[readme.index("```\nt2i/\n"):]
    tree = tree[:tree.index("```", 4)]
    listed = [line[2:].split()[0].rstrip("/").removesuffix(".py") for line in tree.splitlines()
              if line.startswith("  ") and not line.startswith("   ")]
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    top = lambda m: m.split(".")[1]  # noqa: E731 - t2i.data.idx -> data
    actual = {top(m) for m in files if m != "t2i"} - {"__main__"}
    assert sorted(listed) == sorted(actual)
    position = {name: i for i, name in enumerate(listed)}
    for m, p in files.items():
        if m in ("t2i", "t2i.__main__"):
            continue
        for dep in internal_imports(p, m, set(files)):
            if dep != "t2i" and top(dep) != top(m):
                assert position[top(dep)] < position[top(m)], f"{m} imports {dep}, listed below it"
