"""The solution rule, read with `ast`: what tests/test_notebook_solutions.py checks (its docstring states the rule)."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

TRAINING_NAMES = {"train", "train_cached", "train_seeds"}


def cell_source(cell: dict) -> str:
    """A cell's source as one string."""
    return "".join(cell["source"])


def cell_tags(cell: dict) -> list[str]:
    """A cell's tags."""
    return cell.get("metadata", {}).get("tags", [])


def _parse(source: str) -> ast.Module:
    """Python of a code cell; IPython magics and shell lines (`%...`, `!...`) become `pass`."""
    return ast.parse(re.sub(r"(?m)^(\s*)[%!].*$", r"\1pass", source))


def _free(name: str) -> bool:
    return name.startswith(("sol_", "_"))


def _root(node: ast.AST) -> str | None:
    """The name an item/attribute chain starts from (`d` in `d["a"].b`), if any."""
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Starred)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


@dataclass
class Scan:
    """What one cell does at module level: names bound, imports, objects mutated, names read, training calls."""

    bound: set[str] = field(default_factory=set)
    imports: set[tuple[str, str, str]] = field(default_factory=set)  # (module, name, bound as)
    mutated: set[str] = field(default_factory=set)
    read: set[str] = field(default_factory=set)
    trains: list[str] = field(default_factory=list)


def _local_names(node: ast.AST, kind: str) -> set[str]:
    """Names a function, lambda or comprehension binds for itself: its arguments or loop targets, and its stores."""
    names: set[str] = set()
    if kind == "comprehension":
        for gen in node.generators:  # type: ignore[attr-defined]
            names |= {n.id for n in ast.walk(gen.target) if isinstance(n, ast.Name)}
        return names
    args = node.args  # type: ignore[attr-defined]
    names |= {
        a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg] if a is not None
    }
    body = node.body if isinstance(node.body, list) else [node.body]  # type: ignore[attr-defined]
    for stmt in body:
        names |= {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    return names


class _Scanner(ast.NodeVisitor):
    """Collects a `Scan`; function, lambda and comprehension bodies bind only local names."""

    def __init__(self) -> None:
        self.scan = Scan()
        self.scopes: list[str] = []  # "function" or "comprehension", innermost last
        self.locals: list[set[str]] = []  # the names each of those scopes binds itself

    @property
    def local(self) -> bool:
        return bool(self.scopes)

    def _target(self, node: ast.AST) -> None:
        if isinstance(node, (ast.Attribute, ast.Subscript)) and not self.local and (root := _root(node)):
            self.scan.mutated.add(root)
        self.visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            if not any(node.id in names for names in self.locals):  # a local's read is no module-level read
                self.scan.read.add(node.id)
        elif not self.local:
            self.scan.bound.add(node.id)

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            self._target(target)
        self.visit(node.value)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self._target(node.target)
        if isinstance(node.target, ast.Name):
            self.scan.read.add(node.target.id)
        self.visit(node.value)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._target(node.target)
        if node.value is not None:
            self.visit(node.value)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        if all(kind == "comprehension" for kind in self.scopes):  # a walrus in a comprehension binds outside it
            self.scan.bound.add(node.target.id)
        self.visit(node.value)

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.name and not self.local:
            self.scan.bound.add(node.name)
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            bound = alias.asname or alias.name.split(".")[0]
            self.scan.imports.add((alias.name, "", bound))
            if not self.local:
                self.scan.bound.add(bound)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for alias in node.names:
            bound = alias.asname or alias.name
            self.scan.imports.add((f"{'.' * node.level}{node.module or ''}", alias.name, bound))
            if not self.local:
                self.scan.bound.add(bound)

    def visit_Delete(self, node: ast.Delete) -> None:
        for target in node.targets:
            self._target(target)

    def _scope(self, node: ast.AST, name: str | None = None, kind: str = "function") -> None:
        if name and not self.local:
            self.scan.bound.add(name)
        decorators = getattr(node, "decorator_list", [])
        for deco in decorators:
            self.visit(deco)
        self.scopes.append(kind)
        self.locals.append(_local_names(node, kind))
        for child in ast.iter_child_nodes(node):
            if not any(child is d for d in decorators):
                self.visit(child)
        self.scopes.pop()
        self.locals.pop()

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._scope(node, node.name)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._scope(node, node.name)

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._scope(node)

    def _comprehension(self, node: ast.AST) -> None:
        self._scope(node, kind="comprehension")

    visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = _comprehension

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Name) and func.id in TRAINING_NAMES:
            self.scan.trains.append(func.id)
        elif isinstance(func, ast.Attribute):
            owner = _root(func.value)
            if (
                func.attr in TRAINING_NAMES - {"train"}
                or (func.attr == "train" and owner == "training")
                or (func.attr.startswith("train_") and owner == "ablations")
            ):
                self.scan.trains.append(f"{owner}.{func.attr}")
        self.generic_visit(node)


def scan(source: str) -> Scan:
    """Read one cell's source with `ast` (see the module docstring for what counts)."""
    scanner = _Scanner()
    scanner.visit(_parse(source))
    return scanner.scan


def solution_problems(cells: list[dict]) -> list[str]:
    """Every way the cells of one notebook break the solution rule, as readable lines (empty: none)."""
    problems: list[str] = []
    earlier_imports: set[tuple[str, str, str]] = set()
    for i, cell in enumerate(cells):
        if cell["cell_type"] != "code":
            continue
        tags = cell_tags(cell)
        if "exercise" in tags:
            after = cells[i + 1] if i + 1 < len(cells) else None
            if after is None or "solution" not in cell_tags(after):
                problems.append(f"cell {i}: exercise not followed by a solution cell")
        if "solution" not in tags:
            earlier_imports |= scan(cell_source(cell)).imports
            continue
        where = f"cell {i} (solution)"
        if cell["metadata"].get("jupyter", {}).get("source_hidden") is not True:
            problems.append(f"{where}: source not hidden")
        if not cell_source(cell).startswith("# Solution"):
            problems.append(f"{where}: does not start with '# Solution'")
        found = scan(cell_source(cell))
        allowed = {imp[2] for imp in found.imports if imp in earlier_imports}
        if clobbered := sorted(n for n in found.bound if not _free(n) and n not in allowed):
            problems.append(f"{where}: binds {clobbered} (use sol_ or _ names)")
        if mutated := sorted(n for n in found.mutated if not _free(n) and n not in found.bound):
            problems.append(f"{where}: mutates lesson objects {mutated}")
        if found.trains:
            problems.append(f"{where}: trains ({', '.join(found.trains)})")
        mine = found.bound - allowed
        for j, later in enumerate(cells[i + 1 :], start=i + 1):
            if later["cell_type"] == "code":
                other = scan(cell_source(later))
                if leaked := sorted((other.read - other.bound) & mine):
                    problems.append(f"cell {j} reads {leaked}, bound by the solution in cell {i}")
    return problems
