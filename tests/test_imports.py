"""The house's import rules, checked on the source: layers in dependency order, no cycle, one
namespace, imports at the top of modules except the heavy optional backends named below.

Layers (an import may only point down, or within its own package):
    cli -> commands -> api -> studies -> lifters -> core -> cache      (lifters never imports pipeline)
                                    \\-> pipeline -> core
cli.py's command tables name the command modules as strings, imported when a command runs
(core.config_io.registered): they count as imports of cli.
"""
from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

from auglift.cli import main
from auglift.commands.common import LazyGroup

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("cache", "core", "pipeline", "lifters", "studies", "commands")
LAYER = {"cache": 0, "core": 1, "pipeline": 2, "lifters": 2, "studies": 3, "api": 4, "commands": 5, "cli": 6}
OWN_NAMES = set(LAYER)

# Third-party modules that may be imported inside a function, and why: each is heavy to import or
# optional, so that `auglift --help`, listing a registry or a worker that never uses it stays light.
LAZY_OK = {
    "torch": "1-2 s to import; cache readers, config code and the Dask scheduler side do not need it",
    "cv2": "OpenCV: only the video/drawing paths and thread pinning use it",
    "av": "PyAV: only video decoding and writing",
    "PIL": "Pillow: only image files",
    "mediapipe": "the BlazePose backend (embedded default), loaded when a detector is built",
    "google": "protobuf parts of mediapipe's graph, with it",
    "mmpose": "optional RTMPose backend (make setup-rtmpose)",
    "mmdet": "optional RTMDet person detector (make setup-rtmpose)",
    "mmcv": "optional, with mmpose",
    "mmengine": "optional, with mmpose",
    "onnxruntime": "optional extra (.[onnx]) for Depth Anything on ONNX Runtime",
    "onnx": "optional extra (.[onnx])",
    "transformers": "Depth Anything's architecture, loaded when that backend is built",
    "matplotlib": "figures only",
    "distributed": "Dask's cluster machinery, only when a run uses a cluster",
    "dask": "with distributed",
    "zarr": "a shard backend, imported by the backend that opens it",
    "h5py": "a shard backend, imported by the backend that opens it",
    "cdflib": "only Human3.6M's original CDF pose files",
    "scipy": "only 3DHP's .mat annotations",
}


def modules() -> dict[str, Path]:
    """auglift module name (without the `auglift.` prefix) -> file."""
    found = {"cli": REPO / "cli.py", "api": REPO / "api.py"}
    for pkg in PACKAGES:
        for path in (REPO / pkg).rglob("*.py"):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def imports_of(name: str, path: Path, known: set[str]) -> list[tuple[str, int, bool]]:
    """(imported auglift module, line, inside a function) for every first-party import of a module."""
    tree = ast.parse(path.read_text())
    inner = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
             for n in ast.walk(f)}
    is_pkg = path.name == "__init__.py"
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            elif (node.module or "").startswith("auglift."):
                target = node.module[len("auglift."):]
            else:
                continue
            for alias in node.names:  # `from pkg import submodule` is an edge to the submodule
                sub = f"{target}.{alias.name}"
                out.append((sub if sub in known else target, node.lineno, id(node) in inner))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("auglift."):
                    out.append((alias.name[len("auglift."):], node.lineno, id(node) in inner))
    return out


def command_table_edges() -> list[tuple[str, int, bool]]:
    """(command module, line of cli.py, False) for every command the tables of cli.py name: the lazy
    imports of cli, which must obey the layers like the others."""
    lines = (REPO / "cli.py").read_text().splitlines()
    groups = [main, *(cmd for cmd in main.commands.values() if isinstance(cmd, LazyGroup))]
    targets = [target for group in groups for target in group.registry.values()]
    return [("commands." + target.partition(":")[0], next(i for i, ln in enumerate(lines, 1) if f'"{target}"' in ln),
             False) for target in targets]


def top(module: str) -> str:
    return module.split(".")[0]


@pytest.fixture(scope="module")
def graph() -> dict[str, list[tuple[str, int, bool]]]:
    mods = modules()
    found = {name: imports_of(name, path, set(mods)) for name, path in mods.items()}
    found["cli"] += command_table_edges()
    return found


def test_command_tables_name_command_modules():
    missing = [f"cli.py:{line}: {module}" for module, line, _ in command_table_edges() if module not in modules()]
    assert not missing, "command tables naming no module of auglift.commands:\n" + "\n".join(missing)


def test_imports_point_down_the_layers(graph):
    upward = [f"{src} -> {dst} (line {line})" for src, edges in graph.items() for dst, line, _ in edges
              if top(dst) != top(src) and LAYER[top(dst)] >= LAYER[top(src)]]
    assert not upward, "imports against the layering:\n" + "\n".join(upward)


def test_no_import_cycle(graph):
    # A package's __init__ re-exporting its submodules is not a cycle; a submodule importing its
    # own package's __init__ back would be, and is counted.
    edges = {src: {dst for dst, _, _ in e if dst != src} for src, e in graph.items()}
    state, stack, cycles = {}, [], []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt in edges and not state.get(nxt):
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if not state.get(node):
            visit(node)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_first_party_imports_are_at_module_top(graph):
    inner = [f"{src}: auglift.{dst} (line {line})" for src, edges in graph.items() for dst, line, lazy in edges
             if lazy]
    assert not inner, "first-party imports inside functions:\n" + "\n".join(inner)


def test_only_heavy_backends_are_imported_lazily():
    stdlib = set(sys.stdlib_module_names)
    bad = []
    for name, path in modules().items():
        tree = ast.parse(path.read_text())
        for f in ast.walk(tree):
            if not isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(f):
                if isinstance(node, ast.Import):
                    mods = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and not node.level:
                    mods = [node.module or ""]
                else:
                    continue
                for m in mods:
                    root = m.split(".")[0]
                    if root != "auglift" and (root in stdlib or root not in LAZY_OK):
                        bad.append(f"{path.relative_to(REPO)}:{node.lineno}: {m}")
    assert not bad, "imports inside functions that belong at the top of the module:\n" + "\n".join(bad)


def test_one_namespace_no_bare_top_level_names():
    bare = []
    for path in [*REPO.glob("*.py"), *(p for d in (*PACKAGES, "tests", "bench") for p in (REPO / d).rglob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([node.module] if isinstance(node, ast.ImportFrom) and not node.level and node.module else
                     [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            if isinstance(node, ast.Constant) and isinstance(node.value, str):  # code run by `python -c`
                names = re.findall(r"^\s*(?:from|import)\s+([\w.]+)", node.value, re.M)
            bare += [f"{path.relative_to(REPO)}:{node.lineno}: {n}" for n in names if top(n) in OWN_NAMES]
    assert not bare, "imports of auglift's packages without the `auglift.` prefix:\n" + "\n".join(bare)
