#!/usr/bin/env python3
"""Wire-level fuzzer for deployguard's HTTPS endpoints.

Takes the real AdmissionReviews of the shared corpus (files containing "AdmissionReview":
JSON verbatim; YAML converted to JSON when PyYAML is installed, with the request fields
the API server always sends filled in where the fixture lacks them), mutates them with
radamsa (the `pyradamsa` package) and POSTs the mutants over TLS, alternately to
/validate and /mutate, to a deployguard server that this script starts itself.

Oracle (anything else is a failure, and the offending mutant is saved for replay):
  * every answer is 200 or 4xx; a 200 carries an AdmissionReview with response.uid and
    response.allowed (and, from /mutate, a patch that is base64 of a JSON array);
    a 4xx carries a message;
  * no 5xx, no reset or timed-out connection, and the server process never exits;
  * peak RSS (VmHWM) stays under --max-rss-mib;
  * afterwards /healthz answers 200, deployguard_panics_total is 0 and SIGTERM ends the
    server with exit code 0.

usage:
  bench/wire_fuzz.sh [--count N] [...]            # venv + pyradamsa, builds release, then this
  bench/wire_fuzz.py [--binary PATH] [--count N] [--corpus DIR] [--workers W] [--seed S]
  bench/wire_fuzz.py --replay bench/out/wire-fuzz/failures/*.bin

--count defaults to 3000 when $CI is set, 100000 otherwise. Mutant i is deterministic for a
given --seed (corpus file and radamsa seed both derive from (seed, i)), and each saved
failure has a .meta.json naming the corpus file, radamsa seed, endpoint and answer.

Without pyradamsa (or with --mutator builtin) a small byte-level mutator of our own is
used instead (see BuiltinMutator): bit flips, JSON-significant byte replacement, range
deletion/duplication, interesting tokens and numbers, truncation. The summary says which.
"""

import argparse
import base64
import collections
import ctypes
import glob
import http.client
import json
import multiprocessing
import os
import queue
import random
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENDPOINTS = ("validate", "mutate")


# ---------------------------------------------------------------------------------------
# Mutators. Both are deterministic functions of (data, seed).


class RadamsaMutator:
    """libradamsa through pyradamsa's bundled shared library.

    pyradamsa.Radamsa.fuzz copies the input byte by byte through ctypes; calling the
    library directly with from_buffer_copy/string_at gives the same bytes for the same
    seed (checked at start-up) with less overhead. radamsa itself costs 3–7 ms per mutant
    of a 2–10 KB AdmissionReview, which is why generation runs in a process pool.
    """

    name = "radamsa"

    def __init__(self, extra=4096):
        import pyradamsa

        self._py = pyradamsa.Radamsa()
        self._lib = self._py.LIB
        self._extra = extra

    def __call__(self, data, seed):
        lib = self._lib
        lib.init()  # pyradamsa re-initialises the OWL VM before every call; so do we
        n = len(data)
        src = (ctypes.c_uint8 * n).from_buffer_copy(data)
        cap = n + self._extra
        dst = (ctypes.c_uint8 * cap)()
        k = lib.radamsa(src, n, dst, cap, seed & 0xFFFFFFFFFFFFFFFF)
        return ctypes.string_at(dst, k)

    def self_check(self, data):
        return self(data, 12345) == self._py.fuzz(data, seed=12345, max_mut=len(data) + self._extra)


