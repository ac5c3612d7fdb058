"""The Systems Lab: models, simulations and real experiments behind the book.

One module per concept, not per chapter; a chapter imports several, and several
chapters share one (queueing serves the pool, GC, C10K, autoscaling and fan-out
chapters). Modules named ``*_child``, ``*_server``, ``*_peer``, ``*_worker`` or
``*_probe`` are the standard-library-only programs real experiments run as child
processes. Importing :mod:`syslab` is cheap: chapters import submodules explicitly
(``from syslab import queueing``).

- :mod:`syslab.backoff` -- retry backoff and jitter, the AWS backoff simulation, and a fleet reconnect storm
- :mod:`syslab.bloom` -- Bloom filters: a vectorised implementation and the false-positive maths it should obey
- :mod:`syslab.btree` -- B-tree leaf pages under inserts, splits and deletes -- one simulator for two chapters
- :mod:`syslab.caching` -- cache patterns and their failure modes on one workload: Zipf-popular keys in front of a slow origin
- :mod:`syslab.commit_cost` -- what a commit costs, what a cascade costs, and checking relations outside the database
- :mod:`syslab.concurrency` -- the cost of a connection: threads vs an event loop, readiness APIs, descriptor and port limits
- :mod:`syslab.connection_pool` -- a real connection pool over SQLite, and a load generator that measures it
- :mod:`syslab.children.drain_server` -- child-process programs for the graceful-shutdown experiments (run with ``python -m``)
- :mod:`syslab.engines` -- real PostgreSQL, MariaDB and Redis for experiments: a reader's URL, or a private throwaway server; version and settings read from it
- :mod:`syslab.environment` -- what machine an experiment ran on, read at run time (never assumed)
- :mod:`syslab.exactly_once` -- exactly-once effect = at-least-once delivery + idempotence: a lease model, Redis Streams, PostgreSQL and SQLite experiments
- :mod:`syslab.fanout` -- fan-out on write (push) vs fan-out on read (pull) vs a hybrid, on a heavy-tailed follower graph
- :mod:`syslab.garbage_collection` -- garbage collection and its pauses: a collector model, a stop-the-world latency model, CPython measured
- :mod:`syslab.hashring` -- consistent hashing and its hotspots: rings, jump hash, rendezvous, bounded loads, slots, ranges
- :mod:`syslab.hpa` -- a Horizontal Pod Autoscaler you can watch being late, and the traffic shapes that make it late
- :mod:`syslab.id_exhaustion` -- running out of AUTO_INCREMENT: integer limits, how each engine fails, burn rate and runway
- :mod:`syslab.ids` -- identifier schemes built from their specifications: UUIDv4, UUIDv7 (RFC 9562) and Snowflake
- :mod:`syslab.keepalive` -- tCP keep-alive, application heartbeats and HTTP keep-alive: three mechanisms, measured
- :mod:`syslab.lock_manager` -- a row-lock manager you can watch: a hot parent row under foreign-key checks
- :mod:`syslab.lsm` -- a log-structured merge tree you can watch: memtable, sorted runs, compaction, amplification
- :mod:`syslab.memory_hierarchy` -- this machine's memory hierarchy, measured: random-access cost against working-set size
- :mod:`syslab.plot` -- the house plotting style and the small helpers every chapter shares
- :mod:`syslab.processes` -- child processes for real experiments: started from a syslab module, always cleaned up
- :mod:`syslab.proxy` -- layer-4 and layer-7 load balancing: real asyncio proxies on 127.0.0.1, and a scale-out simulation
- :mod:`syslab.queueing` -- queueing models: Little's law, Erlang C, Kingman, and a connection pool you can watch
- :mod:`syslab.reconnect` -- a real reconnect storm on 127.0.0.1: asyncio clients against a rate-limited server that restarts
- :mod:`syslab.redis_expiry` -- how Redis expires keys: a port of ``src/expire.c``'s active expiry, lazy expiry, freeing and eviction
- :mod:`syslab.sargable` -- queries that can't use their index: a gaming dashboard on real SQLite
- :mod:`syslab.shutdown` -- graceful shutdown: the five-stage drain, for real and in a Kubernetes termination model
- :mod:`syslab.soft_delete` -- dELETE vs soft delete, measured on real SQLite, and the costs a soft delete moves elsewhere
- :mod:`syslab.sqlite_tools` -- small helpers for the chapters that run real SQL on SQLite
- :mod:`syslab.table_swap` -- widening a key column without stopping writes: the online table swap, run for real in SQLite
- :mod:`syslab.validate` -- argument checks shared by every :mod:`syslab` module
- :mod:`syslab.vector_search` -- nearest-neighbour search over vectors: exact brute force, and two approximate indexes
- :mod:`syslab.wal` -- a real write-ahead log: append-only file, a writer process that crashes, and replay
- :mod:`syslab.websocket` -- webSocket sends vs HTTP requests: RFC 6455 framing, silent sends, idempotent POSTs, a delivery model
"""

__version__ = "0.1.0"
