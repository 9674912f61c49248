#!/usr/bin/env python3
"""Multi-turn time-to-first-token benchmark for `pcm serve` (prompt-state cache on vs off).

Simulates C conversations of T turns each: a long shared system prompt, then per turn the whole
conversation so far (system + earlier user turns + the model's answers) plus a new user message, sent as
token ids to /v1/completions with streaming. With the prompt-state cache the server restores the state at
the end of the previous turn and prefills only the new tokens; without it, it prefills everything.

Standard library only (no openai package needed). Start the server yourself, once per setting:
  pcm serve --model DIR --port 8080 --state-cache 0     # then: server_multiturn.py --label off
  pcm serve --model DIR --port 8080 --state-cache 1     # then: server_multiturn.py --label on
"""
import argparse, http.client, json, random, statistics, sys, time


def stream_completion(host, port, body, itl=None):
    """Returns (ttft_seconds, total_seconds, generated token ids, usage). When `itl` is a list, the gaps between
    token-carrying events are appended to it (an event carrying k tokens adds its gap / k, k times)."""
    conn = http.client.HTTPConnection(host, port, timeout=600)
    t0 = time.perf_counter()
    conn.request("POST", "/v1/completions", json.dumps(body), {"Content-Type": "application/json"})
    resp = conn.getresponse()
    if resp.status != 200:
        raise RuntimeError(f"HTTP {resp.status}: {resp.read()[:300]!r}")
    ttft, ids, usage, buf, last = None, [], None, b"", None
    while True:
        chunk = resp.read1(65536) if hasattr(resp, "read1") else resp.read(1)
        if not chunk:
            break
        buf += chunk
        while b"\n\n" in buf:
            frame, buf = buf.split(b"\n\n", 1)
            if not frame.startswith(b"data: "):
                continue
            payload = frame[6:]
            if payload == b"[DONE]":
                conn.close()
                return ttft, time.perf_counter() - t0, ids, usage
            event = json.loads(payload)
            if "error" in event:
                raise RuntimeError(event["error"])
            if event.get("usage"):
                usage = event["usage"]
            for c in event.get("choices", []):
                got = c.get("token_ids") or []
                if got:
                    now = time.perf_counter()
                    if ttft is None:
                        ttft = now - t0
                    elif itl is not None:
                        itl.extend([(now - last) / len(got)] * len(got))
                    last = now
                ids += got
    raise RuntimeError("stream ended without [DONE]")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--conversations", type=int, default=3)
    ap.add_argument("--turns", type=int, default=4)
    ap.add_argument("--system-tokens", type=int, default=1024)
    ap.add_argument("--user-tokens", type=int, default=48)
    ap.add_argument("--answer-tokens", type=int, default=32)
    ap.add_argument("--vocab", type=int, default=32000, help="token ids are drawn below this")
    ap.add_argument("--checkpoint-system", action="store_true",
                    help="send cache_checkpoints=[end of the system prompt] so other conversations reuse it")
    ap.add_argument("--label", default="")
    ap.add_argument("--json-out", help="append one JSON line of results here")
    a = ap.parse_args()

    conn = http.client.HTTPConnection(a.host, a.port)
    conn.request("GET", "/v1/models")
    model = json.loads(conn.getresponse().read())["data"][0]["id"]

    rng = random.Random(0)
    system = [rng.randrange(3, a.vocab) for _ in range(a.system_tokens)]
    first, later, cached = [], [], []
    for c in range(a.conversations):
        convo = list(system)
        for t in range(a.turns):
            convo += [rng.randrange(3, a.vocab) for _ in range(a.user_tokens)]
            body = {"model": model, "prompt": convo, "max_tokens": a.answer_tokens, "temperature": 0,
                    "ignore_eos": True, "stream": True, "stream_options": {"include_usage": True},
                    "return_token_ids": True}
            if a.checkpoint_system:
                body["cache_checkpoints"] = [len(system)]
            ttft, total, ids, usage = stream_completion(a.host, a.port, body)
            (first if t == 0 else later).append(ttft)
            cached.append(usage["prompt_tokens_details"]["cached_tokens"] / usage["prompt_tokens"])
            print(f"conv {c} turn {t}: prompt {len(convo)} tokens, cached {usage['prompt_tokens_details']['cached_tokens']}, "
                  f"TTFT {ttft * 1000:.1f} ms, total {total * 1000:.1f} ms", file=sys.stderr)
            convo += ids
    res = {"label": a.label, "model": model, "system_tokens": a.system_tokens, "turns": a.turns,
           "conversations": a.conversations,
           "ttft_first_turn_ms_median": statistics.median(first) * 1000,
           "ttft_later_turns_ms_median": statistics.median(later) * 1000 if later else None,
           "ttft_all_ms_mean": statistics.mean(first + later) * 1000,
           "cached_fraction_mean": statistics.mean(cached)}
    print(json.dumps(res))
    if a.json_out:
        with open(a.json_out, "a") as f:
            f.write(json.dumps(res) + "\n")


if __name__ == "__main__":
    main()
