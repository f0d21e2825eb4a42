"""HTTP throughput: `alga-lambda up` next to `wasmtime serve`, both serving a WAT hello.

Both servers run on loopback; oha (a load generator) drives each at every concurrency
for the same duration, alternating servers so both see the same machine load.

usage: bench_http.py ALGA_LAMBDA WASMTIME OHA GUESTS_DIR OUT_JSON [--seconds S]
       [--concurrency 1,16,64] [--rounds N]
With --rounds N each point is measured N times (servers alternating every run, so
both see the same load); a point's figures are its median run by req/s, and the
spread of the per-round ratio up ÷ serve is printed and kept under "ratios".
GUESTS_DIR is what `cargo run --example bench_guests` wrote (alga-hello/ and
wasi-http-hello.wasm).
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request

WAIT_S = 120


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ok(url, proc, log):
    deadline = time.time() + WAIT_S
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                body = r.read()
                if r.status == 200:
                    return body
        except Exception:
            pass
        if proc.poll() is not None or time.time() > deadline:
            raise RuntimeError("server for %s did not come up; log:\n%s" % (url, open(log).read()[-3000:]))
        time.sleep(0.2)


def oha(bin_, url, concurrency, seconds):
    out = subprocess.run(
        [bin_, "-z", "%ds" % seconds, "-c", str(concurrency), "--no-tui", "--output-format", "json", url],
        capture_output=True,
        text=True,
        timeout=seconds + 120,
    )
    if out.returncode != 0:
        raise RuntimeError("oha failed: %s" % out.stderr)
    r = json.loads(out.stdout)
    s, p = r["summary"], r["latencyPercentiles"]
    codes = r.get("statusCodeDistribution", {})
    return {
        "rps": s["requestsPerSec"],
        "p50_ms": p["p50"] * 1e3,
        "p99_ms": p["p99"] * 1e3,
        "success_rate": s["successRate"],
        "status_codes": codes,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("alga_lambda")
    ap.add_argument("wasmtime")
    ap.add_argument("oha")
    ap.add_argument("guests")
    ap.add_argument("out")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--concurrency", default="1,16,64")
    ap.add_argument("--rounds", type=int, default=1)
    a = ap.parse_args()

    work = tempfile.mkdtemp(prefix="alga-bench-http-")
    procs = []
    try:
        up_port, serve_port = free_port(), free_port()
        up_log, serve_log = os.path.join(work, "up.log"), os.path.join(work, "serve.log")
        env = dict(os.environ, ALGA_QUOTA_PER_MINUTE="0", ALGA_QUOTA_PER_DAY="0", ALGA_LOG="warn")
        up = subprocess.Popen(
            [a.alga_lambda, "--data", os.path.join(work, "data"), "up", os.path.join(a.guests, "alga-hello"),
             "--port", str(up_port), "--token", "bench-token"],
            env=env, stdout=open(up_log, "w"), stderr=subprocess.STDOUT,
        )
        procs.append(up)
        serve = subprocess.Popen(
            [a.wasmtime, "serve", "--addr", "127.0.0.1:%d" % serve_port,
             os.path.join(a.guests, "wasi-http-hello.wasm")],
            stdout=open(serve_log, "w"), stderr=subprocess.STDOUT,
        )
        procs.append(serve)
        urls = {
            "alga-lambda up": "http://127.0.0.1:%d/api/ext/com.example.bench/hello" % up_port,
            "wasmtime serve": "http://127.0.0.1:%d/" % serve_port,
        }
        for name, url in urls.items():
            body = wait_ok(url, up if name.startswith("alga") else serve, up_log if name.startswith("alga") else serve_log)
            if body != b"hello":
                raise RuntimeError("%s answered %r, not b'hello'" % (name, body[:200]))
            # Warm-up: connections, pools, caches.
            oha(a.oha, url, 4, 1)
        results = {"seconds": a.seconds, "rounds": a.rounds, "servers": {n: {} for n in urls}, "ratios": {}}
        names = list(urls)
        for c in [int(x) for x in a.concurrency.split(",")]:
            runs = {n: [] for n in names}
            for _ in range(a.rounds):
                for name, url in urls.items():
                    r = oha(a.oha, url, c, a.seconds)
                    runs[name].append(r)
                    print("%-15s c=%-3d %9.0f req/s  p50 %7.3f ms  p99 %7.3f ms  ok %.3f" % (
                        name, c, r["rps"], r["p50_ms"], r["p99_ms"], r["success_rate"]), flush=True)
            for name in names:
                ordered = sorted(runs[name], key=lambda r: r["rps"])
                results["servers"][name][str(c)] = dict(ordered[len(ordered) // 2], runs=runs[name])
            ratios = sorted(u["rps"] / w["rps"] for u, w in zip(runs[names[0]], runs[names[1]]))
            results["ratios"][str(c)] = ratios
            print("c=%-3d up / serve: median %.2fx (min %.2fx, max %.2fx over %d rounds)" % (
                c, ratios[len(ratios) // 2], ratios[0], ratios[-1], len(ratios)), flush=True)
        with open(a.out, "w") as f:
            json.dump(results, f, indent=2)
    finally:
        for p in procs:
            p.kill()
            p.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
