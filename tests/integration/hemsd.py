"""Start and stop a real hemsd on loopback for integration tests (python3 stdlib only).

Every test gets its own data folder and free ports, so tests and nodes run side by side.
"""
import os
import signal
import socket
import subprocess
import tempfile
import time
import unittest
import weakref

BIN_DIR = os.environ.get("HEMS_BIN_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
SHARED = os.environ.get("HEMS_SHARED_DATA", os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data"))
# "asan" or "tsan" when the binaries under test are sanitizer builds (tests/CMakeLists.txt).
SANITIZER = os.environ.get("HEMS_SANITIZER", "")


def fleet_size(normal, env=None, sanitized=None):
    """How many simulated HeNBs a heavy test runs: <normal>, or in a sanitizer pass
    <sanitized> (default a tenth, at least 50), so the whole suite stays well under 15
    minutes; an environment variable <env> overrides both (long runs)."""
    if env and os.environ.get(env):
        return int(os.environ[env])
    if SANITIZER:
        return sanitized if sanitized is not None else max(50, normal // 10)
    return normal


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def reserve_port():
    """A free 127.0.0.1 port, held by a bound, not listening, SO_REUSEPORT socket: hemsd's
    SO_REUSEPORT listeners can still bind it, but while the socket is open the kernel gives
    the port to no other free_port() or reserve_port() of a test running beside this one.
    A port from free_port() is free only until it is used: two hemsd given the same one
    would both bind it through SO_REUSEPORT and share its connections (a GET /metrics
    answered 404 by the other one's CWMP listener). Returns (port, socket)."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1], s


class Hemsd:
    """A hemsd process. Use as a context manager; stop() asserts a clean exit."""

    def __init__(self, *args, config=None, shards=1, env=None, admission=False):
        """<admission>: keep hemsd's admission control on (its default). Off otherwise, so
        that a test's timing does not depend on how loaded the machine running it is
        (admission control sheds on loop lag and commit latency); a test that sets any
        admission.* key itself keeps what it set."""
        self.tmp = tempfile.TemporaryDirectory(prefix="hemsd-test-")
        self.data_dir = os.path.join(self.tmp.name, "data")
        self.cwmp_port, cwmp_hold = reserve_port()
        self.admin_port, admin_hold = reserve_port()
        self.port_holds = [cwmp_hold, admin_hold]
        self.log_path = os.path.join(self.tmp.name, "hemsd.log")
        self.config_path = None
        if config is not None:
            self.config_path = os.path.join(self.tmp.name, "hemsd.conf")
            with open(self.config_path, "w") as f:
                f.write(config)
        self.args = [os.path.join(BIN_DIR, "hemsd"),
                     "--data-dir", self.data_dir,
                     "--cwmp-listen", "127.0.0.1:%d" % self.cwmp_port,
                     "--admin-listen", "127.0.0.1:%d" % self.admin_port,
                     "--shards", str(shards)]
        if self.config_path:
            self.args += ["--config", self.config_path]
        if not admission and not any(str(a).startswith("admission.") for a in args):
            self.args += ["--set", "admission.enabled=false"]
        self.args += list(args)
        self.env = dict(os.environ, **(env or {}))
        self.proc = None

    def start(self, wait=True):
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT, env=self.env)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("hemsd exited with %d:\n%s" % (self.proc.returncode, self.logs()))
            try:
                st, _, _ = http_request(self.admin_port, "GET", "/healthz", timeout=1)
                if st == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError("hemsd not ready:\n" + self.logs())

    def logs(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=15):
        """SIGTERM, then assert exit code 0 within <timeout>. Returns the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("hemsd did not stop within %ss:\n%s" % (timeout, self.logs()))
        return rc

    def metrics(self):
        st, _, body = http_request(self.admin_port, "GET", "/metrics")
        assert st == 200, st
        out = {}
        for line in body.decode().splitlines():
            if line and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                out[k] = float(v)
        return out

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        try:
            rc = self.stop()
            if exc[0] is None:
                assert rc == 0, "hemsd exited with %d:\n%s" % (rc, self.logs())
        finally:
            if self.proc and self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.log.close()
            self.tmp.cleanup()
            for hold in self.port_holds:
                hold.close()


def connect(port, timeout=5):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


_leftover = weakref.WeakKeyDictionary()


def read_response(sock, head_only=False):
    """Reads one HTTP/1.1 response from <sock>: (status, headers dict (lower-case), body).
    Bytes past the response (pipelined answers) are kept for the next call."""
    buf = _leftover.pop(sock, b"")
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before a complete response head: %r" % buf)
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        k, v = line.split(":", 1)
        headers[k.strip().lower()] = v.strip()
    if status == 100:
        # 100 Continue: the real response follows.
        _leftover[sock] = rest
        return ("continue", None, None)
    n = 0 if head_only or status in (204, 304) else int(headers.get("content-length", "0"))
    while len(rest) < n:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed inside a body")
        rest += chunk
    if len(rest) > n:
        _leftover[sock] = rest[n:]
    return status, headers, rest[:n]


def http_request(port, method, path, body=b"", headers=None, timeout=5):
    """One request on a new connection."""
    with connect(port, timeout) as s:
        h = {"Host": "127.0.0.1", "Connection": "close"}
        h.update(headers or {})
        if body or method in ("POST", "PUT"):
            h["Content-Length"] = str(len(body))
        req = "%s %s HTTP/1.1\r\n" % (method, path) + "".join("%s: %s\r\n" % kv for kv in h.items()) + "\r\n"
        s.sendall(req.encode() + body)
        return read_response(s, head_only=(method == "HEAD"))


def is_closed(sock, timeout=3):
    """True when the peer closed <sock> (EOF or reset) within <timeout>."""
    sock.settimeout(timeout)
    try:
        data = sock.recv(65536)
        return data == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def main():
    if not os.path.exists(os.path.join(BIN_DIR, "hemsd")):
        print("hemsd binary not found in", BIN_DIR)
        raise SystemExit(1)
    unittest.main(verbosity=2)
