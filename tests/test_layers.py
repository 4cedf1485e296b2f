"""The package stays layered, and its map stays true: no import cycle (counting imports inside
functions); the tree in t2i's docstring lists every module, each below all it imports; the
README's layout is that tree's top level."""

import ast
import re
from pathlib import Path

import t2i

PACKAGE = Path(__file__).resolve().parent.parent / "t2i"
ENTRY = re.compile(r"^(  |    )(\S+?)(/|\.py)(\s|$)")  # "  flow/  ..." or "    paths.py  ..."


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


def code_tree(text: str) -> str:
    """The first ``` block that starts with `t2i/`."""
    start = text.index("```\nt2i/\n") + 4
    return text[start:text.index("```", start)]


def listed_order(tree: str) -> dict:
    """{dotted module or package: position} of the tree's entries, top-down."""
    order, package = {}, None
    for line in tree.splitlines():
        m = ENTRY.match(line)
        if not m:
            continue
        indent, name, kind = m.group(1), m.group(2), m.group(3)
        if indent == "  ":
            package = name if kind == "/" else None
            order[f"t2i.{name}"] = len(order)
        else:
            assert package, f"{line!r} is nested under no package"
            order[f"t2i.{package}.{name}"] = len(order)
    return order


def graph():
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {m: internal_imports(p, m, set(files)) for m, p in files.items()}


def test_no_import_cycles():
    g = graph()
    g["t2i"] = set()  # the package's face re-exports lazily; it is nobody's dependency
    done, path = set(), []

    def visit(m):
        assert m not in path, "import cycle: " + " -> ".join(path[path.index(m):] + [m])
        if m in done:
            return
        path.append(m)
        for dep in sorted(g[m]):
            visit(dep)
        path.pop()
        done.add(m)
    for m in sorted(g):
        visit(m)
    assert len(g) > 50  # the walk saw the whole package


def test_the_package_tree_lists_every_module_below_what_it_imports():
    order = listed_order(code_tree(t2i.__doc__))
    g = graph()
    actual = set(g) - {"t2i", "t2i.__main__"}
    assert sorted(order) == sorted(actual)

    def rank(m):  # a package's __init__ sits at the package's line, above its modules
        return order[m]

    def top(m):
        return ".".join(m.split(".")[:2])

    for m, deps in g.items():
        if m in ("t2i", "t2i.__main__"):
            continue
        for dep in deps - {"t2i"}:
            if top(dep) != top(m):
                assert rank(top(dep)) < rank(top(m)), f"{m} imports {dep}, listed below it"
            elif dep != top(m) and m != top(m):
                assert rank(dep) < rank(m), f"{m} imports {dep}, listed below it"


def test_the_readme_layout_is_the_top_of_the_package_tree():
    tree = code_tree(t2i.__doc__)
    top = "".join(line + "\n" for line in tree.splitlines()
                  if line == "t2i/" or (line.startswith("  ") and ENTRY.match(line)
                                         and not line.startswith("    ")))
    readme = (PACKAGE.parent / "README.md").read_text()
    assert code_tree(readme) == top


def test_few_modules_stay_flat():
    flat = [p.name for p in PACKAGE.glob("*.py") if p.name not in ("__init__.py", "__main__.py")]
    assert len(flat) <= 8, flat
