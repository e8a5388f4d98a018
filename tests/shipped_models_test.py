#!/usr/bin/env python3
"""The shipped models (trained/manifest.json) against the code as it is now.

For every entry: the files are the ones the manifest hashed; the integer
runtime on the 10,000 CIFAR-10 test images gives exactly the manifest's
correct count and the sha256 of its predicted classes (so a runtime change
that moves a single prediction fails), with the CPU's own kernels and again
with every lower kernel family the runtime can be capped to here; and
`pactq eval` of the weight file with the entry's bits gives its fake-quant
figure (LibTorch's float convolutions may round differently on another CPU:
a few images of slack, reported).

  tests/shipped_models_test.py --pactq BUILD/pactq --data-dir CIFAR_DIR [--only NAME]
"""
import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile

here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Fake-quant top-1 may move by this many test images across CPUs (float convs).
FAKE_QUANT_SLACK_IMAGES = 3


def sha256_file(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def run(cmd, env=None):
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {p.returncode}: {p.stderr.strip()}")
    return p.stdout


def isa_caps():
    """The kernel families to force, by what this CPU has (docs: PACTQ_ISA)."""
    flags = open("/proc/cpuinfo").read()
    caps = []  # not "ref": the scalar reference is too slow for 10,000 images a model
    if " avx2 " in flags:
        caps.append("avx2")
    if " avx512_vnni " in flags and " avx512bw " in flags:
        caps.append("avx512vnni")
    return caps


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pactq", required=True)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--manifest", default=os.path.join(here, "trained", "manifest.json"))
    ap.add_argument("--only", default="")
    a = ap.parse_args()
    if not os.path.isdir(a.data_dir):
        sys.exit(f"shipped_models_test: --data-dir {a.data_dir}: not a directory (CIFAR-10 binary files)")
    manifest = json.load(open(a.manifest))
    models = manifest["models"]
    if not models:
        sys.exit(f"shipped_models_test: {a.manifest}: no models")
    failures = []
    for name, e in models.items():
        if a.only and name != a.only:
            continue
        folder = os.path.join(os.path.dirname(a.manifest), name)
        pqm = os.path.join(folder, "model.pqm")
        weights = os.path.join(folder, "weights.safetensors")
        try:
            for f, want in e["files"].items():
                got = sha256_file(os.path.join(folder, f))
                assert got == want["sha256"], f"{name}/{f}: sha256 {got}, manifest {want['sha256']}"
            seen = set()  # kernel sets already run (a cap at the CPU's own best is no new one)
            for isa in [None] + isa_caps():
                env = dict(os.environ)
                if isa:
                    env["PACTQ_ISA"] = isa
                with tempfile.TemporaryDirectory() as tmp:
                    pred = os.path.join(tmp, "pred.txt")
                    out = run([a.pactq, "run", pqm, "--dataset", "cifar10", "--data-dir", a.data_dir,
                               "--threads", "2", "--predictions", pred], env)
                    m = re.search(r"top-1 [0-9.]+% \((\d+)/(\d+)\)", out)
                    assert m, f"{name}: pactq run printed no top-1: {out}"
                    correct, images = int(m.group(1)), int(m.group(2))
                    digest = sha256_file(pred)
                kernels = re.search(r"threads, (.+)\)$", out.strip()).group(1)
                if kernels in seen:
                    continue
                seen.add(kernels)
                where = f"{name} ({kernels})"
                assert images == e["test_images"], f"{where}: {images} images, manifest {e['test_images']}"
                assert correct == e["deployed_correct"], \
                    f"{where}: deployed {correct}/{images} correct, manifest {e['deployed_correct']}"
                assert digest == e["predictions_sha256"], \
                    f"{where}: predictions sha256 {digest}, manifest {e['predictions_sha256']} " \
                    "(same count, other images)"
                print(f"{where}: deployed {100.0 * correct / images:.2f}%, predictions as shipped")
            cmd = [a.pactq, "eval", "--model", e["model"], "--dataset", e["dataset"], "--data-dir",
                   a.data_dir, "--init-from", weights, "--wbits", e["wbits"], "--abits", e["abits"],
                   "--first-last", e["first_last"], "--weight-quant", e["weight_quant"],
                   "--act-quant", e["act_quant"], "--threads", "2", "--quiet"]
            for o in e.get("overrides", []):
                cmd += ["--override", o]
            out = run(cmd)
            m = re.search(r"top-1 ([0-9.]+)% \((\d+)/(\d+)\)", out)
            assert m, f"{name}: pactq eval printed no top-1: {out}"
            fake = 100.0 * int(m.group(2)) / int(m.group(3))
            slack = 100.0 * FAKE_QUANT_SLACK_IMAGES / int(m.group(3))
            assert abs(fake - e["fake_quant_top1"]) <= slack + 0.005, \
                f"{name}: pactq eval of weights.safetensors {fake:.2f}%, manifest {e['fake_quant_top1']:.2f}%"
            print(f"{name}: fake-quant {fake:.2f}% (manifest {e['fake_quant_top1']:.2f}%)")
        except AssertionError as err:
            failures.append(str(err))
            print(f"FAIL {err}", file=sys.stderr)
    if failures:
        sys.exit(f"{len(failures)} shipped model check(s) failed")


main()
