#!/usr/bin/env python3
"""Write tests/standins/api_table.json: the names each generation of TensorRT, pycuda and
jetson-utils exposes to Python. Run by hand (it downloads); tests only read the table.

    python scripts/api_table.py --tensorrt-repo DIR --pycuda-repo DIR --jetson-utils-repo DIR

Each ``*-repo`` is a git clone (bare is fine) of github.com/NVIDIA/TensorRT,
github.com/inducer/pycuda and github.com/dusty-nv/jetson-utils. No library is imported:
none of them can be, on a machine without a GPU and JetPack.

Where the names come from
- TensorRT 8.5, 8.6, 10.3, 10.13: the pybind11 registrations in ``python/src`` at the release
  tag (``py::class_<T>(m, "Name")``, ``.def("name"``, ``.def_property("name"``,
  ``py::enum_<E>(m, "Name")``, ``.value("NAME"``, base classes), plus what the package's
  ``tensorrt/__init__.py`` adds (``__version__``, ``Logger.Severity``...). Each qualified name
  whose last part is absent from the strings of that version's bindings wheel (the compiled
  ``tensorrt.so`` in ``tensorrt*-bindings`` on PyPI: it names every class, method, property
  and enum value) is dropped and reported: the table holds what was both written and shipped.
  8.5.2 has no bindings wheel on PyPI; its column is the source alone.
- TensorRT 11.4 (JetPack 7.2.2+ ships 11.4.1): no source tag is published past 11.1, so the
  11.1 source qualifies the names and the 11.4.0.106 wheel's strings decide which remain
  (a name is kept when its class and member both appear in the 11.4 ``tensorrt.so``);
  identifiers the 11.4 wheel has and the 11.1 source lacks are listed as ``unplaced``.
- pycuda: the Boost.Python registrations of ``src/wrapper/wrap_cudadrv.cpp`` and
  ``mempool.cpp`` at the tag, plus what ``pycuda/driver.py`` defines or attaches.
- jetson-utils: the CPython method/getset/member tables of ``python/bindings/*.cpp`` at the
  commit, linked to their types through ``tp_methods``/``tp_getset``/``tp_members``/``tp_base``.

Output: per library, its columns and one line per qualified name listing the columns that
have it (``"*"``: all of them), so a diff shows exactly what a new version added or removed.
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import re
import subprocess
import sys
import zipfile
from typing import Dict, Iterable, List, Optional, Set, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, os.pardir, "tests", "standins", "api_table.json")

# column -> (git tag of NVIDIA/TensorRT, bindings wheel spec or None, JetPack it serves)
TENSORRT = {
    "8.5": ("8.5.2", None, "JetPack 5.1.x ships 8.5.2"),
    "8.6": ("v8.6.1", "tensorrt-bindings==8.6.1", "JetPack 6.0 ships 8.6.2"),
    "10.3": ("v10.3.0", "tensorrt-cu12-bindings==10.3.0", "JetPack 6.1/6.2 ship 10.3"),
    "10.13": ("v10.13.3", "tensorrt-cu12-bindings==10.13.3.9", "JetPack 7.0/7.1 ship 10.x"),
    "11.4": ("v11.1", "tensorrt-cu12-bindings==11.4.0.106", "JetPack 7.2.2+ ships 11.4.1"),
}
NEWEST = "11.4"
SOURCE_TAG_WHEEL = "tensorrt-cu12-bindings==11.1.0.106"  # the wheel of the newest source tag
API_WORD = r"^([a-z][a-z0-9]*(_[a-z0-9]+)+|I?[A-Z][a-z]+([A-Z][a-z0-9]+)+|[A-Z][A-Z0-9]*(_[A-Z0-9]+)+)$"
PYCUDA = {"2026.1": "v2026.1"}
JETSON_UTILS = "HEAD"


# -- C++ text --------------------------------------------------------------------------

def strip_cpp(text: str) -> str:
    """Comments removed, string literals kept (raw strings become plain empty literals)."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            i = n if j < 0 else j + 2
            out.append(" ")
        elif c == "R" and text.startswith('R"', i) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'R"([^(\s]*)\(', text[i:])
            if not m:
                out.append(c)
                i += 1
                continue
            end = text.find(")" + m.group(1) + '"', i)
            out.append('""')
            i = n if end < 0 else end + len(m.group(1)) + 2
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def statements(text: str) -> Iterable[str]:
    """Split at ';' outside parentheses and string literals (lambda bodies stay inside)."""
    depth, start, i, n = 0, 0, 0, len(text)
    while i < n:
        c = text[i]
        if c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            i = j + 1
            continue
        if c in "([":
            depth += 1
        elif c in ")]":
            depth -= 1
        elif c == ";" and depth <= 0:
            yield text[start:i]
            start, depth = i + 1, 0
        elif c in "{}" and depth <= 0 and (c == "}" or _opens_block(text, i)):
            # a block boundary ends a statement too (function bodies, scopes); a brace
            # initialiser (``py::class_<T> cls{m, "T"}``) does not
            yield text[start:i]
            start = i + 1
        i += 1
    yield text[start:]


