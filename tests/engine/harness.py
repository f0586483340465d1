"""Fixtures for tests and benchmarks that run real vLLM: the pinned venv, the tiny model,
a vLLM server in its own process group, and small HTTP/SSE clients. Standard library only,
so it runs on the host's python3 (the venv's python runs only vLLM itself).

Why a process group: SIGKILL to vLLM's API server PID leaves its engine processes running
(about 3 GB, still alive 35 s later, /work/shared/ENGINE.md); only signalling the whole
group stops it. `Vllm.stop()` does that and then checks that no member is left.
"""

import hashlib
import http.client
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TOOLS = REPO / "tools"

# The known-answer request the agent's `[engine.known_answer]` pins: a `/v1/completions`
# greedy (temperature 0) completion; the digest is SHA-256 of `choices[0].text`.
KNOWN_PROMPT = "The quick brown fox"
KNOWN_MAX_TOKENS = 16


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def venv():
    """Path of the pinned vLLM venv (built on first use; a no-op when its stamp matches)."""
    if not os.environ.get("COCOON_VLLM_VENV"):
        out = subprocess.run([TOOLS / "vllm-venv"], check=True, stdout=subprocess.PIPE, text=True)
        os.environ["COCOON_VLLM_VENV"] = out.stdout.strip()
    return Path(os.environ["COCOON_VLLM_VENV"])


def tiny_model(out):
    """Writes the tiny model into `out`; returns its `manifest-sha256:HEX` digest."""
    env = {**os.environ, "COCOON_VLLM_VENV": str(venv())}
    r = subprocess.run([TOOLS / "make-tiny-model", out], check=True, stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL, text=True, env=env)
    return r.stdout.strip()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def group_members(pgid):
    """PIDs whose process group is `pgid` (from /proc/PID/stat field 5)."""
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = Path(f"/proc/{d}/stat").read_text()
        except OSError:
            continue
        # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 2 and int(fields[2]) == pgid:
            pids.append(int(d))
    return pids


class Vllm:
    """vLLM's OpenAI server on a loopback port, started as ENGINE.md says."""

    def __init__(self, model_dir, port=None, name="tiny", workdir=None, python=None,
                 extra_args=()):
        self.model_dir = Path(model_dir)
        self.port = port or free_port()
        self.name = name
        self._tmp = None
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="cocoon-vllm-")
            workdir = self._tmp.name
        self.workdir = Path(workdir)
        self.python = Path(python) if python else venv() / "bin" / "python"
        self.extra_args = list(extra_args)
        self.proc = None
        self.log_path = self.workdir / "vllm.log"

    def argv(self):
        return [str(self.python), "-m", "vllm.entrypoints.openai.api_server",
                "--model", str(self.model_dir), "--served-model-name", self.name,
                "--host", "127.0.0.1", "--port", str(self.port),
                "--max-model-len", "256", "--dtype", "bfloat16", *self.extra_args]

    def env(self):
        (self.workdir / "cache").mkdir(parents=True, exist_ok=True)
        (self.workdir / "tmp").mkdir(parents=True, exist_ok=True)
        return {**os.environ,
                "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                "HF_HOME": str(self.workdir / "hf"),
                "VLLM_CPU_KVCACHE_SPACE": "1",
                # vLLM's V2 model runner returns wrong output under GPU CC (issue 6).
                "VLLM_USE_V2_MODEL_RUNNER": "0",
                # Otherwise vLLM writes ~/.cache/vllm and leaves sockets in /tmp.
                "VLLM_CACHE_ROOT": str(self.workdir / "cache"),
                "TMPDIR": str(self.workdir / "tmp"),
                "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"}

    def start(self):
        self.workdir.mkdir(parents=True, exist_ok=True)
        logf = open(self.log_path, "ab")
        # start_new_session: setsid(), so the server leads a new process group that its
        # engine processes inherit; stop() signals the group.
        self.proc = subprocess.Popen(self.argv(), env=self.env(), stdout=logf,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True, cwd=self.workdir)
        logf.close()
        self.started_at = time.monotonic()
        return self

    def wait_ready(self, timeout=300):
        """Seconds from start() until GET /health answers 200."""
        deadline = self.started_at + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"vLLM exited with {self.proc.returncode}; log: {self.log_path}\n"
                                   + self.log_tail())
            try:
                status, _ = request(self.port, "GET", "/health", timeout=2)
                if status == 200:
                    return time.monotonic() - self.started_at
            except OSError:
                pass
            time.sleep(0.25)
        raise TimeoutError(f"vLLM not healthy after {timeout} s; log: {self.log_path}")

    def log_tail(self, n=40):
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def kill_group(self, sig):
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self, grace=15):
        """SIGTERM the group, SIGKILL it after `grace` s; returns PIDs still left (must be [])."""
        if self.proc is None:
            return []
        pgid = self.proc.pid
        self.kill_group(signal.SIGTERM)
        deadline = time.monotonic() + grace
        while group_members(pgid) and time.monotonic() < deadline:
            self.proc.poll()
            time.sleep(0.2)
        if group_members(pgid):
            self.kill_group(signal.SIGKILL)
            time.sleep(1)
        self.proc.wait(timeout=10)
        left = group_members(pgid)
        self.proc = None
        return left

    def close(self):
        self.stop()
        if self._tmp:
            self._tmp.cleanup()


