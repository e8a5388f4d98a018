#!/usr/bin/env python3
"""ctest c_api_ctypes: the shared C library (libpactq_c.so) loaded with Python's
ctypes, as the README offers it: its SONAME and exports, pactq_version(), a
demo model run bit for bit as rt::Model runs it, and the error statuses.

  c_api_ctypes_test.py --lib LIB --soname NAME --version X.Y.Z --write-demo EXE
"""
import argparse
import ctypes
import os
import shutil
import subprocess
import sys
import tempfile

OK, INVALID_ARGUMENT, FORMAT, IO = 0, 1, 2, 5
BATCH = 2  # demo_model.h: kDemoBatch, pixels demo_pixel(k) = (k % 256) / 256


def check(cond, what):
    if not cond:
        sys.exit(f"c_api_ctypes: {what}")


def declare(lib):
    c_int_p = ctypes.POINTER(ctypes.c_int)
    f_p = ctypes.POINTER(ctypes.c_float)
    sigs = {
        "pactq_version": (ctypes.c_char_p, []),
        "pactq_last_error": (ctypes.c_char_p, []),
        "pactq_model_load": (ctypes.c_int, [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)]),
        "pactq_model_free": (None, [ctypes.c_void_p]),
        "pactq_model_input_shape": (ctypes.c_int, [ctypes.c_void_p, c_int_p, c_int_p, c_int_p]),
        "pactq_model_classes": (ctypes.c_int, [ctypes.c_void_p]),
        "pactq_model_class_name": (ctypes.c_char_p, [ctypes.c_void_p, ctypes.c_int]),
        "pactq_context_create": (ctypes.c_int, [ctypes.c_int, ctypes.POINTER(ctypes.c_void_p)]),
        "pactq_context_free": (None, [ctypes.c_void_p]),
        "pactq_model_run": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_void_p, f_p, ctypes.c_int, f_p]),
    }
    for name, (res, args) in sigs.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = res, args


def elf_facts(path):
    """(SONAME, [defined dynamic symbols]) from binutils, or None without them."""
    readelf, nm = shutil.which("readelf"), shutil.which("nm")
    if not readelf or not nm:
        return None
    dyn = subprocess.run([readelf, "-d", path], check=True, capture_output=True, text=True).stdout
    soname = next((l.split("[", 1)[1].rstrip("]") for l in dyn.splitlines() if "(SONAME)" in l), "")
    syms = subprocess.run([nm, "-D", "--defined-only", path], check=True, capture_output=True,
                          text=True).stdout
    return soname, [l.split()[-1] for l in syms.splitlines() if l.strip()]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", required=True)
    ap.add_argument("--soname", required=True)
    ap.add_argument("--version", required=True)
    ap.add_argument("--write-demo", required=True)
    a = ap.parse_args()

    facts = elf_facts(a.lib)
    if facts is None:
        print("c_api_ctypes: no readelf/nm, SONAME and exports not checked")
    else:
        soname, exported = facts
        check(soname == a.soname, f"{a.lib}: SONAME {soname!r}, expected {a.soname!r}")
        # Only the C API: no runtime C++ symbol, no libstdc++ template copy.
        stray = [s for s in exported if not s.startswith("pactq_")]
        check(not stray, f"{a.lib}: exports more than pactq_*: {stray[:5]}")
        check("pactq_model_run" in exported, f"{a.lib}: pactq_model_run not exported")

    lib = ctypes.CDLL(a.lib)
    declare(lib)
    check(lib.pactq_version().decode() == a.version,
          f"pactq_version() {lib.pactq_version()!r}, expected {a.version!r}")

    with tempfile.TemporaryDirectory() as tmp:
        pqm, want_file = os.path.join(tmp, "demo.pqm"), os.path.join(tmp, "logits.txt")
        subprocess.run([a.write_demo, pqm, want_file], check=True)
        with open(want_file) as f:
            want = [float.fromhex(l) for l in f.read().split()]

        model = ctypes.c_void_p()
        check(lib.pactq_model_load(pqm.encode(), ctypes.byref(model)) == OK,
              f"load: {lib.pactq_last_error()}")
        check(lib.pactq_last_error() == b"", "last error not cleared by a successful load")
        c, h, w = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
        check(lib.pactq_model_input_shape(model, ctypes.byref(c), ctypes.byref(h),
                                          ctypes.byref(w)) == OK, "input shape")
        check((c.value, h.value, w.value) == (3, 8, 8), f"input shape {c.value}x{h.value}x{w.value}")
        classes = lib.pactq_model_classes(model)
        check(classes == 10 and lib.pactq_model_class_name(model, 3) == b"c3", "class names")
        check(len(want) == BATCH * classes, f"{want_file}: {len(want)} logits")

        n = BATCH * c.value * h.value * w.value
        pixels = (ctypes.c_float * n)(*[(k % 256) / 256 for k in range(n)])
        ctx = ctypes.c_void_p()
        check(lib.pactq_context_create(2, ctypes.byref(ctx)) == OK, "context")
        for context in (None, ctx):  # the thread's own context, then a 2-thread one
            logits = (ctypes.c_float * (BATCH * classes))()
            check(lib.pactq_model_run(model, context, pixels, BATCH, logits) == OK,
                  f"run: {lib.pactq_last_error()}")
            check(list(logits) == want, f"logits {list(logits)[:3]}..., expected {want[:3]}...")
        check(lib.pactq_model_run(model, ctx, pixels, 0, logits) == INVALID_ARGUMENT, "batch 0")
        lib.pactq_context_free(ctx)
        lib.pactq_model_free(model)

        # A missing file is an I/O error with the OS's reason; garbage is a format error.
        missing = os.path.join(tmp, "missing.pqm")
        check(lib.pactq_model_load(missing.encode(), ctypes.byref(model)) == IO, "missing: status")
        check(lib.pactq_last_error().decode() ==
              f"{missing}: cannot open file: No such file or directory",
              f"missing: {lib.pactq_last_error()}")
        garbage = os.path.join(tmp, "garbage.pqm")
        with open(garbage, "wb") as f:
            f.write(b"not a model")
        check(lib.pactq_model_load(garbage.encode(), ctypes.byref(model)) == FORMAT,
              f"garbage: {lib.pactq_last_error()}")
        check(garbage in lib.pactq_last_error().decode(), f"garbage: {lib.pactq_last_error()}")
    print(f"c_api_ctypes: {os.path.basename(a.lib)} {a.version}: ok")


if __name__ == "__main__":
    main()