def _opens_block(text: str, i: int) -> bool:
    j = i - 1
    while j >= 0 and text[j].isspace():
        j -= 1
    if j < 0 or text[j] in ");{}":
        return True
    word = re.search(r"(\w+)\s*$", text[:j + 1])
    return bool(word) and word.group(1) in ("else", "do", "try") or bool(re.search(r"namespace\s+\w*\s*$", text[:j + 1]))


def split_top(args: str) -> List[str]:
    """Split template arguments at top-level commas."""
    out, depth, cur = [], 0, []
    for c in args:
        if c in "<([":
            depth += 1
        elif c in ">)]":
            depth -= 1
        if c == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(c)
    if cur:
        out.append("".join(cur).strip())
    return out


def template_args(stmt: str, start: int) -> Tuple[str, int]:
    """The text between '<' at ``start`` and its matching '>', and the index after it."""
    depth, i = 0, start
    while i < len(stmt):
        if stmt[i] == "<":
            depth += 1
        elif stmt[i] == ">":
            depth -= 1
            if depth == 0:
                return stmt[start + 1:i], i + 1
        i += 1
    raise ValueError("unbalanced template in %r" % stmt[:80])


MEMBER = re.compile(r'\.\s*(def|def_static|def_property|def_property_readonly|def_property_static|'
                    r'def_property_readonly_static|def_readwrite|def_readonly|def_readonly_static|value|'
                    r'add_property|add_static_property|staticmethod|attr)\s*\(\s*"([A-Za-z_]\w*)"')
SIMPLE = re.compile(r'\.\s*DEF_SIMPLE_METHOD(?:_WITH_ARGS)?\s*\(\s*(\w+)')
BINDING = re.compile(r'py::(class_|enum_)\s*<')


class Registry:
    """Classes and their members as a pybind11 / Boost.Python module registers them."""

    def __init__(self) -> None:
        self.names: Set[str] = set()
        self.cpp_to_py: Dict[str, str] = {}
        self.bases: Dict[str, List[str]] = {}  # py name -> cpp base types
        self.aliases: List[Tuple[str, str]] = []  # (new py name, existing py name)

    def add(self, name: str) -> None:
        self.names.add(name)

    def finish(self) -> Set[str]:
        names = set(self.names)
        changed = True
        while changed:  # inherited members, then aliases, until nothing new
            changed = False
            for cls, bases in self.bases.items():
                for base in bases:
                    py = self.cpp_to_py.get(base) or self.cpp_to_py.get(base.split("::")[-1])
                    if not py:
                        continue
                    for n in list(names):
                        if n.startswith(py + "."):
                            new = cls + n[len(py):]
                            if new not in names:
                                names.add(new)
                                changed = True
            for new, old in self.aliases:
                for n in list(names):
                    if n == old or n.startswith(old + "."):
                        alias = new + n[len(old):]
                        if alias not in names:
                            names.add(alias)
                            changed = True
        return names


