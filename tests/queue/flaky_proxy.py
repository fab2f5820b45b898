"""A real HTTP server put in front of a real worker to misbehave on purpose (tests only).

Every request is forwarded to ``--target``; ``POST /execute`` and ``POST
/execute/batch`` (a batch of tiny tasks, as one request) may instead:

- ``--mode flaky``: answer 500 with probability ``--rate``; half of those before
  forwarding (the worker never sees the task), half after (the answer is lost);
- ``--mode reject``: always answer 422;
- ``--mode corrupt``: forward, then change the checksum in the answer (every one of a batch);
- ``--mode slow``: forward, then hold the answer ``--delay`` seconds (a worker slow to
  answer: it ran the task, but its answer comes late); only the first ``--times``
  answers if given;
- ``--mode pass``: forward only (with ``--tls-cert``/``--tls-key``: an https front).

``GET /proxy/stats`` reports what it did. Run: ``python flaky_proxy.py --port P --target URL``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random

import httpx
import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse


def build(target: str, mode: str, rate: float, seed: int, delay: float = 0.0, times: int = 0) -> FastAPI:
    app = FastAPI()
    rng = random.Random(seed)
    client = httpx.AsyncClient(base_url=target, timeout=None, trust_env=False)
    # execute: requests; tasks: the tasks they carried (a batch carries several)
    stats = {
        "execute": 0,
        "tasks": 0,
        "failed_before": 0,
        "failed_after": 0,
        "rejected": 0,
        "corrupted": 0,
        "delayed": 0,
    }

    async def forward(request: Request, path: str) -> httpx.Response:
        return await client.request(
            request.method,
            "/" + path,
            params=request.query_params,
            content=await request.body(),
            headers={k: v for k, v in request.headers.items() if k.lower() in ("content-type", "authorization")},
        )

    @app.get("/proxy/stats")
    async def get_stats() -> dict:
        return stats

    @app.api_route("/{path:path}", methods=["GET", "POST", "DELETE"])
    async def relay(path: str, request: Request) -> Response:
        if path in ("execute", "execute/batch") and request.method == "POST":
            # read the body before counting: `+=` across an await loses concurrent updates
            body = await request.body()
            stats["execute"] += 1
            stats["tasks"] += len(json.loads(body)["tasks"]) if path != "execute" else 1
            if mode == "reject":
                stats["rejected"] += 1
                return JSONResponse({"status": "error", "error": "rechazada por el proxy de pruebas"}, 422)
            roll = rng.random()
            if mode == "flaky" and roll < rate / 2:
                stats["failed_before"] += 1
                return JSONResponse({"status": "error", "error": "fallo inyectado (antes)"}, 500)
            answer = await forward(request, path)
            if mode == "flaky" and roll < rate:
                stats["failed_after"] += 1
                return JSONResponse({"status": "error", "error": "fallo inyectado (después)"}, 500)
            if mode == "slow" and (times == 0 or stats["delayed"] < times):
                stats["delayed"] += 1
                await asyncio.sleep(delay)  # the injected fault itself, not a synchronisation
            if mode == "corrupt" and answer.status_code == 200:
                body = answer.json()
                results = [a["result"] for a in body["answers"] if a["result"]] if path != "execute" else [body]
                for result in results:
                    result["checksum"] = "0" * 64
                    stats["corrupted"] += 1
                return JSONResponse(body, 200)
            return Response(answer.content, answer.status_code, media_type="application/json")
        answer = await forward(request, path)
        return Response(answer.content, answer.status_code, media_type="application/json")

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--mode", choices=("flaky", "reject", "corrupt", "slow", "pass"), default="flaky")
    parser.add_argument("--rate", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--times", type=int, default=0)
    parser.add_argument("--tls-cert", default=None)
    parser.add_argument("--tls-key", default=None)
    args = parser.parse_args()
    app = build(args.target, args.mode, args.rate, args.seed, args.delay, args.times)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        ssl_certfile=args.tls_cert,
        ssl_keyfile=args.tls_key,
    )


if __name__ == "__main__":
    main()
