#!/usr/bin/env python3
"""Real vLLM (CPU build) serving the tiny model, without the agent: the facts the agent
relies on, checked on this machine.

  tests/engine/vllm_real.py [--json OUT.json]

- start (own process group) to GET /health 200, timed, twice (a restart);
- the known-answer completion (greedy, max_tokens 16) is the same text twice and across
  the restart: its SHA-256 is what `[engine.known_answer] expected_sha256` pins;
- chat and completion, streaming (with stream_options.include_usage) and not: every
  response carries usage, streams end with one `choices: []` usage chunk then [DONE];
- /metrics `vllm:prompt_tokens_total` / `vllm:generation_tokens_total` grow by exactly the
  summed usage of the requests made;
- stopping the process group leaves no process.
Exit 0 when all hold, 1 otherwise. Slow (two vLLM starts, ~1-2 min each on 2 cores).
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness as h  # noqa: E402

PROMPT_TOKENS = "vllm:prompt_tokens_total"
GEN_TOKENS = "vllm:generation_tokens_total"


def exercise(port, name):
    """Runs the request mix; returns (summed prompt tokens, summed completion tokens, failures)."""
    fails, pt, ct = [], 0, 0

    def add(usage, what):
        nonlocal pt, ct
        if not usage or "prompt_tokens" not in usage:
            fails.append(f"{what}: no usage")
            return
        pt += usage["prompt_tokens"]
        ct += usage["completion_tokens"]

    s, b = h.request(port, "POST", "/v1/completions",
                     {"model": name, "prompt": "Hello, how are", "max_tokens": 12, "temperature": 0})
    if s != 200:
        fails.append(f"completion: {s} {b}")
    else:
        add(b.get("usage"), "completion")
    s, b = h.request(port, "POST", "/v1/chat/completions",
                     {"model": name, "max_tokens": 12, "temperature": 0,
                      "messages": [{"role": "user", "content": "What is the capital of France?"}]})
    if s != 200:
        fails.append(f"chat: {s} {b}")
    else:
        add(b.get("usage"), "chat")
    for path, body in [
        ("/v1/completions", {"prompt": "Once upon a time", "max_tokens": 10}),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "Hello"}], "max_tokens": 10}),
    ]:
        body = {**body, "model": name, "temperature": 0, "stream": True,
                "stream_options": {"include_usage": True}}
        s, events, done = h.stream(port, path, body)
        if s != 200 or not done:
            fails.append(f"stream {path}: status {s}, [DONE] seen {done}")
            continue
        chunks = [json.loads(d) for _, d in events]
        last = chunks[-1]
        if last.get("choices") != [] or not last.get("usage"):
            fails.append(f"stream {path}: last chunk is not the usage chunk: {last}")
        if any(c.get("usage") for c in chunks[:-1]):
            fails.append(f"stream {path}: usage before the last chunk")
        add(last.get("usage"), f"stream {path}")
    return pt, ct, fails


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", help="write the summary here too")
    args = ap.parse_args()
    fails = []
    summary = {}
    with tempfile.TemporaryDirectory(prefix="cocoon-vllm-real-") as tmp:
        model = Path(tmp) / "model"
        summary["model_digest"] = h.tiny_model(model)
        h.log(f"model {summary['model_digest']}")
        answers, ready = [], []
        for run in (1, 2):
            v = h.Vllm(model, workdir=Path(tmp) / f"run{run}").start()
            try:
                ready.append(round(v.wait_ready(), 1))
                h.log(f"run {run}: /health 200 after {ready[-1]} s (pgid {v.proc.pid})")
                m0 = h.metrics(v.port)
                for _ in range(2):
                    text, digest, usage = h.known_answer(v.port, v.name)
                    answers.append((text, digest))
                    h.log(f"known answer {digest} {text!r}")
                pt, ct, f = exercise(v.port, v.name)
                fails += f
                pt += 2 * usage["prompt_tokens"]
                ct += 2 * usage["completion_tokens"]
                m1 = h.metrics(v.port)
                dp = m1.get(PROMPT_TOKENS, 0) - m0.get(PROMPT_TOKENS, 0)
                dc = m1.get(GEN_TOKENS, 0) - m0.get(GEN_TOKENS, 0)
                h.log(f"usage sums prompt={pt} completion={ct}; /metrics deltas prompt={dp:g} generation={dc:g}")
                if (dp, dc) != (pt, ct):
                    fails.append(f"run {run}: /metrics deltas ({dp}, {dc}) != usage sums ({pt}, {ct})")
                summary[f"run{run}_tokens"] = {"usage_prompt": pt, "usage_completion": ct,
                                               "metrics_prompt": dp, "metrics_generation": dc}
            except Exception as e:  # noqa: BLE001 - reported as a failure, server still stopped
                fails.append(f"run {run}: {e}")
                print(v.log_tail(), file=sys.stderr)
            finally:
                left = v.stop()
                h.log(f"run {run}: stopped; processes left in the group: {left}")
                if left:
                    fails.append(f"run {run}: processes left after stop: {left}")
        if len({a for a in answers}) != 1 or len(answers) != 4:
            fails.append(f"known answer not stable: {answers}")
        elif answers[0][1] != h.KNOWN_SHA256:
            fails.append(f"known answer {answers[0][1]} != pinned harness.KNOWN_SHA256 {h.KNOWN_SHA256}")
        if summary["model_digest"] != h.TINY_MODEL_DIGEST:
            fails.append(f"model {summary['model_digest']} != pinned harness.TINY_MODEL_DIGEST")
    summary.update(ready_s=ready, known_answer_prompt=h.KNOWN_PROMPT,
                   known_answer_max_tokens=h.KNOWN_MAX_TOKENS,
                   known_answer_text=answers[0][0] if answers else None,
                   known_answer_sha256=answers[0][1] if answers else None, failures=fails)
    print(json.dumps(summary, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2) + "\n")
    sys.exit(1 if fails else 0)


if __name__ == "__main__":
    main()
