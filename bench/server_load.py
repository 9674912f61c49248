#!/usr/bin/env python3
"""Load test for a running `pcm serve`: C concurrent streaming clients send R requests in all (loopback),
then report throughput, p50/p99 time to first token, inter-token latency and request latency, errors, and the
server's slot and queue gauges afterwards (both must be back to 0).

  pcm serve --model DIR --port 8080 &
  bench/server_load.py --port 8080 --clients 32 --requests 256 --max-tokens 64

Standard library only. Prompts are text when --text is given, else random token ids (any model).
"""
import argparse, json, os, statistics, sys, threading, time, http.client

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_multiturn import stream_completion  # noqa: E402


def gauge(host, port, name):
    conn = http.client.HTTPConnection(host, port, timeout=10)
    conn.request("GET", "/metrics")
    for line in conn.getresponse().read().decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(p * (len(v) - 1) + 0.5))] if v else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--requests", type=int, default=64)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--prompt-tokens", type=int, default=64)
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--text", help="use this text prompt instead of token ids")
    ap.add_argument("--time-limit", type=float, default=300, help="stop issuing requests after this many seconds")
    a = ap.parse_args()

    lock, next_req = threading.Lock(), [0]
    ttft, total, errors, tokens, itl = [], [], [], [0], []
    t0 = time.perf_counter()

    def client(cid):
        import random
        rng = random.Random(cid)
        while True:
            with lock:
                if next_req[0] >= a.requests or time.perf_counter() - t0 > a.time_limit:
                    return
                k = next_req[0]
                next_req[0] += 1
            prompt = a.text if a.text else [rng.randrange(3, a.vocab) for _ in range(a.prompt_tokens)]
            body = {"prompt": prompt, "max_tokens": a.max_tokens, "temperature": 0.8, "seed": k, "stream": True,
                    "ignore_eos": True, "stream_options": {"include_usage": True}, "return_token_ids": True}
            try:
                gaps = []
                f, t, ids, usage = stream_completion(a.host, a.port, body, gaps)
                with lock:
                    itl.extend(gaps)
                    ttft.append(f)
                    total.append(t)
                    tokens[0] += usage["completion_tokens"]
            except Exception as e:  # noqa: BLE001 - every failure is reported
                with lock:
                    errors.append(str(e)[:200])

    threads = [threading.Thread(target=client, args=(c,)) for c in range(a.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    secs = time.perf_counter() - t0
    time.sleep(0.5)
    res = {"requests": len(total), "errors": len(errors), "seconds": round(secs, 2),
           "tokens_per_s": round(tokens[0] / secs, 1), "requests_per_s": round(len(total) / secs, 2),
           "ttft_ms_p50": round(pct(ttft, 0.5) * 1000, 1), "ttft_ms_p99": round(pct(ttft, 0.99) * 1000, 1),
           "itl_ms_p50": round(pct(itl, 0.5) * 1000, 2), "itl_ms_p99": round(pct(itl, 0.99) * 1000, 2),
           "latency_ms_p50": round(pct(total, 0.5) * 1000, 1), "latency_ms_p99": round(pct(total, 0.99) * 1000, 1),
           "slots_used_after": gauge(a.host, a.port, "pcm_slots_used"),
           "queue_depth_after": gauge(a.host, a.port, "pcm_queue_depth")}
    print(json.dumps(res))
    for e in errors[:5]:
        print("error:", e, file=sys.stderr)
    sys.exit(1 if errors or res["slots_used_after"] else 0)


if __name__ == "__main__":
    main()
