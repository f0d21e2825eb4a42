"""Lambda init and first invocations of the execute bootstrap, against a fake runtime API.

Measures, for the release `bootstrap` of fn-execute (built by `cargo lambda build`):

- init: from just before the process is spawned to its first
  `GET /2018-06-01/runtime/invocation/next` (what Lambda bills as Init, plus fork/exec);
- the first invocation with the artifact fetched from S3 (an empty
  ALGA_ARTIFACT_CACHE_DIR) and with it already cached there (as in /tmp of a Lambda
  sandbox that ran before), then a second, warm invocation in the same process.

Backends are real: S3 + DynamoDB on a moto server (the same one the tests use), with the
bundles published by the release `alga-lambda` CLI (`ALGA_BACKEND=aws`). The runtime API
is a small HTTP server here that speaks the Lambda runtime protocol and timestamps.

usage: bench_lambda.py BOOTSTRAP ALGA_LAMBDA_CLI OUT_JSON EXT_DIR... [--runs N]
Each EXT_DIR is an extension directory with dist/main.wasm (the first endpoint is called).
"""

import argparse
import json
import os
import queue
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TENANT = "acme"
TOKEN = "bench-token"
# Every wait is bounded: a stuck bootstrap fails the run instead of hanging it.
WAIT_S = 120


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RuntimeApi:
    """The Lambda runtime API: hands out queued events, records the timing of each step."""

    def __init__(self):
        self.events = queue.Queue()
        self.results = queue.Queue()
        self.first_next = None
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_):
                pass

            def setup(self):
                super().setup()
                # Headers and body go out in two writes: without TCP_NODELAY, Nagle holds the
                # body until the function's delayed ACK (~40 ms) on a reused connection, which
                # the second invocation would have counted as its own time.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def do_GET(self):
                if not self.path.endswith("/runtime/invocation/next"):
                    self.send_error(404)
                    return
                if api.first_next is None:
                    api.first_next = time.perf_counter()
                try:
                    request_id, event = api.events.get(timeout=WAIT_S)
                except queue.Empty:
                    self.send_error(504)
                    return
                body = json.dumps(event).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.send_header("lambda-runtime-aws-request-id", request_id)
                self.send_header("lambda-runtime-deadline-ms", str(int(time.time() * 1000) + 30000))
                self.send_header(
                    "lambda-runtime-invoked-function-arn",
                    "arn:aws:lambda:us-east-1:123456789012:function:fn-execute",
                )
                self.send_header("lambda-runtime-trace-id", "Root=1-00000000-000000000000000000000000")
                self.end_headers()
                api.sent_at = time.perf_counter()
                self.wfile.write(body)

            def do_POST(self):
                n = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(n)
                now = time.perf_counter()
                self.send_response(202)
                self.send_header("content-length", "0")
                self.end_headers()
                api.results.put((self.path, now, body))

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def invoke(self, event):
        """Queues one event and waits for the function's answer: (seconds, response)."""
        self.events.put(("req-%d" % time.monotonic_ns(), event))
        path, done, body = self.results.get(timeout=WAIT_S)
        if not path.endswith("/response"):
            raise RuntimeError("invocation failed: %s %s" % (path, body[:500]))
        return done - self.sent_at, json.loads(body)


def direct_event(ext, path):
    """An HTTP API (v2) event for GET /api/ext/<ext><path> with the tenant in JWT claims."""
    raw = "/api/ext/%s%s" % (ext, path)
    return {
        "version": "2.0",
        "routeKey": "ANY /api/ext/{extensionId}/{proxy+}",
        "rawPath": raw,
        "rawQueryString": "",
        "headers": {"accept": "*/*"},
        "pathParameters": {"extensionId": ext, "proxy": path.lstrip("/")},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "bench",
            "domainName": "bench.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "bench",
            "http": {
                "method": "GET",
                "path": raw,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "bench",
            },
            "requestId": "bench",
            "routeKey": "$default",
            "stage": "$default",
            "time": "22/Nov/2026:20:00:00 +0000",
            "timeEpoch": 1795464000000,
            "authorizer": {"jwt": {"claims": {"tenant_id": TENANT, "sub": "bench-user"}, "scopes": None}},
        },
        "isBase64Encoded": False,
    }


def start_moto():
    port = free_port()
    log = open(os.path.join(tempfile.gettempdir(), "alga-bench-moto.log"), "w")
    proc = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "scripts/moto_server_serial.py"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=log,
    )
    deadline = time.time() + 60
    while True:
        try:
            urllib.request.urlopen("http://127.0.0.1:%d/moto-api/" % port, timeout=2)
            return proc, port
        except Exception:
            if time.time() > deadline or proc.poll() is not None:
                raise RuntimeError("moto did not start")
            time.sleep(0.1)