def parse_bindings(sources: Iterable[str], reg: Registry, module_var: str = "m") -> None:
    """Read pybind11 (``py::class_<T>(m, "N")``) or Boost.Python (``py::class_<T>("N")``) code."""
    var_class: Dict[str, str] = {}
    for raw in sources:
        text = strip_cpp(raw)
        typedef_cl = None
        for stmt in statements(text):
            td = re.search(r'typedef\s+([\w:<>, ]+?)\s+cl\s*$', stmt.strip())
            if td:
                typedef_cl = td.group(1).strip()
                continue
            cls = None
            m = BINDING.search(stmt)
            if m:
                targs, after = template_args(stmt, m.end() - 1)
                head = re.match(r'\s*(\w+)?\s*[({]\s*(?:(\w+)\s*,\s*)?"(\w+)"', stmt[after:])
                if head:
                    var, parent, name = head.group(1), head.group(2), head.group(3)
                    if parent and parent != module_var and parent in var_class:
                        name = var_class[parent] + "." + name
                    cls = name
                    reg.add(cls)
                    args = split_top(targs)
                    cpp = args[0] if args else ""
                    if cpp == "cl" and typedef_cl:
                        cpp = typedef_cl
                    reg.cpp_to_py[cpp] = cls
                    reg.cpp_to_py.setdefault(cpp.split("::")[-1], cls)
                    bases = []
                    for a in args[1:]:
                        b = re.match(r'py::bases\s*<(.*)>$', a)
                        bases.extend(split_top(b.group(1)) if b else [a])
                    reg.bases.setdefault(cls, []).extend(bases)
                    if var:
                        var_class[var] = cls
            else:
                lead = re.match(r'\s*(\w+)\s*\.', stmt)
                if lead and lead.group(1) in var_class:
                    cls = var_class[lead.group(1)]
            scope_alias = re.search(r'py::scope\(\)\s*\.\s*attr\(\s*"(\w+)"\s*\)\s*=\s*(\w+)\s*$', stmt.strip())
            if scope_alias and scope_alias.group(2) in var_class:
                reg.aliases.append((scope_alias.group(1), var_class[scope_alias.group(2)]))
                continue
            for fm in re.finditer(r'(?:^|[^.\w])(?:' + module_var + r'\s*\.\s*def|py::def)\s*\(\s*"(\w+)"', stmt):
                reg.add(fm.group(1))
            for fm in re.finditer(r'(?:DEF_SIMPLE_FUNCTION|DECLARE_EXC)\s*\(\s*(\w+)', stmt):
                reg.add(fm.group(1))  # functions; pycuda's exception classes
            if cls is None:
                continue
            for mm in MEMBER.finditer(stmt):
                if mm.group(1) != "staticmethod":
                    reg.add(cls + "." + mm.group(2))
            for mm in SIMPLE.finditer(stmt):
                reg.add(cls + "." + mm.group(1))
            if re.search(r'py::init\b|\.def\(\s*"__init__"', stmt):
                reg.add(cls + ".__init__")  # constructible (and subclassable) from Python
            if ".export_values()" in stmt and "." in cls:
                parent = cls.rsplit(".", 1)[0]
                for mm in MEMBER.finditer(stmt):
                    if mm.group(1) == "value":
                        reg.add(parent + "." + mm.group(2))


def python_names(source: str, reg: Registry, known: Set[str]) -> None:
    """Top-level names a package ``__init__``/``driver.py`` defines, and attributes it attaches."""
    # packaging templates carry CMake placeholders (##TENSORRT_MODULE##...)
    source = re.sub(r"##(\w+)##", lambda m: "tensorrt" if "MODULE" in m.group(1) else "0", source)
    tree = ast.parse(source)

    def target_name(t) -> Optional[str]:
        if isinstance(t, ast.Name):
            return t.id
        if isinstance(t, ast.Attribute):
            base = target_name(t.value)
            return base + "." + t.attr if base else None
        return None

    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for t in node.targets:
                name = target_name(t)
                if not name or name.startswith("_") and name not in ("__version__",):
                    continue
                top_level = node in tree.body
                if "." in name or top_level:
                    reg.add(name)
                    src = target_name(node.value)
                    if src and src in known:
                        reg.aliases.append((name, src))
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node in tree.body:
            if not node.name.startswith("_"):
                reg.add(node.name)
                if isinstance(node, ast.ClassDef):
                    for item in node.body:
                        if isinstance(item, ast.FunctionDef):
                            reg.add(node.name + "." + item.name)


# -- sources ---------------------------------------------------------------------------

def git_show(repo: str, rev: str, path: str) -> str:
    return subprocess.run(["git", "-C", repo, "show", "%s:%s" % (rev, path)], check=True,
                          capture_output=True, text=True).stdout


def git_ls(repo: str, rev: str, path: str) -> List[str]:
    out = subprocess.run(["git", "-C", repo, "ls-tree", "-r", "--name-only", rev, path], check=True,
                         capture_output=True, text=True).stdout
    return [p for p in out.splitlines() if p]


def maximal_words(wheels: str, spec: str) -> Set[str]:
    strings, _ = wheel_contents(wheels, spec)
    return {w for w in strings if w in _WORDS.get(spec, ())}


_WORDS: Dict[str, Set[str]] = {}


