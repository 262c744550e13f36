"""Walk the project's code (AST) and check every TensorRT, pycuda and jetson-utils name it uses
against the conformance table (tests/standins/api_table.json), on the generations each path
serves. The convention it reads is written down in edge/backends/trt_api.py:

- the libraries are the names ``trt``/``_trt``/``tensorrt`` (tensorrt), ``cuda``/``_cuda``
  (pycuda.driver), ``jetson_utils``/``_ju`` (jetson_utils); names annotated with their types
  (``config: "trt.IBuilderConfig"``, ``self.engine: "Optional[trt.ICudaEngine]"``,
  ``Union[...]``) are receivers of that class;
- ``trt.A.B`` must exist as ``A.B``, ``receiver.m`` as ``Class.m`` (``getattr``/``hasattr`` with a
  literal name count too), a subclass of a library class may only override its methods;
- a value taken from a library without an annotation cannot have its attributes used, nor can a
  call's result (``a.b().c``): bind it to an annotated name;
- a TensorRT path serves every column unless ``@serves(...)`` narrows its function, and
  ``if gen.at_least("10.0")``/``below``, ``if hasattr(trt, "X")`` narrow a branch (the branch
  ending in return/raise narrows what follows); a call to a ``@serves`` function must come
  from a path that serves no more than it does.
"""
from __future__ import annotations

import ast
import os
import sys
from dataclasses import dataclass, field
from typing import Dict, FrozenSet, Iterable, List, Optional, Set, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from standins import surface  # noqa: E402

ALIASES = {"trt": "tensorrt", "_trt": "tensorrt", "tensorrt": "tensorrt",
           "cuda": "pycuda.driver", "_cuda": "pycuda.driver",
           "jetson_utils": "jetson_utils", "_ju": "jetson_utils"}
TRT = "tensorrt"
# column -> its floor, as trt_api.FLOORS says (checked against it in the tests)
FLOORS = {"8.5": (8, 5), "8.6": (8, 6), "10.3": (10, 0), "10.13": (10, 8), "11.4": (11, 0)}
ALL = frozenset(FLOORS)


@dataclass
class Use:
    path: str
    line: int
    library: str
    name: str
    columns: FrozenSet[str]


@dataclass
class Report:
    uses: List[Use] = field(default_factory=list)
    errors: List[str] = field(default_factory=list)

    def merge(self, other: "Report") -> None:
        self.uses.extend(other.uses)
        self.errors.extend(other.errors)


def _columns(library: str) -> List[str]:
    return surface.columns(library)


def has(library: str, name: str, column: Optional[str] = None) -> bool:
    if column is None or library != TRT:
        return all(name in surface.names(library, c) for c in _columns(library))
    return name in surface.names(library, column)


# -- annotations -----------------------------------------------------------------------------
Type = Tuple[Tuple[str, str], ...]  # union of (library, class); () for "not a library type"


def _chain(node) -> Optional[List[str]]:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return parts[::-1]
    return None


def parse_annotation(node) -> Type:
    if node is None:
        return ()
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        try:
            node = ast.parse(node.value, mode="eval").body
        except SyntaxError:
            return ()
    if isinstance(node, ast.Subscript):
        head = _chain(node.value) or []
        inner = node.slice
        if head and head[-1] in ("Optional", "Union"):
            items = inner.elts if isinstance(inner, ast.Tuple) else [inner]
            out: Tuple = ()
            for item in items:
                out += parse_annotation(item)
            return out
        return ()
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return parse_annotation(node.left) + parse_annotation(node.right)
    chain = _chain(node)
    if chain and len(chain) >= 2 and chain[0] in ALIASES:
        return ((ALIASES[chain[0]], ".".join(chain[1:])),)
    return ()


# -- narrowing ---------------------------------------------------------------------------------
def _floor(text: str) -> Tuple[int, int]:
    parts = text.split(".")
    return int(parts[0]), int(parts[1]) if len(parts) > 1 else 0


