"""The package's shape, read from the source with ast (mailbot is never imported).

A newcomer should meet a house whose stages import one way: no module reaches
back into one that imports it (directly or round a longer circle, whether the
import sits at the top of the file, inside a function or under TYPE_CHECKING:
a circle a reader must follow is a circle), no package borrows a
name another package keeps private (``_x``), no function runs past sixty
lines, and the error tree drawn in mailbot/errors.py is the one in the source.
"""

from __future__ import annotations

import ast
import builtins
import functools
import re
from dataclasses import dataclass, field
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "mailbot"
MAX_FUNCTION_LINES = 60


@dataclass
class Module:
    """One module of mailbot as the source shows it."""

    name: str
    path: Path
    is_package: bool
    tree: ast.Module
    imports: set[str] = field(default_factory=set)
    aliases: dict[str, str] = field(default_factory=dict)  # a local name -> the module it is
    private_uses: list[tuple[str, str, int]] = field(default_factory=list)

    @property
    def package(self) -> str:
        """The package the module belongs to (a package's __init__ belongs to itself)."""
        return self.name if self.is_package else self.name.rpartition(".")[0]


def _read_modules(root: Path = PACKAGE) -> dict[str, Module]:
    modules: dict[str, Module] = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        name = ".".join(parts)
        modules[name] = Module(name, path, is_package, ast.parse(path.read_bytes(), str(path)))
    return modules