def provision(endpoint, bucket, table):
    kw = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
    boto3.client("s3", **kw).create_bucket(Bucket=bucket)
    attrs = [{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk", "gsi1pk", "gsi1sk")]
    boto3.client("dynamodb", **kw).create_table(
        TableName=table,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=attrs,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "gsi1",
                "KeySchema": [{"AttributeName": "gsi1pk", "KeyType": "HASH"}, {"AttributeName": "gsi1sk", "KeyType": "RANGE"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )


def run(cmd, env, cwd):
    out = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError("%s failed:\n%s%s" % (" ".join(cmd), out.stdout, out.stderr))
    return out.stdout + out.stderr


def publish(cli, env, work, ext_dir, trust_path):
    """Packs, signs, publishes (precompiles) and installs one extension; returns (id, path)."""
    manifest = json.load(open(os.path.join(ext_dir, "manifest.json")))
    ext = manifest["name"]
    bundle = os.path.join(work, ext + ".tar.zst")
    run([cli, "pack", ext_dir, "--out", bundle], env, work)
    run([cli, "sign", bundle, "--key", os.path.join(work, "key.json")], env, work)
    run([cli, "publish", bundle], env, work)
    run([cli, "install", ext, "--tenant", TENANT, "--grant-requested"], env, work)
    return ext, manifest["api"]["endpoints"][0]["path"]


def bootstrap_env(base, cache_dir, api_port):
    env = dict(base)
    env.update(
        AWS_LAMBDA_RUNTIME_API="127.0.0.1:%d" % api_port,
        AWS_LAMBDA_FUNCTION_NAME="fn-execute",
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE="1024",
        AWS_LAMBDA_FUNCTION_VERSION="$LATEST",
        AWS_LAMBDA_LOG_STREAM_NAME="bench",
        AWS_LAMBDA_LOG_GROUP_NAME="bench",
        RUNNER_SERVICE_TOKEN=TOKEN,
        ALGA_ARTIFACT_CACHE_DIR=cache_dir,
    )
    return env


def one_process(bootstrap, env, events):
    """Starts the bootstrap, waits for its first poll, runs `events`; returns the timings."""
    api = RuntimeApi()
    env = bootstrap_env(env, env["ALGA_ARTIFACT_CACHE_DIR"], api.port)
    t0 = time.perf_counter()
    proc = subprocess.Popen([bootstrap], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + WAIT_S
        while api.first_next is None:
            if proc.poll() is not None:
                raise RuntimeError("bootstrap exited with %s before polling" % proc.returncode)
            if time.time() > deadline:
                raise RuntimeError("bootstrap did not poll within %ds" % WAIT_S)
            time.sleep(0.0005)
        init = api.first_next - t0
        times = []
        for event in events:
            seconds, response = api.invoke(event)
            if response.get("statusCode") != 200:
                raise RuntimeError("unexpected response: %s" % json.dumps(response)[:500])
            times.append(seconds)
        return init, times
    finally:
        proc.kill()
        proc.wait()
        api.server.shutdown()


def ms(xs):
    return {"p50_ms": statistics.median(xs) * 1e3, "min_ms": min(xs) * 1e3, "max_ms": max(xs) * 1e3, "n": len(xs)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bootstrap")
    ap.add_argument("cli")
    ap.add_argument("out")
    ap.add_argument("ext_dirs", nargs="+")
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()

    moto, moto_port = start_moto()
    work = tempfile.mkdtemp(prefix="alga-bench-lambda-")
    try:
        endpoint = "http://127.0.0.1:%d" % moto_port
        bucket, table = "bench-bucket", "bench-table"
        provision(endpoint, bucket, table)
        base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and not k.startswith("ALGA_")}
        base.update(
            ALGA_BACKEND="aws",
            ALGA_BUCKET=bucket,
            ALGA_TABLE=table,
            ALGA_S3_FORCE_PATH_STYLE="true",
            AWS_ENDPOINT_URL=endpoint,
            AWS_REGION="us-east-1",
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            ALGA_DATA=os.path.join(work, "data"),
            SIGNING_TRUST_BUNDLE=os.path.join(work, "trust.json"),
        )
        run([a.cli, "keygen", "--key-id", "bench", "--out", os.path.join(work, "key.json")], base, work)
        key = json.load(open(os.path.join(work, "key.json")))
        json.dump(
            {"keys": [{"key_id": "bench", "algorithm": "ed25519", "public_key": key["public_key"]}], "revoked": []},
            open(base["SIGNING_TRUST_BUNDLE"], "w"),
        )
        results = {"runs": a.runs, "extensions": {}}
        inits = []
        for ext_dir in a.ext_dirs:
            ext, path = publish(a.cli, base, work, os.path.abspath(ext_dir), base["SIGNING_TRUST_BUNDLE"])
            event = direct_event(ext, path)
            from_s3, from_tmp, warm = [], [], []
            for i in range(a.runs):
                cache = os.path.join(work, "tmp-%s-%d" % (ext, i))
                os.makedirs(cache)
                env = dict(base, ALGA_ARTIFACT_CACHE_DIR=cache)
                # Empty /tmp: the artifact comes from S3 (and lands in the cache).
                init, (first, second) = one_process(a.bootstrap, env, [event, event])
                inits.append(init)
                from_s3.append(first)
                warm.append(second)
                # A new process on the same /tmp: the artifact comes from the disk cache.
                init, (first,) = one_process(a.bootstrap, env, [event])
                inits.append(init)
                from_tmp.append(first)
                shutil.rmtree(cache)
            results["extensions"][ext] = {
                "first_from_s3": ms(from_s3),
                "first_from_tmp": ms(from_tmp),
                "second_warm": ms(warm),
            }
        results["init"] = ms(inits)
        with open(a.out, "w") as f:
            json.dump(results, f, indent=2)
        print(json.dumps(results, indent=2))
    finally:
        moto.kill()
        moto.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