class Walker:
    def __init__(self, path: str, tree: ast.Module) -> None:
        self.path = os.path.relpath(path, ROOT)
        self.tree = tree
        self.report = Report()
        self.serves: Dict[str, FrozenSet[str]] = {}  # module-level @serves functions (and methods by name)
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                cols = self._decorated(node)
                if cols is not None:
                    self.serves[node.name] = cols

    def error(self, node, msg: str) -> None:
        self.report.errors.append("%s:%d: %s" % (self.path, getattr(node, "lineno", 0), msg))

    def _decorated(self, fn) -> Optional[FrozenSet[str]]:
        for dec in fn.decorator_list:
            if isinstance(dec, ast.Call) and (_chain(dec.func) or [""])[-1] == "serves":
                cols = [a.value for a in dec.args if isinstance(a, ast.Constant)]
                bad = [c for c in cols if c not in FLOORS]
                if bad:
                    self.error(dec, "@serves names unknown columns %s" % bad)
                return frozenset(c for c in cols if c in FLOORS)
        return None

    # -- scopes -------------------------------------------------------------------------
    def run(self) -> Report:
        self.block(self.tree.body, ALL, Scope(None, {}, set(), {}, set()))
        return self.report

    def block(self, stmts: List[ast.stmt], served: FrozenSet[str], scope: "Scope") -> None:
        for stmt in stmts:
            if not served:
                return  # unreachable for every column
            served = self.statement(stmt, served, scope)

    def statement(self, stmt: ast.stmt, served: FrozenSet[str], scope: "Scope") -> FrozenSet[str]:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            self.function(stmt, served, scope)
            return served
        if isinstance(stmt, ast.ClassDef):
            self.klass(stmt, served, scope)
            return served
        if isinstance(stmt, ast.If):
            yes, no = self.narrow(stmt.test, served, scope)
            self.expr(stmt.test, served, scope, in_test=True)
            self.block(stmt.body, yes, scope)
            self.block(stmt.orelse, no, scope)
            body_ends = _terminates(stmt.body)
            else_ends = bool(stmt.orelse) and _terminates(stmt.orelse)
            if body_ends and else_ends:
                return frozenset()
            if body_ends:
                return no
            if else_ends:
                return yes
            return served
        if isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            value = stmt.value
            if value is not None:
                self.expr(value, served, scope)
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            for t in targets:
                if isinstance(stmt, ast.AnnAssign):
                    continue  # its type was collected with the scope
                key = _target_key(t)
                if key and value is not None and self.is_api(value, scope) and not scope.typed(key):
                    scope.derived(key)
                if not key:
                    self.expr(t, served, scope)
            return served
        if isinstance(stmt, (ast.For, ast.AsyncFor)):
            self.expr(stmt.iter, served, scope)
            key = _target_key(stmt.target)
            if key and self.is_api(stmt.iter, scope) and not scope.typed(key):
                scope.derived(key)
            self.block(stmt.body, served, scope)
            self.block(stmt.orelse, served, scope)
            return served
        # everything else: walk its expressions and nested blocks with the same columns
        for name, value in ast.iter_fields(stmt):
            if isinstance(value, list) and value and isinstance(value[0], ast.stmt):
                self.block(value, served, scope)
            elif isinstance(value, list):
                for v in value:
                    if isinstance(v, ast.AST):
                        self.generic(v, served, scope)
            elif isinstance(value, ast.AST):
                self.generic(value, served, scope)
        return served

    def generic(self, node, served, scope) -> None:
        if isinstance(node, ast.expr):
            self.expr(node, served, scope)
        elif isinstance(node, ast.ExceptHandler):
            if node.type is not None:
                self.expr(node.type, served, scope)
            self.block(node.body, served, scope)
        else:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.stmt):
                    self.statement(child, served, scope)
                else:
                    self.generic(child, served, scope)

    def function(self, fn, served, outer: "Scope") -> None:
        cols = self._decorated(fn)
        inner = served & cols if cols is not None else served
        types: Dict[str, Type] = {}
        args = fn.args
        for a in list(args.posonlyargs) + list(args.args) + list(args.kwonlyargs) + \
                [x for x in (args.vararg, args.kwarg) if x is not None]:
            if a.annotation is not None:  # an unannotated parameter named like a library is that library
                types[a.arg] = parse_annotation(a.annotation)
        for node in _own_nodes(fn.body):
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                types[node.target.id] = parse_annotation(node.annotation)
        for d in list(args.defaults) + [d for d in args.kw_defaults if d is not None]:
            self.expr(d, served, outer)
        scope = Scope(outer, types, set(), outer.self_types if outer else {}, outer.self_derived if outer else set())
        self.block(fn.body, inner, scope)

    def klass(self, cls: ast.ClassDef, served, outer: "Scope") -> None:
        bases = []
        for b in cls.bases:
            self.expr(b, served, outer)
            chain = _chain(b)
            if chain and chain[0] in ALIASES and len(chain) >= 2:
                bases.append((ALIASES[chain[0]], ".".join(chain[1:])))
        for lib, base in bases:
            for item in cls.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and \
                        (not item.name.startswith("_") or item.name == "__init__"):
                    self.check(item, lib, "%s.%s" % (base, item.name), served,
                               "overrides %s.%s" % (base, item.name))
        self_types: Dict[str, Type] = {}
        self_derived: Set[str] = set()
        for node in ast.walk(cls):
            if isinstance(node, ast.AnnAssign) and _is_self_attr(node.target):
                self_types[node.target.attr] = parse_annotation(node.annotation)
        scope = Scope(outer, {}, set(), self_types, self_derived)
        # self.X = <library value> anywhere in the class makes X derived for every method
        for node in ast.walk(cls):
            if isinstance(node, ast.Assign):
                for t in node.targets:
                    if _is_self_attr(t) and t.attr not in self_types and self.is_api(node.value, scope):
                        self_derived.add(t.attr)
        self.block(cls.body, served, scope)

    # -- expressions ------------------------------------------------------------------------
    def receiver(self, node, scope: "Scope"):
        """What ``node`` is: ("alias", lib) | ("typed", ((lib, cls),...)) | ("derived",) | None."""
        if isinstance(node, ast.Name):
            if scope.is_typed(node.id):
                t = scope.type_of(node.id)
                return ("typed", t) if t else None
            if node.id in scope.derived_names():
                return ("derived",)
            if node.id in ALIASES:
                return ("alias", ALIASES[node.id])
            return None
        if _is_self_attr(node):
            attr = node.attr
            if attr in scope.self_types:
                t = scope.self_types[attr]
                return ("typed", t) if t else None
            if attr in scope.self_derived:
                return ("derived",)
            if attr in ALIASES:
                return ("alias", ALIASES[attr])
        return None

    def is_api(self, node, scope) -> bool:
        """Whether ``node`` evaluates to something taken from a library (a call or attribute on one)."""
        base = node
        while True:
            if isinstance(base, ast.Call):
                base = base.func
            elif isinstance(base, ast.Attribute):
                if self.receiver(base, scope) is not None:
                    break
                base = base.value
            elif isinstance(base, ast.BoolOp):
                return any(self.is_api(v, scope) for v in base.values)
            else:
                break
        r = self.receiver(base, scope)
        return r is not None and base is not node

    def expr(self, node, served, scope, in_test: bool = False) -> None:
        if isinstance(node, ast.Lambda):
            self.expr(node.body, served, Scope(scope, {}, set(), scope.self_types, scope.self_derived))
            return
        if isinstance(node, ast.Attribute):
            self.attribute(node, served, scope)
            return
        if isinstance(node, ast.Call):
            fname = _chain(node.func)
            if fname and fname[-1] in ("getattr", "hasattr") and len(fname) == 1 and len(node.args) >= 2 \
                    and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str):
                if not (in_test and fname[-1] == "hasattr"):
                    self.member(node, node.args[0], node.args[1].value, served, scope)
            callee = None
            if isinstance(node.func, ast.Name):
                callee = node.func.id
            elif _is_self_attr(node.func):
                callee = node.func.attr
            if callee in self.serves and not served <= self.serves[callee]:
                self.error(node, "calls %s (serves %s) from a path serving %s"
                           % (callee, _fmt(self.serves[callee]), _fmt(served)))
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.expr):
                self.expr(child, served, scope, in_test=in_test and isinstance(node, (ast.BoolOp, ast.UnaryOp)))
            elif isinstance(child, ast.comprehension):
                self.expr(child.iter, served, scope)
                for cond in child.ifs:
                    self.expr(cond, served, scope)
            elif isinstance(child, ast.keyword):
                self.expr(child.value, served, scope)

    def attribute(self, node: ast.Attribute, served, scope) -> None:
        chain_nodes = []
        base = node
        while isinstance(base, ast.Attribute):
            chain_nodes.append(base)
            r = self.receiver(base, scope) if _is_self_attr(base) else None
            if r is not None:
                break
            base = base.value
        chain_nodes.reverse()  # innermost first
        r = self.receiver(base, scope)
        if r is None:
            # not rooted at a library: a call result of one? (``a.b().c``)
            inner = base
            if isinstance(inner, ast.Call) and self.is_api(inner, scope):
                self.error(node, "attribute %r of a library call's result: bind the result to an annotated "
                                 "name first" % node.attr)
            self.expr(base, served, scope)
            return
        if r[0] == "derived":
            self.error(node, "%s holds a library value with no annotated type; annotate it "
                             "(name: \"lib.Class\" = ...) so its attributes can be checked" % ast.unparse(base))
            return
        attrs = [a.attr for a in chain_nodes if a is not base]
        if not attrs:
            return
        if r[0] == "alias":
            lib = r[1]
            for i in range(1, len(attrs) + 1):
                self.check(node, lib, ".".join(attrs[:i]), served, "uses")
        else:
            for lib, cls in r[1]:
                self.check(node, lib, "%s.%s" % (cls, attrs[0]), served, "uses")
            if len(attrs) > 1:
                self.error(node, "%s.%s: a member's own attributes cannot be checked; bind %s to an annotated "
                                 "name" % (ast.unparse(base), ".".join(attrs), attrs[0]))

    def member(self, node, recv, name: str, served, scope) -> None:
        r = self.receiver(recv, scope)
        if r is None and isinstance(recv, ast.Attribute):
            chain = _chain(recv)
            if chain and chain[0] in ALIASES:
                self.check(node, ALIASES[chain[0]], ".".join(chain[1:] + [name]), served, "getattr")
            return
        if r is None:
            return
        if r[0] == "alias":
            self.check(node, r[1], name, served, "getattr")
        elif r[0] == "typed":
            for lib, cls in r[1]:
                self.check(node, lib, "%s.%s" % (cls, name), served, "getattr")

    def check(self, node, lib: str, name: str, served, how: str) -> None:
        cols = served if lib == TRT else frozenset(_columns(lib))
        self.report.uses.append(Use(self.path, getattr(node, "lineno", 0), lib, name, frozenset(cols)))
        if lib == TRT:
            missing = sorted((c for c in cols if not has(lib, name, c)), key=lambda c: FLOORS[c])
        else:
            missing = [] if has(lib, name) else list(cols)
        if missing:
            self.error(node, "%s %s %s, which %s %s lacks (this path serves %s)"
                       % (how, lib, name, lib, ", ".join(missing), _fmt(cols)))

    # -- narrowing ---------------------------------------------------------------------------
    def narrow(self, test, served, scope) -> Tuple[FrozenSet[str], FrozenSet[str]]:
        if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            yes, no = self.narrow(test.operand, served, scope)
            return no, yes
        if isinstance(test, ast.BoolOp):
            parts = [self.narrow(v, served, scope) for v in test.values]
            if isinstance(test.op, ast.And):
                return frozenset.intersection(*[p[0] for p in parts]), frozenset.union(*[p[1] for p in parts])
            return frozenset.union(*[p[0] for p in parts]), frozenset.intersection(*[p[1] for p in parts])
        if isinstance(test, ast.Call):
            name = _chain(test.func)
            if isinstance(test.func, ast.Attribute) and test.func.attr in ("at_least", "below") and test.args \
                    and isinstance(test.args[0], ast.Constant):
                text = str(test.args[0].value)
                floor = _floor(text)
                if floor not in FLOORS.values():
                    self.error(test, "%s(%r): gate on a column's floor (%s) so the table and the running version "
                                     "agree" % (test.func.attr, text,
                                                ", ".join("%d.%d" % f for f in FLOORS.values())))
                yes = frozenset(c for c in served if FLOORS[c] >= floor)
                if test.func.attr == "below":
                    yes = served - yes
                return yes, served - yes
            if name == ["hasattr"] and len(test.args) == 2 and isinstance(test.args[1], ast.Constant):
                recv, attr = test.args[0], str(test.args[1].value)
                target = None
                r = self.receiver(recv, scope)
                if r and r[0] == "alias" and r[1] == TRT:
                    target = attr
                elif r and r[0] == "typed" and r[1] and r[1][0][0] == TRT:
                    target = "%s.%s" % (r[1][0][1], attr)
                elif isinstance(recv, ast.Attribute) and (_chain(recv) or [""])[0] in ALIASES:
                    chain = _chain(recv)
                    if ALIASES[chain[0]] == TRT:
                        target = ".".join(chain[1:] + [attr])
                if target is not None:
                    yes = frozenset(c for c in served if has(TRT, target, c))
                    return yes, served - yes
        return served, served