def _absolute(module: Module, node: ast.ImportFrom) -> str:
    """The module an ``from X import`` names, with relative imports resolved."""
    if node.level == 0:
        return node.module or ""
    base = module.name.split(".")
    if not module.is_package:
        base.pop()
    if node.level > 1:
        base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _link(modules: dict[str, Module]) -> None:
    """Fill each module's imports (mailbot modules only) and its uses of others' private names."""
    for module in modules.values():
        for node in ast.walk(module.tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name in modules:
                        module.imports.add(alias.name)
                        module.aliases[alias.asname or alias.name] = alias.name
            elif isinstance(node, ast.ImportFrom):
                _link_from(module, node, modules)
        module.imports.discard(module.name)
        _link_attributes(module)


def _link_attributes(module: Module) -> None:
    """``mod._x`` where ``mod`` names another module (``from P import mod``, ``import P.mod``)."""
    for node in ast.walk(module.tree):
        if not isinstance(node, ast.Attribute) or not _is_private(node.attr):
            continue
        target = module.aliases.get(ast.unparse(node.value))
        if target is not None and target != module.name:
            module.private_uses.append((target, node.attr, node.lineno))


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _link_from(module: Module, node: ast.ImportFrom, modules: dict[str, Module]) -> None:
    """``from X import a, b``: an edge to X.a where that is a module, else to X."""
    source = _absolute(module, node)
    for alias in node.names:
        submodule = f"{source}.{alias.name}"
        if submodule in modules:
            module.imports.add(submodule)
            module.aliases[alias.asname or alias.name] = submodule
        elif source in modules:
            module.imports.add(source)
            if _is_private(alias.name):
                module.private_uses.append((source, alias.name, node.lineno))


def _pop_group(stack: list[str], on_stack: set[str], root: str) -> list[str]:
    """Tarjan's step at a group's root: pop the stack down to `root`, the members popped."""
    group = []
    while True:
        member = stack.pop()
        on_stack.discard(member)
        group.append(member)
        if member == root:
            return group


def _cycles(modules: dict[str, Module]) -> list[list[str]]:
    """Every strongly connected group of two or more modules (Tarjan), each as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(name: str) -> None:
        index[name] = low[name] = len(index)
        stack.append(name)
        on_stack.add(name)
        for target in sorted(modules[name].imports):
            if target not in index:
                visit(target)
                low[name] = min(low[name], low[target])
            elif target in on_stack:
                low[name] = min(low[name], index[target])
        if low[name] == index[name]:
            group = _pop_group(stack, on_stack, name)
            if len(group) > 1:
                groups.append(sorted(group))

    for name in sorted(modules):
        if name not in index:
            visit(name)
    return sorted(groups)


def _circle_in(group: list[str], modules: dict[str, Module]) -> str:
    """One concrete circle through the group's first module, for the failure message."""
    members = set(group)
    start = group[0]
    path = [start]
    seen = {start}
    while True:
        here = path[-1]
        targets = sorted(modules[here].imports & members)
        if start in targets and len(path) > 1:
            return " -> ".join([*path, start])
        fresh = [t for t in targets if t not in seen]
        if not fresh:  # a dead end inside the group: step back
            path.pop()
            if not path:
                return " <-> ".join(group)
            continue
        seen.add(fresh[0])
        path.append(fresh[0])


@functools.cache
def _graph() -> dict[str, Module]:
    """mailbot's modules, read and linked once for every test here."""
    modules = _read_modules()
    _link(modules)
    return modules


def test_no_import_circles() -> None:
    modules = _graph()
    circles = [f"{', '.join(group)}: {_circle_in(group, modules)}" for group in _cycles(modules)]
    assert circles == [], "import circles:\n" + "\n".join(circles)


def test_no_private_name_crosses_a_package() -> None:
    modules = _graph()
    crossings = [
        f"{module.path.relative_to(PACKAGE.parent)}:{line} takes {name} from {source}"
        for module in modules.values()
        for source, name, line in module.private_uses
        if modules[source].package != module.package
    ]
    assert crossings == [], "private names used by another package:\n" + "\n".join(crossings)


def test_no_function_over_sixty_lines() -> None:
    long = [
        f"{module.path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name} "
        f"({node.end_lineno - node.lineno + 1} lines)"
        for module in _graph().values()
        for node in ast.walk(module.tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert long == [], f"functions over {MAX_FUNCTION_LINES} lines:\n" + "\n".join(long)


# The checker itself, on small made-up packages: a circle hidden in a function
# is found, a private name inside its own package is fine, one taken across is not.


def _write(root: Path, files: dict[str, str]) -> dict[str, Module]:
    for relative, text in files.items():
        path = root / "mailbot" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    modules = _read_modules(root / "mailbot")
    _link(modules)
    return modules


def test_a_circle_hidden_inside_a_method_is_found(tmp_path: Path) -> None:
    modules = _write(
        tmp_path,
        {
            "__init__.py": "",
            "judge/__init__.py": "",
            "judge/case.py": "class Case:\n    def read(self):\n        from .subject import read\n",
            "judge/subject.py": "from mailbot.judge.case import Case\n",
            "judge/plain.py": "from mailbot.judge import subject\n",
        },
    )
    groups = _cycles(modules)
    assert groups == [["mailbot.judge.case", "mailbot.judge.subject"]]
    assert _circle_in(groups[0], modules) == (
        "mailbot.judge.case -> mailbot.judge.subject -> mailbot.judge.case"
    )


def test_a_private_name_is_seen_with_its_package(tmp_path: Path) -> None:
    modules = _write(
        tmp_path,
        {
            "__init__.py": "",
            "store/__init__.py": "",
            "store/blobs.py": "_x = 1\n",
            "store/db.py": "from .blobs import _x\n",
            "web/__init__.py": "",
            "web/app.py": "from mailbot.store.blobs import _x\n",
            "web/pages.py": "from mailbot.store import blobs\nsize = blobs._x + blobs.__doc__\n",
            "web/edge.py": "import mailbot.store.blobs as b\nsize = b._x\n",
        },
    )
    uses = {
        name: [(source, private, modules[source].package) for source, private, _ in m.private_uses]
        for name, m in modules.items()
        if m.private_uses
    }
    assert uses == {
        "mailbot.store.db": [("mailbot.store.blobs", "_x", "mailbot.store")],
        "mailbot.web.app": [("mailbot.store.blobs", "_x", "mailbot.store")],
        "mailbot.web.pages": [("mailbot.store.blobs", "_x", "mailbot.store")],
        "mailbot.web.edge": [("mailbot.store.blobs", "_x", "mailbot.store")],
    }
    assert modules["mailbot.store.db"].package == "mailbot.store"
    assert modules["mailbot.web.app"].package == "mailbot.web"


# The error tree in mailbot/errors.py's docstring, against the classes in the source.

_TREE_LINE = re.compile(r"^(?P<indent> *)[*x+] (?P<name>\w+) \((?P<module>mailbot[\w.]*)\): \S")
_BUILTIN_EXCEPTIONS = {
    name
    for name, value in vars(builtins).items()
    if isinstance(value, type) and issubclass(value, BaseException)
}


def _drawn_tree(modules: dict[str, Module]) -> dict[str, tuple[str, str | None]]:
    """Each class the docstring draws: its module and its parent in the drawing (None at the top)."""
    docstring = ast.get_docstring(modules["mailbot.errors"].tree) or ""
    drawn: dict[str, tuple[str, str | None]] = {}
    parents: list[tuple[int, str]] = []  # (indent, name) of the open branches
    for line in docstring.splitlines():
        match = _TREE_LINE.match(line)
        if match is None:
            continue
        indent = len(match["indent"])
        while parents and parents[-1][0] >= indent:
            parents.pop()
        drawn[match["name"]] = (match["module"], parents[-1][1] if parents else None)
        parents.append((indent, match["name"]))
    return drawn


def _exception_classes(modules: dict[str, Module]) -> dict[str, tuple[str, str | None]]:
    """Every exception class in the source: its module, and its parent if that is ours too."""
    classes = {
        node.name: (module.name, [ast.unparse(base).rpartition(".")[2] for base in node.bases])
        for module in modules.values()
        for node in ast.walk(module.tree)
        if isinstance(node, ast.ClassDef)
    }
    found: dict[str, tuple[str, str | None]] = {}
    while True:
        more = {
            name: (module, next((b for b in bases if b in found), None))
            for name, (module, bases) in classes.items()
            if name not in found and any(b in found or b in _BUILTIN_EXCEPTIONS for b in bases)
        }
        if not more:
            return found
        found.update(more)


def test_the_error_tree_draws_every_exception_where_it_is() -> None:
    modules = _graph()
    drawn = _drawn_tree(modules)
    assert drawn["MailbotError"] == ("mailbot.errors", None)
    assert drawn == _exception_classes(modules)


def test_the_error_tree_check_sees_a_class_missing_misplaced_or_unknown(tmp_path: Path) -> None:
    modules = _write(
        tmp_path,
        {
            "__init__.py": "",
            "errors.py": (
                '"""Errors::\n\n'
                "    * MailbotError (mailbot.errors): the root\n"
                "      x StoreError (mailbot.store): a blob cannot be written\n"
                "      x DiskFull (mailbot.store): drawn under the root, defined under StoreError\n"
                "      x Gone (mailbot.store): drawn, never defined\n"
                '"""\n'
                "class MailbotError(Exception):\n    pass\n"
            ),
            "store.py": (
                "from mailbot import errors\n"
                "class StoreError(errors.MailbotError):\n    pass\n"
                "class DiskFull(StoreError):\n    pass\n"
                "class Signal(ValueError):\n    pass\n"
                "class Plain:\n    pass\n"
            ),
        },
    )
    drawn, found = _drawn_tree(modules), _exception_classes(modules)
    assert {name for name in drawn.keys() | found.keys() if drawn.get(name) != found.get(name)} == {
        "DiskFull",
        "Gone",
        "Signal",
    }
    assert found["DiskFull"] == ("mailbot.store", "StoreError")
    assert drawn["DiskFull"] == ("mailbot.store", "MailbotError")


README = PACKAGE.parent / "README.md"


def _layout_entries(readme: str) -> set[str]:
    """Paths the README's Layout block names under mailbot/, e.g. "mail/" and "mail/screen.py"."""
    section = readme.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    block = section.split("```\n", 2)[1]
    named: set[str] = set()
    parent = ""
    for line in block.splitlines():
        match = re.match(r"( +)(\S+?(?:\.py|/))(?:\s|$)", line)
        if match is None:
            continue
        depth, entry = len(match.group(1)), match.group(2)
        if depth == 2:
            parent = entry if entry.endswith("/") else ""
            named.add(entry)
        elif depth == 4 and parent:
            named.add(parent + entry)
    return named


def _package_entries(root: Path = PACKAGE) -> set[str]:
    """The modules and subpackages in a folder of mailbot (config.example.toml is a link to the
    top-level file, not code)."""
    skip = {"__init__.py", "__main__.py", "__pycache__"}
    entries: set[str] = set()
    for path in root.iterdir():
        if path.name in skip or path.suffix not in {"", ".py"}:
            continue
        entries.add(path.name + "/" if path.is_dir() else path.name)
    return entries


def test_the_readme_layout_names_what_ls_mailbot_shows() -> None:
    named = _layout_entries(README.read_text(encoding="utf-8"))
    top = {entry for entry in named if "/" not in entry.rstrip("/")}
    assert top == _package_entries()
    # A subpackage the README opens up is listed whole, and only with what is there.
    for package in sorted({entry.split("/", 1)[0] for entry in named - top}):
        inside = {entry.split("/", 1)[1] for entry in named if entry.startswith(package + "/")}
        inside.discard("")
        assert inside == _package_entries(PACKAGE / package), package
