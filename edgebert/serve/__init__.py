"""`edgebert serve`: a local HTTP server around an artifact, for apps that are not Python.

config.py   ServeConfig: every limit and default in one validated place
batcher.py  micro-batching: concurrent requests share inference calls, with a bounded queue
metrics.py  /metrics through prometheus-client: counters, histograms, process metrics
app.py      a plain ASGI app: routes, auth, Host check, error mapping (never a traceback in a response)
run.py      binds the socket, writes --port-file, runs uvicorn, drains on SIGTERM

Needs the `[serve]` extra (uvicorn); torch-free like the runtime.
"""