def request(port, method, path, body=None, timeout=60, host="127.0.0.1"):
    """One HTTP/1.1 request; returns (status, parsed JSON or text)."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data else {}
        conn.request(method, path, body=data, headers=headers)
        r = conn.getresponse()
        raw = r.read()
        try:
            return r.status, json.loads(raw)
        except ValueError:
            return r.status, raw.decode(errors="replace")
    finally:
        conn.close()


def stream(port, path, body, timeout=60, host="127.0.0.1"):
    """POSTs a streaming request; returns (status, [(arrival_monotonic, data_str)], done)
    where `done` says whether the stream ended with `data: [DONE]`."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    events, done = [], False
    try:
        conn.request("POST", path, body=json.dumps(body).encode(),
                     headers={"Content-Type": "application/json", "Accept": "text/event-stream"})
        r = conn.getresponse()
        if r.status != 200:
            return r.status, [(time.monotonic(), r.read().decode(errors="replace"))], False
        buf = b""
        while True:
            try:
                chunk = r.read1(65536)
            except (http.client.IncompleteRead, ConnectionError):
                break
            if not chunk:
                break
            now = time.monotonic()
            buf += chunk
            while b"\n\n" in buf:
                ev, buf = buf.split(b"\n\n", 1)
                for line in ev.split(b"\n"):
                    if line.startswith(b"data:"):
                        data = line[5:].strip().decode()
                        if data == "[DONE]":
                            done = True
                        else:
                            events.append((now, data))
        return 200, events, done
    finally:
        conn.close()


def metrics(port, host="127.0.0.1"):
    """vLLM's Prometheus counters summed over labels: {name: value}."""
    status, text = request(port, "GET", "/metrics", host=host)
    if status != 200:
        raise RuntimeError(f"/metrics answered {status}")
    out = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name_labels, _, value = line.rpartition(" ")
        name = name_labels.split("{", 1)[0]
        try:
            out[name] = out.get(name, 0.0) + float(value)
        except ValueError:
            continue
    return out


def known_answer(port, name="tiny"):
    """(text, sha256 hex of text) of the pinned greedy completion."""
    status, body = request(port, "POST", "/v1/completions", {
        "model": name, "prompt": KNOWN_PROMPT, "max_tokens": KNOWN_MAX_TOKENS,
        "temperature": 0})
    if status != 200:
        raise RuntimeError(f"known-answer request answered {status}: {body}")
    text = body["choices"][0]["text"]
    return text, hashlib.sha256(text.encode()).hexdigest(), body["usage"]


# SHA-256 of the known-answer text that the tiny model (tools/make-tiny-model, manifest
# below) gives under the pinned venv; tests/engine/vllm_real.py re-derives and checks it.
TINY_MODEL_DIGEST = "manifest-sha256:4885b443369ee3cdc8621186e55d12d38338326edad83c633e41915dd5b83be7"
KNOWN_SHA256 = "e33cc104ca9df7368bf86f5d7717c903dc271687d55310551b6566de17bf9d95"


def listener_pid(port):
    """PID of the process listening on 127.0.0.1/0.0.0.0:`port` (TCP), or None."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if f[3] == "0A" and int(f[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f[9])
    if not inodes:
        return None
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            for fd in os.listdir(f"/proc/{d}/fd"):
                link = os.readlink(f"/proc/{d}/fd/{fd}")
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    return int(d)
        except OSError:
            continue
    return None
