#!/usr/bin/env python3
"""Copy dynamically linked programs with every shared library they need.

    elfcopy.py STAGE ROOT PROG...

STAGE is a folder into which Debian packages of the target architecture were
unpacked (dpkg -x); each PROG is a path inside STAGE (e.g. usr/bin/wg).  Each
program, its ELF interpreter and the transitive closure of its DT_NEEDED
libraries are copied to the same paths under ROOT (symlinks resolved).  A
library that cannot be found is an error: the image would not run it.
"""

import os
import re
import shutil
import subprocess
import sys


def needed(path):
    out = subprocess.run(
        ["readelf", "-d", "-l", "-W", path], check=True, capture_output=True, text=True
    ).stdout
    libs = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)
    interp = re.findall(r"Requesting program interpreter: ([^\]]+)\]", out)
    return libs, interp


def main():
    stage, root, progs = sys.argv[1], sys.argv[2], sys.argv[3:]
    # Library search folders inside the stage, as the dynamic loader would see them.
    libdirs = []
    for base in ("lib", "usr/lib", "lib64", "usr/lib64"):
        d = os.path.join(stage, base)
        if os.path.isdir(d):
            libdirs.append(base)
            for sub in sorted(os.listdir(d)):
                if re.match(r"^[a-z0-9_]+-linux-gnu[a-z0-9]*$", sub):
                    libdirs.append(os.path.join(base, sub))

    def find(soname):
        for d in libdirs:
            p = os.path.join(d, soname)
            if os.path.exists(os.path.join(stage, p)):
                return p
        return None

    def resolve(rel):
        """Follow symlinks inside STAGE (absolute targets are relative to STAGE)."""
        for _ in range(40):
            p = os.path.join(stage, rel)
            if not os.path.islink(p):
                return p
            t = os.readlink(p)
            rel = t.lstrip("/") if t.startswith("/") else os.path.normpath(
                os.path.join(os.path.dirname(rel), t))
        raise SystemExit(f"symlink loop at {rel}")

    todo, done, missing = list(progs), set(), []
    while todo:
        rel = todo.pop()
        if rel in done:
            continue
        done.add(rel)
        real = resolve(rel)
        dst = os.path.join(root, rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy2(real, dst)
        libs, interp = needed(real)
        for i in interp:
            todo.append(i.lstrip("/"))
        for lib in libs:
            p = find(lib)
            if p is None:
                missing.append(f"{lib} (needed by {rel})")
            else:
                todo.append(p)
    # The interpreter path (e.g. /lib/ld-linux-armhf.so.3) may sit in a
    # multiarch folder in the package; make sure the exact path exists.
    if missing:
        print("missing libraries:\n  " + "\n  ".join(missing), file=sys.stderr)
        sys.exit(1)
    for rel in sorted(done):
        print(rel)


if __name__ == "__main__":
    main()
