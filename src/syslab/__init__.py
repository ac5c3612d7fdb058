"""The Systems Lab: models, simulations and real experiments behind the book.

One module per concept, not per chapter:

- :mod:`syslab.validate` -- argument checks shared by every module (clear errors).
- :mod:`syslab.plot` -- the house Matplotlib style and small plotting helpers.
- :mod:`syslab.queueing` -- Little's law, Erlang C, Kingman, a simpy connection-pool
  model and its vectorised twin, closed-system contention.
- :mod:`syslab.connection_pool` -- a real thread-safe pool over SQLite and a load
  generator that measures it.
- :mod:`syslab.environment` -- what machine an experiment ran on.
- :mod:`syslab.processes` -- child processes for real experiments, always cleaned up.
- :mod:`syslab.sqlite_tools` -- query plans, dbstat page statistics, temporary databases.

Importing :mod:`syslab` is cheap: submodules are imported explicitly by the
notebooks (``from syslab import queueing``).
"""

__version__ = "0.1.0"
