"""Comparisons and offsets: request bodies checked, the state machine, their records in SQL, what the stats
show of them, and the one owner of a comparison's life (``lifecycle.ComparisonLife``): its run clock and the
attribution of energy to the processes it names (``attributor``).

Runs on the writer thread (writes queued by the API, the sampler's hooks between ticks) and on read-pool
threads (lists and lookups). May import ``core``, ``sources``, ``figures``, ``storage`` and ``sampling``
(the energy of stored and held samples); the API and the assembly use it, never the reverse.
"""
