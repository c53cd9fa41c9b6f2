#!/usr/bin/env python3
"""Extracts every configuration key Traefik reads from a file.

Walks the Go structs from the roots of Traefik's static and dynamic
configuration (`pkg/config/static.Configuration`,
`pkg/config/dynamic.Configuration`) through every package of the Traefik
source tree they reference, and prints one key path a line:

    dynamic http.routers.<name>.rule
    static entryPoints.<name>.http.tls.domains[].main

`<name>` stands for a user-chosen map key, `[]` for a list item. Fields
tagged `file:"-"` or `yaml:"-"` do not exist in a file and are left out;
embedded structs are inlined, as paerser reads them. The key is the field's
`yaml` (else `json`) tag name, else the field name.

Usage: traefik_keys.py /path/to/traefik-src > traefik_keys.txt
"""

import os
import re
import sys

MODULE = "github.com/traefik/traefik/v3/"

STRUCT_RE = re.compile(r"^type\s+(\w+)\s+struct\s*\{", re.M)
ALIAS_RE = re.compile(r"^type\s+(\w+)\s+(?!struct\b)(\S.*)$", re.M)
IMPORT_BLOCK_RE = re.compile(r"^import\s*\((.*?)^\)", re.M | re.S)
IMPORT_LINE_RE = re.compile(r'^\s*(?:(\w+|\.)\s+)?"([^"]+)"', re.M)
SINGLE_IMPORT_RE = re.compile(r'^import\s+(?:(\w+)\s+)?"([^"]+)"', re.M)
TAG_RE = re.compile(r'(\w+):"([^"]*)"')


def struct_body(text, start):
    """The text between the struct's braces, starting after `{`."""
    depth = 1
    i = start
    while depth:
        c = text[i]
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        elif c == "`":
            i = text.index("`", i + 1)
        i += 1
    return text[start : i - 1]


class Package:
    def __init__(self):
        self.structs = {}  # name -> (fields, imports)
        self.aliases = {}  # name -> (type expression, imports)


def load(src):
    packages = {}
    root = os.path.join(src, "pkg")
    for dirpath, _, files in os.walk(root):
        for f in files:
            if not f.endswith(".go") or f.endswith("_test.go"):
                continue
            text = open(os.path.join(dirpath, f), encoding="utf-8").read()
            imports = {}
            blocks = [m.group(1) for m in IMPORT_BLOCK_RE.finditer(text)]
            for b in blocks:
                for m in IMPORT_LINE_RE.finditer(b):
                    path = m.group(2)
                    imports[m.group(1) or path.rsplit("/", 1)[-1]] = path
            for m in SINGLE_IMPORT_RE.finditer(text):
                imports[m.group(1) or m.group(2).rsplit("/", 1)[-1]] = m.group(2)
            pkg = packages.setdefault(os.path.relpath(dirpath, src), Package())
            for m in STRUCT_RE.finditer(text):
                pkg.structs[m.group(1)] = (parse_fields(struct_body(text, m.end())), imports)
            for m in ALIAS_RE.finditer(text):
                pkg.aliases.setdefault(m.group(1), (m.group(2).strip(), imports))
    return packages


def parse_fields(body):
    fields = []
    # Nested anonymous structs are rare in config types; fields are one a line.
    for line in body.split("\n"):
        line = line.split("//", 1)[0].rstrip() if "`" not in line else line
        line = line.strip()
        if not line or line.startswith("//"):
            continue
        tag = ""
        if "`" in line:
            line, tag = line.split("`", 1)[0].strip(), line.split("`")[1]
        parts = line.split(None, 1)
        if len(parts) == 1:
            fields.append((None, parts[0], dict(TAG_RE.findall(tag))))
        else:
            for name in parts[0].split(","):
                fields.append((name.strip(), parts[1].strip(), dict(TAG_RE.findall(tag))))
    return fields


def key_of(name, tags):
    for t in ("yaml", "json"):
        v = tags.get(t)
        if v is not None:
            k = v.split(",")[0]
            if k:
                return k
    return name


def resolve(packages, pkgdir, imports, typ):
    """(package dir, type name) of a named type, or None for a leaf."""
    if "." in typ:
        alias, name = typ.split(".", 1)
        path = imports.get(alias)
        if path is None or not path.startswith(MODULE):
            return None
        return path[len(MODULE) :], name
    return pkgdir, typ


def walk(packages, pkgdir, imports, typ, prefix, out, stack):
    typ = typ.strip()
    while typ.startswith("*"):
        typ = typ[1:]
    if typ.startswith("[]"):
        walk(packages, pkgdir, imports, typ[2:], prefix + "[]", out, stack)
        return
    if typ.startswith("map["):
        depth, i = 0, 3
        while True:
            if typ[i] == "[":
                depth += 1
            elif typ[i] == "]":
                depth -= 1
                if depth == 0:
                    break
            i += 1
        walk(packages, pkgdir, imports, typ[i + 1 :], prefix + ".<name>", out, stack)
        return
    target = resolve(packages, pkgdir, imports, typ)
    if target is None:
        return
    tdir, name = target
    pkg = packages.get(tdir)
    if pkg is None:
        return
    if name in pkg.structs:
        if (tdir, name) in stack:
            return
        fields, fimports = pkg.structs[name]
        for fname, ftype, tags in fields:
            if tags.get("file") == "-" or tags.get("yaml") == "-":
                continue
            if fname is None:  # embedded: inlined
                walk(packages, tdir, fimports, ftype, prefix, out, stack | {(tdir, name)})
                continue
            if not fname[0].isupper():
                continue
            key = key_of(fname, tags)
            path = f"{prefix}.{key}" if prefix else key
            out.append(path)
            walk(packages, tdir, fimports, ftype, path, out, stack | {(tdir, name)})
    elif name in pkg.aliases:
        aliased, aimports = pkg.aliases[name]
        if aliased.startswith(("map[", "[]", "*")) or "." in aliased:
            walk(packages, tdir, aimports, aliased, prefix, out, stack)


def main():
    src = sys.argv[1]
    packages = load(src)
    for kind, pkgdir in (("static", "pkg/config/static"), ("dynamic", "pkg/config/dynamic")):
        out = []
        walk(packages, pkgdir, {}, "Configuration", "", out, frozenset())
        for path in sorted(set(out), key=lambda p: (p.lower(), p)):
            print(f"{kind} {path}")


if __name__ == "__main__":
    main()
