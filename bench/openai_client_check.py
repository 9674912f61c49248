#!/usr/bin/env python3
"""Talks to a running `pcm serve` through the official `openai` Python client and checks that every call
answers in the shape the client expects: models list/retrieve, chat and text completions (n = 2, stop
strings, no logprobs), streams (chat, text, include_usage, seeded stream = seeded non-stream), embeddings
(float and base64), errors raised as the client's exception classes with our error body, a stream closed
early freeing its slot (GET /metrics), a long non-streamed request that gets keep-alive spaces before its
JSON, and the async client. Exits 0 when every check passes, 1 on a failure, 3 when the `openai` package is
not installed.

  pcm serve --port 8080 &                      # the shipped model on the CPU
  bench/openai_client_check.py --port 8080

Without a pip index the client can run from a source checkout: bench/openai_client_run.sh; docs/server.md
lists the openai-python releases and dependencies this was run with.
"""
import argparse, asyncio, base64, re, struct, sys, time, urllib.request

try:
    import openai
except ImportError:
    print("openai_client_check: the openai package is not installed", file=sys.stderr)
    sys.exit(3)


def metric(base, name):
    """The value of one unlabelled Prometheus sample from GET /metrics."""
    text = urllib.request.urlopen(f"{base}/metrics", timeout=10).read().decode()
    m = re.search(rf"^{name} (\S+)$", text, re.M)
    assert m, f"/metrics has no {name}"
    return float(m.group(1))


def wait_metric(base, name, want, timeout=10.0):
    """Polls until the metric equals `want`; returns the seconds it took."""
    t0 = time.perf_counter()
    while True:
        v = metric(base, name)
        if v == want:
            return time.perf_counter() - t0
        assert time.perf_counter() - t0 < timeout, f"{name} is {v}, not {want}, after {timeout} s"
        time.sleep(0.05)