class BuiltinMutator:
    """Fallback when pyradamsa cannot be installed: 1–4 random byte-level edits.

    Edits: flip a bit; replace a byte with a JSON-significant one; delete a range;
    duplicate a range; insert an interesting token (huge/negative/float numbers, lone
    surrogate escapes, deep nesting, long strings, NUL, invalid UTF-8); replace a number
    in the text with an interesting one; truncate.
    """

    name = "builtin"
    TOKENS = [
        b"null", b"true", b"false", b"-1", b"0", b"1e309", b"-0", b"18446744073709551616",
        b"-9223372036854775809", b"1.5e-400", b'"\\ud800"', b'"\\u0000"', b"[]", b"{}",
        b'""', b'"%s%n"', b"\x00", b"\xff\xfe", b"\xc3\x28", b"[" * 2000, b"{\"a\":" * 600,
        b'"' + b"A" * 70000 + b'"', b",", b":", b'"kind":"Pod"', b'"containers":[]',
    ]
    NUMBERS = [b"0", b"-1", b"4294967296", b"18446744073709551616", b"1e309", b"0.0000001",
               b"-0", b"99999999999999999999999999", b"1E+2", b"NaN"]
    SIGNIFICANT = b'{}[]",:\\ \n0-.e'

    def __call__(self, data, seed):
        rng = random.Random(seed)
        buf = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            if not buf:
                buf = bytearray(rng.choice(self.TOKENS))
                continue
            op = rng.randrange(7)
            i = rng.randrange(len(buf))
            j = min(len(buf), i + rng.randint(1, 256))
            if op == 0:
                buf[i] ^= 1 << rng.randrange(8)
            elif op == 1:
                buf[i] = rng.choice(self.SIGNIFICANT)
            elif op == 2:
                del buf[i:j]
            elif op == 3:
                buf[i:i] = buf[i:j] * rng.randint(1, 8)
            elif op == 4:
                buf[i:i] = rng.choice(self.TOKENS)
            elif op == 5:
                nums = list(re.finditer(rb"-?\d+(\.\d+)?", bytes(buf)))
                if nums:
                    m = rng.choice(nums)
                    buf[m.start():m.end()] = rng.choice(self.NUMBERS)
            else:
                del buf[i:]
        return bytes(buf)

    def self_check(self, data):
        return True


def make_mutator(kind):
    if kind in ("auto", "radamsa"):
        try:
            return RadamsaMutator()
        except ImportError:
            if kind == "radamsa":
                raise
            print("wire-fuzz: pyradamsa is not installed; using the built-in byte mutator", file=sys.stderr)
    return BuiltinMutator()


# The generator pool: each worker process holds its own mutator and the seeds.
_G = {}


def _gen_init(kind, seeds, base_seed):
    _G["mutate"] = make_mutator(kind)
    _G["seeds"] = seeds
    _G["base"] = base_seed


def plan(base_seed, i, n_seeds):
    """Corpus file index and mutator seed of mutant i: a pure function of (base_seed, i)."""
    rng = random.Random(base_seed * 1_000_003 + i)
    return rng.randrange(n_seeds), rng.getrandbits(63)


def _gen(i):
    seeds = _G["seeds"]
    s, mseed = plan(_G["base"], i, len(seeds))
    return i, s, mseed, _G["mutate"](seeds[s][1], mseed)


# ---------------------------------------------------------------------------------------
# Corpus


def complete_request(req, n):
    """Gatekeeper's gator fixtures carry only operation/object/oldObject. The API server always
    sends uid, kind, resource and userInfo; without them every mutant would stop at the first parse
    error, so fill them in from the object (resource: lower-case kind + "s")."""
    if not isinstance(req, dict):
        return
    obj = req.get("object") or req.get("oldObject") or {}
    api, kind = str(obj.get("apiVersion", "v1")), str(obj.get("kind", "Pod"))
    group, _, version = api.rpartition("/")
    req.setdefault("uid", f"00000000-0000-4000-8000-{n:012d}")
    req.setdefault("kind", {"group": group, "version": version, "kind": kind})
    req.setdefault("resource", {"group": group, "version": version, "resource": kind.lower() + "s"})
    req.setdefault("userInfo", {"username": "system:serviceaccount:kube-system:replicaset-controller"})
    meta = obj.get("metadata") or {}
    for key in ("name", "namespace"):
        if key in meta:
            req.setdefault(key, meta[key])


def load_seeds(corpus):
    """(name, bytes) of every AdmissionReview in the corpus, sorted by file name."""
    try:
        import yaml
    except ImportError:
        yaml = None
    seeds, skipped_yaml = [], 0
    for path in sorted(glob.glob(os.path.join(corpus, "*"))):
        raw = open(path, "rb").read()
        if b"AdmissionReview" not in raw:
            continue
        name = os.path.basename(path)
        if path.endswith(".json"):
            try:
                doc = json.loads(raw)
            except ValueError:
                continue
            if isinstance(doc, dict) and doc.get("kind") == "AdmissionReview":
                seeds.append((name, raw))  # verbatim: whitespace and key order as found
        elif path.endswith((".yaml", ".yml")):
            if yaml is None:
                skipped_yaml += 1
                continue
            try:
                docs = list(yaml.safe_load_all(raw))
            except yaml.YAMLError:
                continue
            for k, doc in enumerate(docs):
                if isinstance(doc, dict) and doc.get("kind") == "AdmissionReview":
                    complete_request(doc.get("request"), len(seeds))
                    body = json.dumps(doc, indent=2, default=str).encode()
                    seeds.append((f"{name}#{k}", body))
    if skipped_yaml:
        print(f"wire-fuzz: PyYAML missing, skipped {skipped_yaml} YAML AdmissionReviews", file=sys.stderr)
    return seeds