def wheel_contents(wheels: str, spec: str) -> Tuple[Set[str], str]:
    """The identifier strings of the ``tensorrt.so`` inside the bindings wheel ``spec`` (with
    every suffix: the linker merges a string into a longer one that ends with it, so
    ``INPUT`` lives inside ``kINPUT``), and the wheel's ``tensorrt/__init__.py``."""
    name, version = spec.split("==")
    stem = name.replace("-", "_") + "-" + version + "-"
    found = [f for f in os.listdir(wheels) if f.startswith(stem) and f.endswith(".whl")] if os.path.isdir(wheels) else []
    if not found:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                        "-d", wheels, spec], check=True)
        found = [f for f in os.listdir(wheels) if f.startswith(stem) and f.endswith(".whl")]
    with zipfile.ZipFile(os.path.join(wheels, sorted(found)[0])) as z:
        so = [n for n in z.namelist() if n.endswith("tensorrt.so")][0]
        init = [n for n in z.namelist() if n.count("/") == 1 and n.endswith("/__init__.py")][0]
        blob, init_py = z.read(so), z.read(init).decode()
    strings = set()
    words = _WORDS.setdefault(spec, set())
    for m in re.findall(rb"[A-Za-z_][A-Za-z0-9_]{0,80}", blob):
        word = m.decode()
        words.add(word)
        strings.update(word[i:] for i in range(len(word)))
    return strings, init_py


def tensorrt_source_names(repo: str, tag: str, init_py: Optional[str] = None) -> Tuple[Set[str], Set[str]]:
    """(names the C++ registers, names the package's ``__init__.py`` adds) at ``tag``;
    ``init_py`` replaces the tag's ``__init__`` (a wheel ships its own)."""
    reg = Registry()
    files = [p for p in git_ls(repo, tag, "python/src") if p.endswith(".cpp")]
    parse_bindings((git_show(repo, tag, p) for p in files), reg)
    cpp = reg.finish()
    if init_py is None:
        init = [p for p in git_ls(repo, tag, "python/packaging") if p.endswith("tensorrt/__init__.py")]
        init = [p for p in init if "bindings_wheel" in p] or init
        init_py = git_show(repo, tag, init[0])
    python_names(init_py, reg, cpp)
    return cpp, reg.finish() - cpp


def shipped(names: Set[str], strings: Set[str]) -> Tuple[Set[str], Set[str]]:
    keep, drop = set(), set()
    for n in names:
        parts = n.split(".")
        ok = all(p in strings or p.startswith("__") for p in parts)
        (keep if ok else drop).add(n)
    return keep, drop


def build_tensorrt(repo: str, wheels: str, log) -> Tuple[Dict[str, Set[str]], Dict[str, dict]]:
    cols, info = {}, {}
    for col, (tag, spec, jetpack) in TENSORRT.items():
        entry = {"source": "NVIDIA/TensorRT %s python/src" % tag, "jetpack": jetpack}
        if spec:
            strings, init_py = wheel_contents(wheels, spec)
            cpp, py = tensorrt_source_names(repo, tag, init_py)
            kept, dropped = shipped(cpp, strings)
            names = kept | py
            entry.update({"wheel": spec, "dropped_not_in_wheel": sorted(dropped)})
            if col == NEWEST:
                # what 11.2-11.4 added, as far as strings tell: identifiers of the newest wheel
                # that the wheel of the source tag lacks (the table cannot qualify them)
                before, _ = wheel_contents(wheels, SOURCE_TAG_WHEEL)
                words = maximal_words(wheels, spec)
                entry["unplaced"] = sorted(w for w in words - before if re.match(API_WORD, w))
                # and what they removed: identifiers of the source tag's wheel gone from the newest
                gone = {w for w in maximal_words(wheels, SOURCE_TAG_WHEEL) - strings if re.match(API_WORD, w)}
                entry["gone_since_source_tag"] = sorted(gone)
                removed = {n for n in names if gone & set(n.split("."))}
                names -= removed
                entry["dropped_not_in_wheel"] = sorted(set(entry["dropped_not_in_wheel"]) | removed)
            log("tensorrt %s: %d names from %s + its wheel's __init__, %d dropped (absent from %s)"
                % (col, len(names), tag, len(dropped), spec))
        else:
            cpp, py = tensorrt_source_names(repo, tag)
            names = cpp | py
            log("tensorrt %s: %d names from %s (no bindings wheel: source only)" % (col, len(names), tag))
        cols[col] = names
        info[col] = entry
    return cols, info


def build_pycuda(repo: str, log) -> Tuple[Dict[str, Set[str]], Dict[str, dict]]:
    cols, info = {}, {}
    for col, tag in PYCUDA.items():
        reg = Registry()
        files = ["src/wrapper/wrap_cudadrv.cpp", "src/wrapper/mempool.cpp"]
        parse_bindings((git_show(repo, tag, p) for p in files), reg)
        python_names(git_show(repo, tag, "pycuda/driver.py"), reg, reg.finish())
        cols[col] = reg.finish()
        info[col] = {"source": "inducer/pycuda %s src/wrapper/{wrap_cudadrv,mempool}.cpp + pycuda/driver.py" % tag}
        log("pycuda %s: %d names" % (col, len(cols[col])))
    return cols, info