def expect_error(cls, status, code, param, fn):
    """Runs fn, which must raise the client's exception `cls` carrying our error body."""
    try:
        fn()
    except cls as e:
        assert e.status_code == status, f"status {e.status_code}"
        assert e.code == code and e.param == param and e.type == "invalid_request_error", \
            f"code={e.code} param={e.param} type={e.type}"
        assert isinstance(e.body, dict) and e.body.get("message"), f"body {e.body!r}"
        return f"{type(e).__name__} {status} code={code} param={param}"
    raise AssertionError(f"no {cls.__name__} raised")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--max-tokens", type=int, default=16)
    ap.add_argument("--long-seconds", type=float, default=7.0,
                    help="target duration of the long non-streamed request (the server starts keep-alive "
                         "spaces after 5 s; 0 skips the check)")
    a = ap.parse_args()
    base = f"http://{a.host}:{a.port}"
    client = openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0)
    model = client.models.list().data[0].id
    checks = []

    def check(name, fn):
        t0 = time.perf_counter()
        try:
            detail = fn()
            checks.append((name, "ok", detail, time.perf_counter() - t0))
        except Exception as e:  # noqa: BLE001 - every failure is reported
            checks.append((name, "FAIL", f"{type(e).__name__}: {str(e)[:300]}", time.perf_counter() - t0))

    def chat_msgs(text):
        return [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": text}]

    def models():
        ms = client.models.list().data
        assert len(ms) == 1 and ms[0].object == "model"
        m = client.models.retrieve(model)
        assert m.id == model
        return f"list={[x.id for x in ms]} retrieve={m.id} owned_by={m.owned_by}"

    def chat():
        r = client.chat.completions.create(model=model, messages=chat_msgs("What is 2 + 3?"),
                                           max_tokens=a.max_tokens, temperature=0.7, seed=1)
        c = r.choices[0]
        assert r.object == "chat.completion" and r.id.startswith("chatcmpl-") and r.model == model
        assert c.message.role == "assistant" and c.logprobs is None and r.usage.completion_tokens > 0
        assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
        return f"finish={c.finish_reason} tokens={r.usage.completion_tokens} logprobs=None"

    def chat_max_completion_tokens():
        kw = dict(model=model, messages=chat_msgs("Say hi."), temperature=0.0)
        try:
            r = client.chat.completions.create(max_completion_tokens=5, extra_body={"ignore_eos": True}, **kw)
            how = "typed parameter"
        except TypeError:  # clients before 1.40 do not know the parameter: send it in the body
            r = client.chat.completions.create(extra_body={"ignore_eos": True, "max_completion_tokens": 5}, **kw)
            how = "via extra_body (client predates the parameter)"
        assert r.usage.completion_tokens == 5 and r.choices[0].finish_reason == "length"
        return f"5 tokens, finish=length, {how}"

    def chat_n2():
        kw = dict(model=model, messages=chat_msgs("Pick a number."), max_tokens=a.max_tokens, temperature=1.0,
                  seed=7, n=2)
        r1, r2 = client.chat.completions.create(**kw), client.chat.completions.create(**kw)
        assert [c.index for c in r1.choices] == [0, 1]
        t1, t2 = [c.message.content for c in r1.choices], [c.message.content for c in r2.choices]
        assert t1 == t2, "same seed, different answers"
        return f"indices [0, 1], seeded repeat identical, choices {'differ' if t1[0] != t1[1] else 'agree'}"

    def completion():
        r = client.completions.create(model=model, prompt="The capital of France is", max_tokens=a.max_tokens,
                                      temperature=0.0, n=2)
        assert r.object == "text_completion" and r.id.startswith("cmpl-")
        assert len(r.choices) == 2 and r.choices[0].text == r.choices[1].text  # greedy: both choices agree
        assert all(c.logprobs is None for c in r.choices)
        return f"n=2 finish={r.choices[0].finish_reason} tokens={r.usage.completion_tokens}"

    def completion_stop():
        kw = dict(model=model, prompt="Question: what is 12 times 3? Answer:", max_tokens=48, temperature=0.0,
                  extra_body={"ignore_eos": True})
        full = client.completions.create(**kw).choices[0].text
        stop = full[len(full) // 2:len(full) // 2 + 3]  # a piece of the greedy answer from its middle
        assert stop.strip(), f"no usable stop string in {full!r}"
        r = client.completions.create(stop=[stop, "@@never@@"], **kw).choices[0]
        want = full[:full.index(stop)]
        assert r.finish_reason == "stop" and r.text == want, f"{r.finish_reason} {r.text!r} != {want!r}"
        return f"stop={stop!r} cut at char {len(want)} of {len(full)}, finish=stop"

    def chat_stop_string():
        kw = dict(model=model, messages=chat_msgs("Count to ten."), max_tokens=32, temperature=0.0,
                  extra_body={"ignore_eos": True})
        full = client.chat.completions.create(**kw).choices[0].message.content
        stop = full[len(full) // 2:len(full) // 2 + 2]
        assert stop.strip(), f"no usable stop string in {full!r}"
        c = client.chat.completions.create(stop=stop, **kw).choices[0]
        assert c.finish_reason == "stop" and c.message.content == full[:full.index(stop)]
        return f"stop={stop!r}, finish=stop"

    def chat_stream():
        kw = dict(model=model, messages=chat_msgs("Count to five."), max_tokens=a.max_tokens, seed=2,
                  temperature=0.8)
        chunks, text, finish = 0, "", None
        for ev in client.chat.completions.create(stream=True, **kw):
            chunks += 1
            assert ev.object == "chat.completion.chunk"
            if ev.choices and ev.choices[0].delta.content:
                text += ev.choices[0].delta.content
            if ev.choices and ev.choices[0].finish_reason:
                finish = ev.choices[0].finish_reason
        assert chunks >= 2 and finish
        plain = client.chat.completions.create(**kw).choices[0].message.content
        assert text == plain, f"stream {text!r} != non-stream {plain!r}"
        return f"{chunks} chunks, {len(text)} chars, finish={finish}, = non-streamed with the same seed"

    def completion_stream():
        chunks = 0
        for ev in client.completions.create(model=model, prompt="1, 2, 3,", max_tokens=a.max_tokens, stream=True):
            chunks += 1
        assert chunks >= 2
        return f"{chunks} chunks"

    def stream_usage():
        last = None
        for ev in client.chat.completions.create(model=model, messages=chat_msgs("Hi"), max_tokens=8, stream=True,
                                                 stream_options={"include_usage": True}):
            last = ev
        assert last.choices == [] and last.usage and last.usage.completion_tokens > 0
        return f"last chunk usage: {last.usage.prompt_tokens}+{last.usage.completion_tokens}"

    def embeddings():
        texts = ["first text", "second text"]
        plain = client.embeddings.create(model=model, input=texts)  # the client asks for base64 when numpy exists
        fl = client.embeddings.create(model=model, input=texts, encoding_format="float")
        b64 = client.embeddings.create(model=model, input=texts, encoding_format="base64")
        dim = len(fl.data[0].embedding)
        decoded = list(struct.unpack(f"<{dim}f", base64.b64decode(b64.data[0].embedding)))
        assert len(fl.data) == 2 and [d.index for d in fl.data] == [0, 1]
        assert max(abs(x - y) for x, y in zip(decoded, fl.data[0].embedding)) < 1e-6
        assert max(abs(x - y) for x, y in zip(plain.data[0].embedding, fl.data[0].embedding)) < 1e-6
        return f"dim {dim}, float = base64 = client default"

    def error_max_tokens():
        return expect_error(openai.BadRequestError, 400, "invalid_value", "max_tokens",
                            lambda: client.chat.completions.create(model=model, messages=chat_msgs("x"), max_tokens=-1))

    def error_stream_max_tokens():
        return expect_error(openai.BadRequestError, 400, "invalid_value", "max_tokens",
                            lambda: client.completions.create(model=model, prompt="x", max_tokens=-1, stream=True))

    def error_logprobs():
        return expect_error(openai.BadRequestError, 400, "unsupported_parameter", "logprobs",
                            lambda: client.chat.completions.create(model=model, messages=chat_msgs("x"), logprobs=True))

    def error_model():
        return expect_error(openai.NotFoundError, 404, "model_not_found", "model",
                            lambda: client.completions.create(model="no-such-model", prompt="x", max_tokens=1))

    def stream_cancel():
        cancelled = metric(base, "pcm_requests_cancelled_total")
        wait_metric(base, "pcm_slots_used", 0)
        stream = client.chat.completions.create(model=model, messages=chat_msgs("Tell a long story."), n=2,
                                                max_tokens=4000, stream=True, extra_body={"ignore_eos": True})
        got = 0
        for _ in stream:
            got += 1
            if got == 4:
                break
        used = metric(base, "pcm_slots_used")
        assert used == 2, f"pcm_slots_used {used} while streaming n=2"
        stream.close()
        secs = wait_metric(base, "pcm_slots_used", 0)
        assert metric(base, "pcm_requests_cancelled_total") == cancelled + 1
        return f"n=2 stream closed after {got} chunks: 2 slots -> 0 in {secs:.2f} s, cancelled +1"

    def long_non_stream():
        t0 = time.perf_counter()
        r = client.completions.create(model=model, prompt="Once", max_tokens=64, temperature=0.0,
                                      extra_body={"ignore_eos": True})
        rate = r.usage.completion_tokens / (time.perf_counter() - t0)
        n = int(rate * a.long_seconds)
        t0 = time.perf_counter()
        r = client.completions.create(model=model, prompt="Once", max_tokens=n, temperature=0.0,
                                      extra_body={"ignore_eos": True})
        secs = time.perf_counter() - t0
        assert r.usage.completion_tokens == n and r.choices[0].finish_reason == "length"
        return f"{n} tokens in {secs:.1f} s ({'past' if secs > 5 else 'NOT past'} the 5 s keep-alive start)"

    def async_client():
        async def go():
            ac = openai.AsyncOpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0)
            r = await ac.chat.completions.create(model=model, messages=chat_msgs("Hi"), max_tokens=8)
            chunks = 0
            async for _ in await ac.completions.create(model=model, prompt="Hi", max_tokens=8, stream=True):
                chunks += 1
            await ac.close()
            return r.usage.completion_tokens, chunks
        tokens, chunks = asyncio.run(go())
        assert tokens > 0 and chunks >= 2
        return f"chat {tokens} tokens, completion stream {chunks} chunks"

    check("models.list / retrieve", models)
    check("chat.completions", chat)
    check("chat max_completion_tokens", chat_max_completion_tokens)
    check("chat.completions n=2", chat_n2)
    check("completions n=2", completion)
    check("completions stop", completion_stop)
    check("chat.completions stop", chat_stop_string)
    check("chat.completions stream", chat_stream)
    check("completions stream", completion_stream)
    check("stream include_usage", stream_usage)
    check("embeddings", embeddings)
    check("error max_tokens=-1", error_max_tokens)
    check("error stream max_tokens=-1", error_stream_max_tokens)
    check("error logprobs=True", error_logprobs)
    check("error unknown model", error_model)
    check("stream closed early", stream_cancel)
    if a.long_seconds > 0:
        check("long non-streamed", long_non_stream)
    check("AsyncOpenAI", async_client)
    print(f"openai {openai.__version__} against {model}")
    for name, status, detail, secs in checks:
        print(f"  {name:28s} {status:4s} {secs * 1000:8.1f} ms  {detail}")
    passed = sum(c[1] == "ok" for c in checks)
    print(f"{passed} passed, {len(checks) - passed} failed")
    sys.exit(0 if passed == len(checks) else 1)


if __name__ == "__main__":
    main()
