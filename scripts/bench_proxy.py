#!/usr/bin/env python3
"""Proxy overhead benchmark: direct vs Gatehouse vs nginx, open loop, on loopback.

Runs, in one go and side by side:
  * a fixed-rate, open-loop load (oha -q RATE --latency-correction) at several rates against
    the upstream directly, through Gatehouse (caller auth and policy on, credential injected)
    and, where nginx is installed, through nginx as a reverse proxy;
  * a closed-loop maximum-throughput run through Gatehouse and nginx, and through `bare`: the
    least a hyper-based proxy can do (tests/src/bin/bench_bare_proxy.rs: same thread-per-core
    design and HTTP stack as Gatehouse, nothing else), the floor Gatehouse's own work sits on;
and prints p50/p99/p99.9 added latency per path and rate, the max throughput ratios
Gatehouse/nginx and bare/nginx, and Gatehouse's peak RSS (VmHWM).

Usage: python3 scripts/bench_proxy.py [--rates 500,1000,2000,4000] [--seconds 10]
Needs: oha (cargo install oha), optionally nginx (apt-get install nginx). Builds release
binaries with cargo first.
"""
import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UPSTREAM_PORT, GATEHOUSE_PORT, ADMIN_PORT, NGINX_PORT, BARE_PORT = 18081, 18080, 18090, 18082, 18083
TOKEN = "bench-caller-token"
STORE_KEY = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
PATH = "/services/data/v60.0/query"


def sh(*args, **kw):
    return subprocess.run(args, check=True, **kw)


