"""LearnHub's own imports: no cycle in hub/ or extensions/, no unlisted function-level one."""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# Import name -> source folder, as [tool.setuptools.package-dir] maps them.
PACKAGES = {"learnhub": REPO / "hub", "learnhub_singleuser": REPO / "extensions"}
# Not Python modules of the packages: a JupyterLab build tree and nbgrader's config file.
SKIPPED = {"labextension", "labextension-src", "node_modules", "jupyter_config"}

# A function-level import of a LearnHub module hides an edge from this graph's readers and
# usually a cycle: each one is listed here, "module:imported module", with why it stays.
FUNCTION_LEVEL_IMPORTS: dict[str, str] = {}

# Processes that must not load a module (and what it would bring), from their entry modules.
NOT_IMPORTED = [
    pytest.param(
        ["learnhub.config", "learnhub.auth"],
        "learnhub.grading",
        id="hub-process-no-grading",  # learnhub.grading loads nbgrader's autograde (~2 s)
    ),
    pytest.param(
        ["learnhub_singleuser.extension"],
        "learnhub",
        id="learner-server-no-hub-package",  # the learner image's server needs no hub code
    ),
]


def module_files() -> dict[str, Path]:
    modules = {}
    for package, root in PACKAGES.items():
        for path in sorted(root.rglob("*.py")):
            relative = path.relative_to(root)
            if SKIPPED & set(relative.parts):
                continue
            parts = [package, *relative.with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


MODULES = module_files()


def _resolve(name: str) -> str | None:
    """The LearnHub module an import of `name` loads, or None for another distribution."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _is_type_checking(node: ast.If) -> bool:
    return "TYPE_CHECKING" in ast.unparse(node.test)


def imports_of(module: str) -> list[tuple[str, bool, int]]:
    """(imported LearnHub module, inside a function, line) of each import in `module`,
    except those under `if TYPE_CHECKING:`, which never run."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []

    def targets(node) -> list[str]:
        if isinstance(node, ast.Import):
            return [alias.name for alias in node.names]
        if node.level:
            base = package.split(".")
            base = base[: len(base) - node.level + 1]
            origin = ".".join(base + ([node.module] if node.module else []))
        else:
            origin = node.module or ""
        # `from package import submodule` loads the submodule; `from module import name`
        # loads the module.
        return [
            f"{origin}.{alias.name}" if f"{origin}.{alias.name}" in MODULES else origin
            for alias in node.names
        ]

    def visit(node, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for statement in child.orelse:
                    visit_one(statement, in_function)
                continue
            visit_one(child, in_function)

    def visit_one(node, in_function: bool) -> None:
        if isinstance(node, ast.Import | ast.ImportFrom):
            for name in targets(node):
                target = _resolve(name)
                if target and target != module:
                    found.append((target, in_function, node.lineno))
        in_function = in_function or isinstance(
            node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
        )
        visit(node, in_function)

    visit(ast.parse(path.read_text(encoding="utf-8")), False)
    return found


GRAPH = {module: imports_of(module) for module in MODULES}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a path a -> b -> ... -> a, or None."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def walk(module: str) -> list[str] | None:
        state[module] = "open"
        stack.append(module)
        for target in sorted(edges.get(module, ())):
            if state.get(target) == "open":
                return [*stack[stack.index(target) :], target]
            if target not in state and (cycle := walk(target)):
                return cycle
        stack.pop()
        state[module] = "done"
        return None

    for module in sorted(edges):
        if module not in state and (cycle := walk(module)):
            return cycle
    return None


def test_the_graph_sees_both_packages_and_their_imports():
    assert {"learnhub.cli", "learnhub.auth", "learnhub_singleuser.extension"} <= set(MODULES)
    assert ("learnhub.store", False) in {(t, f) for t, f, _ in GRAPH["learnhub.auth"]}
    assert ("learnhub_singleuser.headers", False) in {
        (t, f) for t, f, _ in GRAPH["learnhub_singleuser.extension"]
    }


@pytest.mark.parametrize(
    ("edges", "cycle"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, None),
        ({"a": {"b"}, "b": {"a"}}, ["a", "b", "a"]),
        ({"a": {"b"}, "b": {"c"}, "c": {"b"}}, ["b", "c", "b"]),
    ],
    ids=["chain", "pair", "tail-then-loop"],
)
def test_find_cycle(edges, cycle):
    assert find_cycle(edges) == cycle


def test_no_import_cycle_in_hub_or_extensions():
    edges = {module: {target for target, _, _ in found} for module, found in GRAPH.items()}
    cycle = find_cycle(edges)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_function_level_imports_of_learnhub_modules_are_listed():
    found = {
        f"{module}:{target}": f"{MODULES[module].relative_to(REPO)}:{line}"
        for module, imports in GRAPH.items()
        for target, in_function, line in imports
        if in_function
    }
    unlisted = {k: v for k, v in found.items() if k not in FUNCTION_LEVEL_IMPORTS}
    assert not unlisted, (
        "import these at the top of the module, or list them in FUNCTION_LEVEL_IMPORTS "
        f"with the reason: {unlisted}"
    )
    assert set(FUNCTION_LEVEL_IMPORTS) <= set(found), "listed but gone: remove them from the list"


@pytest.mark.parametrize(("entries", "avoided"), NOT_IMPORTED)
def test_process_does_not_load(entries, avoided):
    seen, todo = set(), list(entries)
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        # Packages load their parents first.
        parents = [module.rsplit(".", n)[0] for n in range(1, module.count(".") + 1)]
        todo += [t for t, in_function, _ in GRAPH[module] if not in_function] + parents
    loaded = sorted(m for m in seen if m == avoided or m.startswith(avoided + "."))
    assert not loaded, f"{entries} load {loaded}"
