#!/usr/bin/env python3
"""Instructions per request, Gatehouse vs the bare hyper proxy, counted by callgrind.

Instruction counts do not depend on what else a shared machine is doing, so they show the
effect of a change to Gatehouse's own per-request work where wall-clock figures cannot.
Each proxy runs with one worker under `valgrind --tool=callgrind` in front of the benchmark
upstream and receives N keep-alive requests; the script prints total instructions / N
(process start-up included, which is small against N = 10,000).

Note: under valgrind, SHA-256 takes the portable code path (valgrind does not emulate the
SHA-NI instructions), about 4,000 instructions of the caller-token hash that real CPUs with
SHA-NI spend in well under 100 ns.

Usage: python3 scripts/instructions_per_request.py [--requests 10000] [--no-build] [--keep DIR]
`--keep DIR` leaves the two callgrind profiles in DIR (`cg.gatehouse`, `cg.bare`) for
`callgrind_annotate --inclusive=yes DIR/cg.gatehouse`.
Needs: valgrind (apt-get install valgrind).
"""
import argparse
import http.client
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_proxy import STORE_KEY, TOKEN, gatehouse_config  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UPSTREAM, PROXY, ADMIN = 19181, 19180, 19190
TARGET = "/services/data/v60.0/query?q=SELECT+Id+FROM+Account+LIMIT+1"


def drive(prefix, n, headers):
    deadline = time.time() + 120
    while True:
        try:
            c = http.client.HTTPConnection("127.0.0.1", PROXY, timeout=30)
            c.request("GET", "/")
            c.getresponse().read()
            break
        except Exception:
            if time.time() > deadline:
                raise SystemExit("proxy did not come up")
            time.sleep(0.5)
    c = http.client.HTTPConnection("127.0.0.1", PROXY, timeout=30)
    ok = 0
    for _ in range(n):
        c.request("GET", prefix + TARGET, headers=headers)
        r = c.getresponse()
        r.read()
        ok += r.status == 200
    if ok != n:
        raise SystemExit(f"only {ok}/{n} requests succeeded")


def measure(cmd, prefix, n, headers, out, env=None):
    proc = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"] + cmd,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        drive(prefix, n, headers)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
    text = open(out).read()
    total = int(re.search(r"^totals: (\d+)", text, re.M).group(1))
    return total / n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=10000)
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--keep", metavar="DIR", help="keep the callgrind profiles in DIR")
    args = ap.parse_args()
    if not shutil.which("valgrind"):
        raise SystemExit("valgrind not found: apt-get install valgrind")
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "-p", "gatehouse", "-p", "gatehouse-e2e", "--bin", "gatehouse",
                        "--bin", "bench_upstream", "--bin", "bench_bare_proxy"], cwd=ROOT, check=True)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    release = os.path.join(target, "release")
    work = tempfile.mkdtemp(prefix="gatehouse-instr-")
    up = subprocess.Popen([os.path.join(release, "bench_upstream"), f"127.0.0.1:{UPSTREAM}"], stdout=subprocess.DEVNULL)
    try:
        cfg = os.path.join(work, "gatehouse.toml")
        with open(cfg, "w") as f:
            f.write(gatehouse_config(PROXY, ADMIN, UPSTREAM, f"{work}/data", workers=1))
        env = {**os.environ, "GATEHOUSE_STORE_KEY": STORE_KEY}
        gh = measure([os.path.join(release, "gatehouse"), "run", "--config", cfg], "/bench", args.requests,
                     {"Proxy-Authorization": f"Bearer {TOKEN}"}, os.path.join(work, "cg.gatehouse"), env)
        bare = measure([os.path.join(release, "bench_bare_proxy"), f"127.0.0.1:{PROXY}", f"127.0.0.1:{UPSTREAM}", "1"],
                       "", args.requests, {}, os.path.join(work, "cg.bare"))
        print(f"instructions per request ({args.requests} keep-alive requests, one worker, callgrind)")
        print(f"  gatehouse  {gh:10.0f}")
        print(f"  bare       {bare:10.0f}")
        print(f"  gatehouse's own work: {gh - bare:.0f} ({gh / bare:.2f}x bare)")
    finally:
        up.send_signal(signal.SIGTERM)
        up.wait(timeout=10)
        if args.keep:
            os.makedirs(args.keep, exist_ok=True)
            for name in ("cg.gatehouse", "cg.bare"):
                if os.path.exists(os.path.join(work, name)):
                    shutil.copy(os.path.join(work, name), args.keep)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