def wait_http(url, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return
        except Exception:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not come up")


def oha(url, headers, rate=None, seconds=10, connections=32, cpus=None):
    cmd = (["taskset", "-c", cpus] if cpus else []) + ["oha", "--no-tui", "--output-format", "json", "-z", f"{seconds}s", "-c", str(connections)]
    if rate:
        cmd += ["-q", str(rate), "--latency-correction"]
    for h in headers:
        cmd += ["-H", h]
    cmd.append(url)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    data = json.loads(out)
    pct = data["latencyPercentiles"]
    codes = data.get("statusCodeDistribution", {})
    ok = sum(v for k, v in codes.items() if k.startswith("2"))
    total = sum(codes.values())
    return {
        "p50": pct["p50"] * 1000,
        "p99": pct["p99"] * 1000,
        "p99.9": pct["p99.9"] * 1000,
        "rps": data["summary"]["requestsPerSec"],
        "ok": ok,
        "total": total,
    }


def cpu_seconds(pids):
    """user and system CPU seconds of the processes, from /proc/PID/stat."""
    tick = os.sysconf("SC_CLK_TCK")
    user = system = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        user += int(fields[11])
        system += int(fields[12])
    return user / tick, system / tick


def cpu_per_request(pids, url, headers, rate, seconds):
    """Proxy CPU microseconds (user, system) per request at a fixed rate."""
    u0, s0 = cpu_seconds(pids)
    r = oha(url, headers, rate=rate, seconds=seconds)
    u1, s1 = cpu_seconds(pids)
    n = max(r["total"], 1)
    return (u1 - u0) * 1e6 / n, (s1 - s0) * 1e6 / n


def peak_rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def gatehouse_config(port, admin_port, upstream_port, data_dir, workers=None):
    """The benchmark's Gatehouse: caller auth and policy on, a bearer credential injected."""
    workers_line = f"workers = {workers}\n" if workers else ""
    return f"""
[server]
listen = "127.0.0.1:{port}"
admin_listen = "127.0.0.1:{admin_port}"
{workers_line}
[store]
data_dir = "{data_dir}"

[[connections]]
id = "bench"
provider = "custom"
base_url = "http://127.0.0.1:{upstream_port}"
credentials = {{ type = "bearer", token = "provider-token" }}
[connections.profile]
name = "bench"

[[callers]]
id = "svc"
token_sha256 = "{hashlib.sha256(TOKEN.encode()).hexdigest()}"
[[callers.grants]]
connections = ["bench"]
methods = ["GET"]
paths = ["/services/data/*/query"]
"""


def nginx_config(work, port, upstream_port, workers, pid_file, equivalent=False):
    """nginx as the same reverse proxy: upstream keepalive, the credential header set, access log on.

    With `equivalent`, nginx also does what it can of Gatehouse's per-request work: the caller's
    bearer token checked (a plain string match: nginx has no SHA-256 without modules), the
    method and path allow-listed, the connection prefix stripped, caller credentials and cookies
    dropped, a request id generated, sent upstream and returned, provider cookies hidden, and a
    JSON access line. It does not do metrics or trace context."""
    if equivalent:
        logging = f"""
  log_format gatehouse escape=json '{{"time":"$time_iso8601","level":"INFO","target":"access","request_id":"$request_id","connection":"bench","caller":"$caller","method":"$request_method","status":$status,"duration_s":$request_time}}';
  access_log {work}/{pid_file}.access.log gatehouse;
  map $http_proxy_authorization $caller {{ "Bearer {TOKEN}" svc; default ""; }}"""
        locations = """
    location ~ ^/bench(/services/data/[^/]+/query)$ {
      if ($caller = "") { return 401; }
      limit_except GET { deny all; }
      proxy_pass http://backend$1$is_args$args;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Proxy-Authorization "";
      proxy_set_header Cookie "";
      proxy_set_header X-Request-Id $request_id;
      proxy_set_header Authorization "Bearer provider-token";
      proxy_hide_header Set-Cookie;
      add_header X-Request-Id $request_id always;
    }
    location / { return 403; }"""
    else:
        logging = f"""
  access_log {work}/{pid_file}.access.log;"""
        locations = """
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Authorization "Bearer provider-token";
    }"""
    return f"""
worker_processes {workers};
pid {work}/{pid_file};
error_log {work}/nginx-error.log warn;
daemon off;
events {{ worker_connections 4096; }}
http {{{logging}
  upstream backend {{ server 127.0.0.1:{upstream_port}; keepalive 128; }}
  server {{
    listen 127.0.0.1:{port};{locations}
  }}
}}
"""


def same_cores(args, target, work, nginx, upstream_pid):
    """Each proxy alone on the last CPU with one worker; the load generator and the upstream on
    the others. Closed loop: the proxy's core is the bottleneck, so requests/s is what one core
    of that proxy can carry, and its CPU per request (from /proc) is the same figure without the
    noise of whatever else the shared machine runs. Interleaved rounds, medians."""
    cpus = os.cpu_count() or 1
    if cpus < 2 or not shutil.which("taskset"):
        print("# same cores: skipped (needs two CPUs and taskset)")
        return
    proxy_cpu, rest = str(cpus - 1), f"0-{cpus - 2}"
    # The upstream (all its threads) keeps off the proxies' core.
    subprocess.run(["taskset", "-a", "-p", "-c", rest, str(upstream_pid)], check=True, stdout=subprocess.DEVNULL)
    ports = {"gatehouse": GATEHOUSE_PORT + 100, "nginx": NGINX_PORT + 100, "bare": BARE_PORT + 100, "nginx-eq": NGINX_PORT + 110,
             "gatehouse-compare": GATEHOUSE_PORT + 120}
    procs, pids, urls = [], {}, {}
    try:
        cfg = os.path.join(work, "pinned.toml")
        with open(cfg, "w") as f:
            f.write(gatehouse_config(ports["gatehouse"], ADMIN_PORT + 100, UPSTREAM_PORT, f"{work}/data-pinned", workers=1))
        gh = subprocess.Popen(["taskset", "-c", proxy_cpu, os.path.join(target, "release", "gatehouse"), "run", "--config", cfg],
                              stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "pinned.log"), "w"),
                              env={**os.environ, "GATEHOUSE_STORE_KEY": STORE_KEY})
        procs.append(gh)
        pids["gatehouse"] = [gh.pid]
        urls["gatehouse"] = (f"http://127.0.0.1:{ports['gatehouse']}/bench{PATH}?q=SELECT+Id+FROM+Account+LIMIT+1", [f"Proxy-Authorization: Bearer {TOKEN}"])
        if args.compare:
            ccfg = os.path.join(work, "pinned-compare.toml")
            with open(ccfg, "w") as f:
                f.write(gatehouse_config(ports["gatehouse-compare"], ADMIN_PORT + 120, UPSTREAM_PORT, f"{work}/data-compare", workers=1))
            cmp_ = subprocess.Popen(["taskset", "-c", proxy_cpu, args.compare, "run", "--config", ccfg],
                                    stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "pinned-compare.log"), "w"),
                                    env={**os.environ, "GATEHOUSE_STORE_KEY": STORE_KEY})
            procs.append(cmp_)
            pids["gatehouse-compare"] = [cmp_.pid]
            urls["gatehouse-compare"] = (urls["gatehouse"][0].replace(f":{ports['gatehouse']}/", f":{ports['gatehouse-compare']}/"), urls["gatehouse"][1])
            wait_http(f"http://127.0.0.1:{ADMIN_PORT + 120}/readyz")
        if nginx:
            ncfg = os.path.join(work, "nginx-pinned.conf")
            with open(ncfg, "w") as f:
                f.write(nginx_config(work, ports["nginx"], UPSTREAM_PORT, 1, "nginx-pinned.pid"))
            ng = subprocess.Popen(["taskset", "-c", proxy_cpu, nginx, "-c", ncfg, "-p", work], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            procs.append(ng)
            ecfg = os.path.join(work, "nginx-eq.conf")
            with open(ecfg, "w") as f:
                f.write(nginx_config(work, ports["nginx-eq"], UPSTREAM_PORT, 1, "nginx-eq.pid", equivalent=True))
            ne = subprocess.Popen(["taskset", "-c", proxy_cpu, nginx, "-c", ecfg, "-p", work], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            procs.append(ne)
        bare = subprocess.Popen(["taskset", "-c", proxy_cpu, os.path.join(target, "release", "bench_bare_proxy"), f"127.0.0.1:{ports['bare']}", f"127.0.0.1:{UPSTREAM_PORT}", "1"], stdout=subprocess.DEVNULL)
        procs.append(bare)
        pids["bare"] = [bare.pid]
        urls["bare"] = (f"http://127.0.0.1:{ports['bare']}{PATH}?q=SELECT+Id+FROM+Account+LIMIT+1", [])
        wait_http(f"http://127.0.0.1:{ADMIN_PORT + 100}/readyz")
        wait_http(f"http://127.0.0.1:{ports['bare']}/")
        if nginx:
            wait_http(f"http://127.0.0.1:{ports['nginx']}/")
            workers_of = subprocess.run(["pgrep", "-P", str(ng.pid)], capture_output=True, text=True).stdout.split()
            pids["nginx"] = [int(p) for p in workers_of]
            urls["nginx"] = (f"http://127.0.0.1:{ports['nginx']}{PATH}?q=SELECT+Id+FROM+Account+LIMIT+1", [])
            wait_http(f"http://127.0.0.1:{ports['nginx-eq']}/")
            workers_of = subprocess.run(["pgrep", "-P", str(ne.pid)], capture_output=True, text=True).stdout.split()
            pids["nginx-eq"] = [int(p) for p in workers_of]
            if not pids["nginx"] or not pids["nginx-eq"]:
                raise SystemExit("same cores: an nginx has no worker process (see nginx-error.log)")
            urls["nginx-eq"] = urls["gatehouse"][0].replace(f":{ports['gatehouse']}/", f":{ports['nginx-eq']}/"), urls["gatehouse"][1]
        order = [n for n in ("gatehouse", "nginx", "nginx-eq", "bare", "gatehouse-compare") if n in urls]
        for name in order:  # warm-up, and a check that every path really proxies (2xx answers)
            r = oha(*urls[name], seconds=2, connections=64, cpus=rest)
            if r["ok"] < r["total"]:
                raise SystemExit(f"same cores: {name} answered {r['total'] - r['ok']} of {r['total']} requests with errors")
        rounds = {n: [] for n in order}
        for _ in range(args.repeat):
            for name in order:
                u0, s0 = cpu_seconds(pids[name])
                r = oha(*urls[name], seconds=args.seconds, connections=64, cpus=rest)
                u1, s1 = cpu_seconds(pids[name])
                rounds[name].append((r["rps"], (u1 - u0 + s1 - s0) * 1e6 / max(r["total"], 1)))
        print(f"# same cores: each proxy alone on CPU {proxy_cpu} with one worker, load generator and upstream on CPUs {rest};")
        print(f"# closed loop, 64 connections, {args.repeat} interleaved rounds, medians")
        med = {}
        for name in order:
            rps = sorted(x for x, _ in rounds[name])[len(rounds[name]) // 2]
            cpu = sorted(c for _, c in rounds[name])[len(rounds[name]) // 2]
            med[name] = (rps, cpu)
            print(f"{name:>17} {rps:10.0f} req/s on one core   {cpu:6.2f} µs CPU/request  "
                  f"(rounds: {', '.join(f'{x:.0f}/{c:.1f}' for x, c in rounds[name])})")
        if "nginx" in med:
            g, n, b = med["gatehouse"], med["nginx"], med["bare"]
            print(f"same cores, gatehouse/nginx: throughput {g[0] / n[0]:.2f}, capacity by CPU/request {n[1] / g[1]:.2f}")
            # Each round runs the proxies back to back, so a round's ratio compares them under
            # (nearly) the same machine load; the spread of those ratios is the honest error bar.
            paired = sorted(gr[0] / nr[0] for gr, nr in zip(rounds["gatehouse"], rounds["nginx"]))
            wins = sum(r >= 1 for r in paired)
            print(f"same cores, gatehouse/nginx throughput per round: median {paired[len(paired) // 2]:.2f}, "
                  f"range {paired[0]:.2f}-{paired[-1]:.2f}, at least nginx's in {wins} of {len(paired)} rounds")
            print(f"same cores, bare/nginx: throughput {b[0] / n[0]:.2f}, capacity by CPU/request {n[1] / b[1]:.2f}")
            e = med["nginx-eq"]
            print(f"same cores, gatehouse/nginx doing equivalent work: throughput {g[0] / e[0]:.2f}, capacity by CPU/request {e[1] / g[1]:.2f}")
        if "gatehouse-compare" in med:
            g, c = med["gatehouse"], med["gatehouse-compare"]
            paired = sorted(gr[0] / cr[0] for gr, cr in zip(rounds["gatehouse"], rounds["gatehouse-compare"]))
            print(f"same cores, gatehouse/gatehouse-compare: throughput {g[0] / c[0]:.2f}, capacity by CPU/request {c[1] / g[1]:.2f}, "
                  f"per round median {paired[len(paired) // 2]:.2f} (range {paired[0]:.2f}-{paired[-1]:.2f})")
    finally:
        stop(procs)


def stop(procs):
    for p in reversed(procs):
        p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()


def find_nginx():
    """nginx's path, if it is installed (Debian puts it in /usr/sbin, often off a user's PATH)."""
    return shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rates", default="500,1000,2000,4000")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--cpu-rate", type=int, default=4000, help="fixed rate for the CPU-per-request runs")
    ap.add_argument("--repeat", type=int, default=3, help="closed-loop rounds, interleaved; medians are reported")
    ap.add_argument("--no-same-cores", action="store_true", help="skip the one-core-per-proxy section")
    ap.add_argument("--only-same-cores", action="store_true", help="run only the one-core-per-proxy section")
    ap.add_argument("--compare", metavar="BIN",
                    help="another gatehouse binary (say, a build of the previous commit) to run beside this one "
                         "in the same-cores section, as `gatehouse-compare`")
    args = ap.parse_args()
    rates = [int(r) for r in args.rates.split(",")]
    if not shutil.which("oha"):
        raise SystemExit("oha not found: cargo install oha")
    if not args.no_build:
        sh("cargo", "build", "--release", "-p", "gatehouse", "-p", "gatehouse-e2e", "--bin", "gatehouse", "--bin", "bench_upstream", "--bin", "bench_bare_proxy", cwd=ROOT)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    work = tempfile.mkdtemp(prefix="gatehouse-bench-")
    procs = []
    try:
        up = subprocess.Popen([os.path.join(target, "release", "bench_upstream"), f"127.0.0.1:{UPSTREAM_PORT}"], stdout=subprocess.DEVNULL)
        procs.append(up)
        if args.only_same_cores:
            wait_http(f"http://127.0.0.1:{UPSTREAM_PORT}/")
            nginx = find_nginx()
            same_cores(args, target, work, nginx, up.pid)
            return
        cfg = os.path.join(work, "gatehouse.toml")
        with open(cfg, "w") as f:
            f.write(gatehouse_config(GATEHOUSE_PORT, ADMIN_PORT, UPSTREAM_PORT, f"{work}/data"))
        log = open(os.path.join(work, "gatehouse.log"), "w")
        gh = subprocess.Popen([os.path.join(target, "release", "gatehouse"), "run", "--config", cfg], stderr=log, stdout=log, env={**os.environ, "GATEHOUSE_STORE_KEY": STORE_KEY})
        procs.append(gh)
        paths = {
            "direct": (f"http://127.0.0.1:{UPSTREAM_PORT}{PATH}?q=SELECT+Id+FROM+Account+LIMIT+1", []),
            "gatehouse": (f"http://127.0.0.1:{GATEHOUSE_PORT}/bench{PATH}?q=SELECT+Id+FROM+Account+LIMIT+1", [f"Proxy-Authorization: Bearer {TOKEN}"]),
        }
        nginx = find_nginx()
        if nginx:
            ncfg = os.path.join(work, "nginx.conf")
            with open(ncfg, "w") as f:
                f.write(nginx_config(work, NGINX_PORT, UPSTREAM_PORT, os.cpu_count() or 2, "nginx.pid"))
            ng = subprocess.Popen([nginx, "-c", ncfg, "-p", work], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            procs.append(ng)
            paths["nginx"] = (f"http://127.0.0.1:{NGINX_PORT}{PATH}?q=SELECT+Id+FROM+Account+LIMIT+1", [])
        workers = os.cpu_count() or 2
        bare = subprocess.Popen([os.path.join(target, "release", "bench_bare_proxy"), f"127.0.0.1:{BARE_PORT}", f"127.0.0.1:{UPSTREAM_PORT}", str(min(workers, 4))], stdout=subprocess.DEVNULL)
        procs.append(bare)
        bare_path = (f"http://127.0.0.1:{BARE_PORT}{PATH}?q=SELECT+Id+FROM+Account+LIMIT+1", [])
        wait_http(f"http://127.0.0.1:{UPSTREAM_PORT}/")
        wait_http(f"http://127.0.0.1:{BARE_PORT}/")
        wait_http(f"http://127.0.0.1:{ADMIN_PORT}/readyz")
        if nginx:
            wait_http(f"http://127.0.0.1:{NGINX_PORT}/")
        # Warm up pools and caches.
        for name, (url, hdrs) in paths.items():
            oha(url, hdrs, rate=500, seconds=2)

        print(f"# open loop, {args.seconds}s per run, latency-corrected; added = path - direct (ms)")
        print(f"{'rate':>6} {'path':>10} {'p50':>8} {'p99':>8} {'p99.9':>8} {'+p50':>8} {'+p99':>8} {'+p99.9':>8} {'ok/total':>14}")
        results = {}
        for rate in rates:
            for name, (url, hdrs) in paths.items():
                r = oha(url, hdrs, rate=rate, seconds=args.seconds)
                results[(rate, name)] = r
            base = results[(rate, "direct")]
            for name in paths:
                r = results[(rate, name)]
                add = {k: r[k] - base[k] for k in ("p50", "p99", "p99.9")}
                print(f"{rate:>6} {name:>10} {r['p50']:8.3f} {r['p99']:8.3f} {r['p99.9']:8.3f} "
                      f"{add['p50']:8.3f} {add['p99']:8.3f} {add['p99.9']:8.3f} {r['ok']:>6}/{r['total']:<7}")
        print(f"# closed loop, 64 connections: maximum throughput (req/s), {args.repeat} interleaved rounds, median")
        closed = {**paths, "bare": bare_path}
        rounds = {name: [] for name in closed}
        for _ in range(args.repeat):
            for name, (url, hdrs) in closed.items():
                rounds[name].append(oha(url, hdrs, seconds=args.seconds, connections=64)["rps"])
        peak = {name: sorted(v)[len(v) // 2] for name, v in rounds.items()}
        for name in closed:
            print(f"{name:>10} {peak[name]:10.0f} req/s  (rounds: {', '.join(f'{x:.0f}' for x in rounds[name])})")
        if "nginx" in peak:
            ratios = [g / n for g, n in zip(rounds["gatehouse"], rounds["nginx"])]
            print(f"throughput ratio gatehouse/nginx: {peak['gatehouse'] / peak['nginx']:.2f} (per round: {', '.join(f'{r:.2f}' for r in ratios)})")
            ratios = [b / n for b, n in zip(rounds["bare"], rounds["nginx"])]
            print(f"throughput ratio bare hyper proxy/nginx: {peak['bare'] / peak['nginx']:.2f} (per round: {', '.join(f'{r:.2f}' for r in ratios)})")
        ratios = [g / b for g, b in zip(rounds["gatehouse"], rounds["bare"])]
        print(f"throughput ratio gatehouse/bare hyper proxy: {peak['gatehouse'] / peak['bare']:.2f} (per round: {', '.join(f'{r:.2f}' for r in ratios)})")
        # CPU per request: the least noisy comparison on a shared machine (load generator and
        # upstream CPU are left out).
        pids = {"gatehouse": [gh.pid], "bare": [bare.pid]}
        if nginx:
            workers_of = subprocess.run(["pgrep", "-P", str(ng.pid)], capture_output=True, text=True).stdout.split()
            pids["nginx"] = [int(p) for p in workers_of]
        rate = args.cpu_rate
        print(f"# proxy CPU per request at {rate} req/s, {args.seconds}s, {args.repeat} interleaved rounds, median (microseconds)")
        cpu = {name: [] for name in pids}
        for _ in range(args.repeat):
            for name in pids:
                url, hdrs = closed[name]
                cpu[name].append(cpu_per_request(pids[name], url, hdrs, rate, args.seconds))
        med = {}
        for name, values in cpu.items():
            total = sorted(u + s for u, s in values)[len(values) // 2]
            user = sorted(u for u, _ in values)[len(values) // 2]
            system = sorted(s for _, s in values)[len(values) // 2]
            med[name] = total
            print(f"{name:>10} {total:7.1f} total  {user:7.1f} user  {system:7.1f} system")
        if "nginx" in med:
            print(f"CPU per request gatehouse/nginx: {med['gatehouse'] / med['nginx']:.2f}; bare/nginx: {med['bare'] / med['nginx']:.2f}")
        print(f"gatehouse peak RSS: {peak_rss_mb(gh.pid):.1f} MB")
        if not args.no_same_cores:
            same_cores(args, target, work, nginx, up.pid)
    finally:
        stop(procs)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
