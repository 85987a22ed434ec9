"""Every name the package's functions read as a global is defined: the
torch code paths cannot run here (no torch in CI), so a name their imports
forgot would otherwise surface only on a GPU machine."""
import ast
import builtins
import importlib
import os

import pytest

import fa2

MODULES = ["fa2", "fa2.__main__", "fa2._lib", "fa2._numpy", "fa2._torch",
           "fa2.flash_attn_interface", "fa2.testing"]


def global_loads(tree):
    """Names loaded in function bodies that no enclosing function binds."""
    out = set()

    def visit(node, bound):
        if isinstance(node, (ast.FunctionDef, ast.Lambda, ast.ClassDef)):
            inner = set(bound)
            args = node.args if not isinstance(node, ast.ClassDef) else None
            if args:
                for a in args.args + args.kwonlyargs + args.posonlyargs:
                    inner.add(a.arg)
                for a in (args.vararg, args.kwarg):
                    if a:
                        inner.add(a.arg)
            body = node.body if isinstance(node.body, list) else [node.body]
            for n in body:
                for sub in ast.walk(n):
                    if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                        inner.add(sub.id)
                    elif isinstance(sub, (ast.Import, ast.ImportFrom)):
                        for al in sub.names:
                            inner.add((al.asname or al.name).split(".")[0])
                    elif isinstance(sub, (ast.FunctionDef, ast.ClassDef)):
                        inner.add(sub.name)
                    elif isinstance(sub, ast.arg):
                        inner.add(sub.arg)
                    elif isinstance(sub, ast.ExceptHandler) and sub.name:
                        inner.add(sub.name)
            for n in body:
                visit(n, inner)
            return
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and bound is not None:
            if node.id not in bound:
                out.add(node.id)
        for child in ast.iter_child_nodes(node):
            visit(child, bound)

    for node in tree.body:
        visit(node, None if not isinstance(node, (ast.FunctionDef, ast.ClassDef)) else set())
    return out


@pytest.mark.parametrize("name", MODULES)
def test_every_global_a_function_reads_is_defined(name):
    mod = importlib.import_module(name)
    path = mod.__file__
    tree = ast.parse(open(path).read())
    missing = sorted(n for n in global_loads(tree)
                     if not hasattr(mod, n) and not hasattr(builtins, n))
    assert not missing, "%s: undefined globals %s" % (os.path.basename(path), missing)


def test_the_check_finds_an_undefined_name():
    tree = ast.parse("def f(x):\n    return Tensor(x) + len(x)\n")
    assert global_loads(tree) == {"Tensor", "len"}
    assert fa2  # the package imported
