"""`edgebert score`: an artifact over a corpus, on local worker processes or on a Ray cluster.

config.py   ScoreConfig: workers, threads, shard size, columns; defaults in one place
read.py     inputs (files, globs) -> rows, and rows that cannot be read -> rejects with their reason
local.py    shards, worker processes (each loads and verifies the artifact once), resume, ordered atomic output
ray_job.py  the same job on Ray Data: one actor per worker loads the artifact; `--ray [ADDRESS]`

Needs the runtime only (and `ray` for --ray).
"""
