#!/usr/bin/env python3
"""Talks to a running `pcm serve` through the official `openai` Python client: chat completion, text
completion, streamed chat and streamed completion. Exits 0 when every call answers in the expected shape,
1 on a failure, 3 when the `openai` package is not installed.

  pcm serve --random-shape codestral-7b --tokenizer TOKENIZER_DIR --device cuda --port 8080 &
  bench/openai_client_check.py --port 8080
"""
import argparse, sys, time

try:
    import openai
except ImportError:
    print("openai_client_check: the openai package is not installed", file=sys.stderr)
    sys.exit(3)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--max-tokens", type=int, default=16)
    a = ap.parse_args()
    client = openai.OpenAI(base_url=f"http://{a.host}:{a.port}/v1", api_key="unused")
    model = client.models.list().data[0].id
    checks = []

    def check(name, fn):
        t0 = time.perf_counter()
        try:
            detail = fn()
            checks.append((name, "ok", detail, time.perf_counter() - t0))
        except Exception as e:  # noqa: BLE001 - every failure is reported
            checks.append((name, "FAIL", f"{type(e).__name__}: {str(e)[:200]}", time.perf_counter() - t0))

    def chat():
        r = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "What is 2 + 3?"}],
                                           max_tokens=a.max_tokens, temperature=0.7, seed=1)
        assert r.choices[0].message.role == "assistant" and r.usage.completion_tokens > 0
        return f"finish={r.choices[0].finish_reason} tokens={r.usage.completion_tokens}"

    def completion():
        r = client.completions.create(model=model, prompt="The capital of France is", max_tokens=a.max_tokens,
                                      temperature=0.0, n=2)
        assert len(r.choices) == 2 and r.choices[0].text == r.choices[1].text  # greedy: both choices agree
        return f"n=2 finish={r.choices[0].finish_reason} tokens={r.usage.completion_tokens}"

    def chat_stream():
        chunks, text = 0, ""
        for ev in client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Count to five."}],
                                                 max_tokens=a.max_tokens, stream=True, seed=2):
            chunks += 1
            if ev.choices and ev.choices[0].delta.content:
                text += ev.choices[0].delta.content
        assert chunks >= 2
        return f"{chunks} chunks, {len(text)} chars"

    def completion_stream():
        chunks = 0
        for ev in client.completions.create(model=model, prompt="1, 2, 3,", max_tokens=a.max_tokens, stream=True):
            chunks += 1
        assert chunks >= 2
        return f"{chunks} chunks"

    check("chat.completions", chat)
    check("completions n=2", completion)
    check("chat.completions stream", chat_stream)
    check("completions stream", completion_stream)
    print(f"openai {openai.__version__} against {model}")
    for name, status, detail, secs in checks:
        print(f"  {name:26s} {status:4s} {secs * 1000:7.1f} ms  {detail}")
    sys.exit(0 if all(c[1] == "ok" for c in checks) else 1)


if __name__ == "__main__":
    main()