TABLE = re.compile(r'static\s+(PyMethodDef|PyGetSetDef|PyMemberDef)\s+(\w+)\s*\[\s*\w*\s*\]\s*=\s*\{(.*?)\};', re.S)


def build_jetson_utils(repo: str, log) -> Tuple[Dict[str, Set[str]], Dict[str, dict]]:
    rev = subprocess.run(["git", "-C", repo, "rev-parse", JETSON_UTILS], check=True, capture_output=True,
                         text=True).stdout.strip()
    tables: Dict[str, List[str]] = {}
    type_name: Dict[str, str] = {}
    type_tables: Dict[str, List[str]] = {}
    type_base: Dict[str, str] = {}
    for p in git_ls(repo, rev, "python/bindings"):
        if not p.endswith(".cpp"):
            continue
        text = strip_cpp(git_show(repo, rev, p))
        for m in TABLE.finditer(text):
            tables[m.group(2)] = re.findall(r'\{\s*"(\w+)"', m.group(3))
        for m in re.finditer(r'(\w+)\.tp_name\s*=\s*[^;]*?"\.?(\w+)"\s*;', text):
            type_name[m.group(1)] = m.group(2)
        for m in re.finditer(r'(\w+)\.tp_(?:methods|getset|members)\s*=\s*(\w+)\s*;', text):
            type_tables.setdefault(m.group(1), []).append(m.group(2))
        for m in re.finditer(r'(\w+)\.tp_base\s*=\s*&\s*(\w+)\s*;', text):
            type_base[m.group(1)] = m.group(2)
    names: Set[str] = set()
    linked = {t for ts in type_tables.values() for t in ts}
    for ctype, pyname in type_name.items():
        names.add(pyname)
        chain, t = [], ctype
        while t:
            chain.extend(type_tables.get(t, []))
            t = type_base.get(t)
        for table in chain:
            for member in tables.get(table, []):
                names.add(pyname + "." + member)
    for table, members in tables.items():
        if table not in linked and table.endswith("Functions"):
            names.update(members)  # module-level functions
    reg = Registry()
    python_names(git_show(repo, rev, "python/jetson_utils/__init__.py"), reg, set())
    names |= reg.finish()
    log("jetson_utils %s: %d names" % (rev[:12], len(names)))
    return {"master": names}, {"master": {"source": "dusty-nv/jetson-utils %s python/bindings/*.cpp" % rev}}


# -- table -----------------------------------------------------------------------------

def table(columns: Dict[str, Set[str]]) -> Dict[str, str]:
    order = list(columns)
    out = {}
    for name in sorted(set().union(*columns.values())):
        have = [c for c in order if name in columns[c]]
        out[name] = "*" if len(have) == len(order) else " ".join(have)
    return out


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tensorrt-repo", required=True, help="git clone of github.com/NVIDIA/TensorRT")
    ap.add_argument("--pycuda-repo", required=True, help="git clone of github.com/inducer/pycuda")
    ap.add_argument("--jetson-utils-repo", required=True, help="git clone of github.com/dusty-nv/jetson-utils")
    ap.add_argument("--wheels", default=os.path.join(os.path.expanduser("~"), ".cache", "openpose-plus-bindings"),
                    help="where the bindings wheels are (downloaded there when absent)")
    ap.add_argument("-o", "--output", default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    log = lambda s: print(s, file=sys.stderr)  # noqa: E731
    os.makedirs(args.wheels, exist_ok=True)
    libs = {}
    for lib, (cols, info) in (("tensorrt", build_tensorrt(args.tensorrt_repo, args.wheels, log)),
                              ("pycuda.driver", build_pycuda(args.pycuda_repo, log)),
                              ("jetson_utils", build_jetson_utils(args.jetson_utils_repo, log))):
        libs[lib] = {"columns": list(cols), "sources": info, "names": table(cols)}
    doc = {"generated_by": "scripts/api_table.py (run by hand; tests read this file and never download)",
           "libraries": libs}
    with open(args.output, "w") as f:
        json.dump(doc, f, indent=1, sort_keys=False)
        f.write("\n")
    log("wrote %s" % os.path.relpath(args.output))
    return 0


if __name__ == "__main__":
    sys.exit(main())