class Scope:
    def __init__(self, outer: Optional["Scope"], types: Dict[str, Type], derived: Set[str],
                 self_types: Dict[str, Type], self_derived: Set[str]) -> None:
        self.outer, self.types, self._derived = outer, types, derived
        self.self_types, self.self_derived = self_types, self_derived

    def is_typed(self, name: str) -> bool:
        s = self
        while s is not None:
            if name in s.types:
                return True
            if name in s._derived:
                return False
            s = s.outer
        return False

    def typed(self, key: str) -> bool:
        if key.startswith("self."):
            return key[5:] in self.self_types
        return self.is_typed(key)

    def type_of(self, name: str) -> Type:
        s = self
        while s is not None:
            if name in s.types:
                return s.types[name]
            s = s.outer
        return ()

    def derived(self, key: str) -> None:
        if key.startswith("self."):
            self.self_derived.add(key[5:])
        elif key not in ALIASES:
            self._derived.add(key)

    def derived_names(self) -> Set[str]:
        out: Set[str] = set()
        s = self
        while s is not None:
            out |= s._derived
            s = s.outer
        return out


def _target_key(t) -> Optional[str]:
    if isinstance(t, ast.Name):
        return t.id
    if _is_self_attr(t):
        return "self." + t.attr
    return None


def _is_self_attr(node) -> bool:
    return isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self"


def _own_nodes(body: List[ast.stmt]) -> Iterable[ast.AST]:
    """Nodes of a function body, not descending into nested functions or classes."""
    stack = list(body)
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
                stack.append(child)


def _terminates(body: List[ast.stmt]) -> bool:
    return bool(body) and isinstance(body[-1], (ast.Return, ast.Raise, ast.Continue, ast.Break))


def _fmt(cols) -> str:
    return "{%s}" % ", ".join(sorted(cols, key=lambda c: FLOORS.get(c, (0, 0)))) if cols else "{}"


def walk_source(source: str, path: str = "<string>") -> Report:
    return Walker(path, ast.parse(source)).run()


def project_files() -> List[str]:
    out = []
    for top in ("edge", "commands", "benches", "evaluation", "calibration"):
        for dirpath, _, files in os.walk(os.path.join(ROOT, top)):
            out.extend(os.path.join(dirpath, f) for f in files if f.endswith(".py"))
    return sorted(out)


def walk_project() -> Report:
    report = Report()
    for path in project_files():
        with open(path) as f:
            report.merge(Walker(path, ast.parse(f.read(), path)).run())
    return report
