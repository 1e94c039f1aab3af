"""The package layout keeps its rules: who may import whom, no private names across modules,
no class or function a reader cannot hold in their head.  Read from the source with `ast`."""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "minimovinet"
MAX_LINES = 200          # the longest class or function allowed

# sub-package -> the minimovinet modules / sub-packages it must not import
FORBIDDEN = {
    "float32": ("int8", "formats", "apps", "cli"),
    "int8": ("apps", "cli"),
    "formats": ("apps", "cli"),
    "apps": ("cli",),
}
# the shared modules import no sub-package at module level (they are what the others build on)
SHARED = ("config", "structure", "contract", "errors", "threads", "atomic", "jit_cache")


def modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        yield ".".join(rel.parts).removesuffix(".__init__"), path


def imports(name, path):
    """(imported module, imported names, line) of every import in the file, made absolute."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            yield module, [a.name for a in node.names], node.lineno
        elif isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, [], node.lineno


def top_level_imports(path):
    tree = ast.parse(path.read_text())
    return [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]


ALL = list(modules())


@pytest.mark.parametrize("name,path", ALL, ids=[n for n, _ in ALL])
def test_import_rules(name, path):
    parts = name.split(".")            # ['minimovinet', sub-package or module, ...]
    sub = parts[1] if len(parts) > 1 and (PACKAGE / parts[1]).is_dir() else None
    for module, names, line in imports(name, path):
        if not module.startswith("minimovinet"):
            continue
        target = module.split(".")
        if sub in FORBIDDEN and len(target) > 1:
            assert target[1] not in FORBIDDEN[sub], \
                f"{name}:{line} imports {module}: {sub} must not import {target[1]}"
        # no private name of another module (a module's own privates are its business)
        for imported in names:
            if imported.startswith("_") and not imported.startswith("__") and module != name:
                pytest.fail(f"{name}:{line} imports the private name {imported} from {module}")
        if target[-1].startswith("_") and target[-1] not in ("__init__", "__main__"):
            pytest.fail(f"{name}:{line} imports the private module {module}")


@pytest.mark.parametrize("shared", SHARED)
def test_shared_modules_import_no_sub_package(shared):
    path = PACKAGE / f"{shared}.py"
    if not path.exists():
        pytest.fail(f"minimovinet/{shared}.py is missing")
    for node in top_level_imports(path):
        if isinstance(node, ast.ImportFrom) and node.level and node.module:
            assert node.module.split(".")[0] in SHARED, \
                f"{shared}.py imports .{node.module} at module level"


def test_float32_and_int8_share_no_private_names():
    """float32 and int8 never import each other's private names (int8 may use float32's public
    `Movinet` for dequantize())."""
    for name, path in ALL:
        for module, names, line in imports(name, path):
            for a, b in (("float32", "int8"), ("int8", "float32")):
                if name.startswith(f"minimovinet.{a}") and module.startswith(f"minimovinet.{b}"):
                    assert all(not n.startswith("_") for n in names), (name, line, module)


@pytest.mark.parametrize("name,path", ALL, ids=[n for n, _ in ALL])
def test_no_class_or_function_over_the_limit(name, path):
    tree = ast.parse(path.read_text())
    long = [(node.name, node.end_lineno - node.lineno + 1) for node in ast.walk(tree)
            if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_LINES]
    assert not long, f"{name}: {long} over {MAX_LINES} lines"


@pytest.mark.parametrize("sub", ["float32", "int8", "formats", "apps"])
def test_sub_packages_say_what_they_hold_and_may_import(sub):
    doc = ast.get_docstring(ast.parse((PACKAGE / sub / "__init__.py").read_text()))
    assert doc and "import" in doc, f"minimovinet/{sub}/__init__.py needs a docstring saying " \
                                    f"what it holds and what it may import"
    for path in sorted((PACKAGE / sub).glob("*.py")):
        if path.name != "__init__.py":
            assert path.stem in doc, f"{sub}/__init__.py does not list {path.name}"