# ---------------------------------------------------------------------------------------
# Server


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_certs(d):
    """A CA and a serving certificate for 127.0.0.1/localhost (TOOLS.md recipe)."""
    def run(*cmd):
        subprocess.run(cmd, cwd=d, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run("openssl", "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "30",
        "-subj", "/CN=wire-fuzz-ca", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("openssl", "req", *ec, "-keyout", "tls.key", "-out", "tls.csr", "-subj", "/CN=localhost")
    with open(os.path.join(d, "ext"), "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n")
    run("openssl", "x509", "-req", "-in", "tls.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "tls.crt", "-days", "30", "-sha256", "-extfile", "ext")


class Server:
    def __init__(self, binary, workdir, log_path, extra_args):
        self.port, self.mport = free_port(), free_port()
        args = [binary, "serve", "--listen", f"127.0.0.1:{self.port}",
                "--metrics-listen", f"127.0.0.1:{self.mport}", "--log-format", "json",
                # A quick, clean exit at the end; the drain delay only matters behind a Service.
                "--drain-delay", "0", "--shutdown-grace", "5"]
        if shutil.which("openssl"):
            make_certs(workdir)
            args += ["--tls-cert", os.path.join(workdir, "tls.crt"), "--tls-key", os.path.join(workdir, "tls.key")]
            self.cert_mode = "openssl"
        else:  # the server's own development CA, written into our temporary directory
            args += ["--dev-cert-dir", workdir]
            self.cert_mode = "dev-cert-dir"
        self.ca = os.path.join(workdir, "ca.crt")
        self.log = open(log_path, "wb")
        self.proc = subprocess.Popen(args + extra_args, stdout=self.log, stderr=subprocess.STDOUT)
        self.pid = self.proc.pid
        self.ctx = None

    def wait_ready(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"deployguard exited with {self.proc.returncode} during start-up")
            if os.path.exists(self.ca):
                try:
                    if self.ctx is None:
                        self.ctx = ssl.create_default_context(cafile=self.ca)
                    status, _ = self.get("/readyz")
                    if status == 200:
                        return
                except (OSError, http.client.HTTPException, ssl.SSLError):
                    self.ctx = None if not os.path.getsize(self.ca) else self.ctx
            time.sleep(0.02)
        raise RuntimeError("deployguard did not become ready")

    def conn(self, timeout):
        return http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx, timeout=timeout)

    def get(self, path):
        c = self.conn(5)
        try:
            c.request("GET", path)
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def metrics(self):
        c = http.client.HTTPConnection("127.0.0.1", self.mport, timeout=5)
        try:
            c.request("GET", "/metrics")
            return c.getresponse().read().decode()
        finally:
            c.close()

    def rss_kb(self):
        """(VmRSS, VmHWM) in KiB, or None once the process is gone."""
        try:
            text = open(f"/proc/{self.pid}/status").read()
        except OSError:
            return None
        v = dict(re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", text, re.M))
        return int(v.get("VmRSS", 0)), int(v.get("VmHWM", 0))

    def stop(self, timeout=15):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


# ---------------------------------------------------------------------------------------
# Oracle


def judge(endpoint, status, body):
    """None if the answer is acceptable, else a short failure kind."""
    if status >= 500:
        return f"status-{status}"
    if 400 <= status < 500:
        return None if body.strip() else f"empty-{status}"
    if status != 200:
        return f"status-{status}"
    try:
        review = json.loads(body)
        resp = review["response"]
        ok = (review.get("kind") == "AdmissionReview" and isinstance(resp.get("uid"), str)
              and isinstance(resp.get("allowed"), bool))
        if ok and "patch" in resp:
            ok = isinstance(json.loads(base64.b64decode(resp["patch"], validate=True)), list)
    except (ValueError, KeyError, TypeError, AttributeError):
        ok = False
    return None if ok else "bad-200"


class Run:
    """Shared state of one fuzzing run: counters, failure files, in-flight mutants."""

    def __init__(self, server, out_dir, seeds, max_saved, timeout):
        self.server, self.out, self.seeds = server, out_dir, seeds
        self.max_saved, self.timeout = max_saved, timeout
        self.lock = threading.Lock()
        self.status = collections.Counter()
        self.failures = collections.Counter()
        self.n_fail = self.done = self.saved = self.connects = 0
        self.inflight = {}
        self.stop = threading.Event()
        self.server_exit = None

    def save(self, item, kind, detail):
        i, s, mseed, body, endpoint = item
        with self.lock:
            if self.saved >= self.max_saved:
                return
            self.saved += 1
        os.makedirs(os.path.join(self.out, "failures"), exist_ok=True)
        stem = os.path.join(self.out, "failures", f"{i:07d}-{endpoint}-{kind}")
        with open(stem + ".bin", "wb") as f:
            f.write(body)
        meta = {"index": i, "endpoint": f"/{endpoint}", "kind": kind, "corpus_file": self.seeds[s][0],
                "mutator_seed": mseed, "body_bytes": len(body), **detail}
        with open(stem + ".meta.json", "w") as f:
            json.dump(meta, f, indent=2)

    def fail(self, item, kind, detail):
        with self.lock:
            self.n_fail += 1
            self.failures[kind] += 1
        self.save(item, kind, detail)

    def worker(self, wid, q):
        conn = None
        while True:
            item = q.get()
            if item is None:
                break
            if self.stop.is_set():  # the server is gone: drain the queue so the producer never blocks
                continue
            endpoint = item[4]
            with self.lock:
                self.inflight[wid] = item
            if conn is None:
                conn = self.server.conn(self.timeout)
                with self.lock:
                    self.connects += 1
            try:
                conn.request("POST", f"/{endpoint}", body=item[3], headers={"Content-Type": "application/json"})
                r = conn.getresponse()
                body = r.read()
                if r.will_close:  # the server said Connection: close; open a new one next time
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as e:
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.05)  # let a dying server finish dying before we ask
                exited = self.server.proc.poll() is not None
                kind = "server-exit" if exited else "connection-error"
                self.fail(item, kind, {"error": repr(e)})
                if exited:
                    self.server_exit = self.server.proc.returncode
                    self.stop.set()
                continue
            finally:
                with self.lock:
                    self.inflight.pop(wid, None)
                    self.done += 1
            with self.lock:
                self.status[r.status] += 1
            kind = judge(endpoint, r.status, body)
            if kind:
                self.fail(item, kind, {"status": r.status, "response": body[:4096].decode("utf-8", "replace")})
        if conn is not None:
            conn.close()


def rss_sampler(run, interval, csv_path, samples):
    with open(csv_path, "w") as f:
        f.write("elapsed_s,requests_done,vmrss_kib,vmhwm_kib\n")
        t0 = time.time()
        while not run.stop.wait(interval):
            v = run.server.rss_kb()
            if v is None:
                break
            samples.append(v)
            f.write(f"{time.time() - t0:.2f},{run.done},{v[0]},{v[1]}\n")


# ---------------------------------------------------------------------------------------


def default_corpus():
    if os.environ.get("WIRE_FUZZ_CORPUS"):
        return os.environ["WIRE_FUZZ_CORPUS"]
    if os.environ.get("SHARED_DIR"):
        return os.path.join(os.environ["SHARED_DIR"], "corpus")
    return os.path.join(REPO, "..", "shared", "corpus")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--binary", default=os.environ.get("DEPLOYGUARD_BIN", os.path.join(REPO, "target", "release", "deployguard")))
    p.add_argument("--count", type=int, default=int(os.environ.get("WIRE_FUZZ_COUNT", 3000 if os.environ.get("CI") else 100000)),
                   help="mutants to send (default: 3000 when $CI is set, else 100000; env WIRE_FUZZ_COUNT)")
    p.add_argument("--duration", type=float, default=0, help="stop sending after this many seconds (0: no limit)")
    p.add_argument("--corpus", default=default_corpus(), help="corpus directory (env WIRE_FUZZ_CORPUS; default ../shared/corpus)")
    p.add_argument("--out", default=os.path.join(REPO, "bench", "out", "wire-fuzz"), help="output directory (emptied first)")
    p.add_argument("--workers", type=int, default=8, help="concurrent keep-alive connections")
    p.add_argument("--gen-procs", type=int, default=max(1, min(2, os.cpu_count() or 1)), help="mutant generator processes")
    p.add_argument("--seed", type=int, default=1, help="base seed; mutant i is a function of (seed, i)")
    p.add_argument("--mutator", choices=["auto", "radamsa", "builtin"], default="auto")
    p.add_argument("--max-rss-mib", type=float, default=64, help="fail if peak RSS (VmHWM) exceeds this")
    p.add_argument("--rss-interval", type=float, default=0.25, help="seconds between RSS samples")
    p.add_argument("--timeout", type=float, default=10, help="client socket timeout per request, seconds")
    p.add_argument("--max-saved", type=int, default=200, help="failing mutants saved at most")
    p.add_argument("--server-arg", action="append", default=[], help="extra argument for `deployguard serve` (repeatable)")
    p.add_argument("--replay", nargs="+", metavar="FILE", help="post these saved mutants (endpoint from the file name or --endpoint) and stop")
    p.add_argument("--endpoint", choices=ENDPOINTS, help="endpoint for --replay files whose name does not say")
    return p.parse_args()


def replay(args, server):
    bad = 0
    for path in args.replay:
        m = re.search(r"-(validate|mutate)-", os.path.basename(path))
        endpoint = args.endpoint or (m.group(1) if m else None)
        if endpoint is None:
            sys.exit(f"{path}: cannot tell the endpoint; pass --endpoint")
        body = open(path, "rb").read()
        c = server.conn(args.timeout)
        try:
            c.request("POST", f"/{endpoint}", body=body, headers={"Content-Type": "application/json"})
            r = c.getresponse()
            resp = r.read()
            kind = judge(endpoint, r.status, resp)
            print(f"{path}: /{endpoint} -> {r.status} {'OK' if not kind else 'FAIL ' + kind}: {resp[:300]!r}")
        except (OSError, http.client.HTTPException) as e:
            kind = "connection-error"
            print(f"{path}: /{endpoint} -> {e!r}")
        finally:
            c.close()
        time.sleep(0.05)
        if server.proc.poll() is not None:
            print(f"{path}: the server exited with {server.proc.returncode}")
            return 1
        bad += bool(kind)
    return 1 if bad else 0


def main():
    args = parse_args()
    if not os.access(args.binary, os.X_OK):
        sys.exit(f"wire-fuzz: no executable at {args.binary} (cargo build --release --locked)")
    tmp = tempfile.mkdtemp(prefix="wire-fuzz-")
    if args.replay:
        server = Server(args.binary, tmp, os.path.join(tmp, "deployguard.log"), args.server_arg)
        try:
            server.wait_ready()
            rc = replay(args, server)
        finally:
            code = server.stop()
        print(f"server log: {tmp}/deployguard.log; exit code {code}")
        sys.exit(rc or (code != 0))

    seeds = load_seeds(args.corpus)
    if not seeds:
        sys.exit(f"wire-fuzz: no AdmissionReview found in {args.corpus}")
    mutator = make_mutator(args.mutator)
    if not mutator.self_check(seeds[0][1]):
        sys.exit("wire-fuzz: direct libradamsa call disagrees with pyradamsa.fuzz")
    shutil.rmtree(args.out, ignore_errors=True)
    os.makedirs(args.out)

    server = Server(args.binary, tmp, os.path.join(args.out, "deployguard.log"), args.server_arg)
    problems = []
    run = None
    try:
        server.wait_ready()
        time.sleep(0.5)
        rss_idle = server.rss_kb()[0]
        run = Run(server, args.out, seeds, args.max_saved, args.timeout)

        # Sanity: every unmutated seed, to both endpoints, must not get a 5xx, and most get 200.
        seed_status = collections.Counter()
        c = server.conn(args.timeout)
        for s, (name, body) in enumerate(seeds):
            for endpoint in ENDPOINTS:
                c.request("POST", f"/{endpoint}", body=body, headers={"Content-Type": "application/json"})
                r = c.getresponse()
                resp = r.read()
                seed_status[r.status] += 1
                kind = judge(endpoint, r.status, resp)
                if kind:
                    run.fail((-1 - s, s, 0, body, endpoint), "seed-" + kind, {"status": r.status, "response": resp[:4096].decode("utf-8", "replace")})
        c.close()
        print(f"wire-fuzz: {len(seeds)} corpus AdmissionReviews ({mutator.name} mutator, {args.gen_procs} generator processes, "
              f"{args.workers} connections, certificates by {server.cert_mode}); unmutated: "
              + ", ".join(f"{n}×{st}" for st, n in sorted(seed_status.items())), flush=True)

        samples = []
        sampler = threading.Thread(target=rss_sampler, args=(run, args.rss_interval, os.path.join(args.out, "rss.csv"), samples), daemon=True)
        sampler.start()
        q = queue.Queue(maxsize=args.workers * 4)
        threads = [threading.Thread(target=run.worker, args=(w, q), daemon=True) for w in range(args.workers)]
        for t in threads:
            t.start()

        t0 = time.time()
        sent = 0
        last_report = t0
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(args.gen_procs, initializer=_gen_init, initargs=(mutator.name, seeds, args.seed)) as pool:
            for i, s, mseed, body in pool.imap(_gen, range(args.count), chunksize=16):
                if run.stop.is_set() or (args.duration and time.time() - t0 > args.duration):
                    break
                q.put((i, s, mseed, body, ENDPOINTS[i % 2]))
                sent += 1
                now = time.time()
                if now - last_report >= 30:
                    last_report = now
                    v = server.rss_kb() or (0, 0)
                    print(f"wire-fuzz: {run.done}/{args.count} after {now - t0:.0f} s, {run.n_fail} failures, "
                          f"RSS {v[0] / 1024:.1f} MiB", flush=True)
            pool.terminate()
        for _ in threads:
            q.put(None)
        for t in threads:
            t.join()
        elapsed = time.time() - t0

        # A server that died takes the in-flight mutants with it: save them all for replay.
        if run.server_exit is not None:
            problems.append(f"deployguard exited with {run.server_exit} during the run")
            for item in list(run.inflight.values()):
                run.save(item, "inflight-at-exit", {})

        time.sleep(1)  # let freed memory settle before the end sample
        end = server.rss_kb()
        run.stop.set()
        sampler.join()
        rss_end = end[0] if end else 0
        rss_peak = max([end[1] if end else 0] + [max(v) for v in samples])

        if server.proc.poll() is None:
            status, body = server.get("/healthz")
            if status != 200:
                problems.append(f"/healthz answered {status} {body[:200]!r} after the run")
            metrics = server.metrics()
            m = re.search(r"^deployguard_panics_total (\d+)", metrics, re.M)
            if not m:
                problems.append("deployguard_panics_total missing from /metrics")
            elif int(m.group(1)) != 0:
                problems.append(f"deployguard_panics_total is {m.group(1)}")
            os.makedirs(args.out, exist_ok=True)  # in case the directory was removed mid-run
            with open(os.path.join(args.out, "metrics.txt"), "w") as f:
                f.write(metrics)
        elif run.server_exit is None:
            problems.append(f"deployguard exited with {server.proc.returncode}")
        if rss_peak > args.max_rss_mib * 1024:
            problems.append(f"peak RSS {rss_peak / 1024:.1f} MiB exceeds {args.max_rss_mib:g} MiB")
    finally:
        code = server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    if code != 0 and run.server_exit is None:  # a clean SIGTERM shutdown exits 0
        problems.append(f"deployguard exited with {code} after SIGTERM")

    n = sum(run.status.values()) + run.failures["connection-error"] + run.failures["server-exit"]
    n200 = run.status[200]
    n4xx = sum(v for k, v in run.status.items() if 400 <= k < 500)
    failures = run.n_fail + len(problems)
    by_status = ", ".join(f"{k}: {v}" for k, v in sorted(run.status.items()))
    print(f"wire-fuzz: statuses {{{by_status}}}; {run.connects} connections opened; {elapsed:.1f} s")
    for kind, k in sorted(run.failures.items()):
        print(f"wire-fuzz: FAIL {kind}: {k}")
    for p in problems:
        print(f"wire-fuzz: FAIL {p}")
    if run.saved:
        print(f"wire-fuzz: {run.saved} failing mutants saved in {os.path.join(args.out, 'failures')} "
              f"(replay: bench/wire_fuzz.py --replay {os.path.join(args.out, 'failures')}/*.bin)")
    print(f"wire-fuzz: {n} mutants, {n200} 200, {n4xx} 4xx, {failures} failures, rate {n / elapsed:.0f}/s, "
          f"RSS idle/peak/end {rss_idle / 1024:.1f}/{rss_peak / 1024:.1f}/{rss_end / 1024:.1f} MiB")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
