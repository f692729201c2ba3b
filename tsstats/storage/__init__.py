"""The DuckDB file: the store (``store``: one connection, one writer thread, a pool of read cursors), opening it
and its errors (``sql``), the schema and upgrades (``schema``), the row definitions and batches (``rows``), the
metrics catalog (``catalog``), rollups (``rollups``), retention and the size cap (``retention``), the sums of
stored energy and the grid's rows over time (``energy``), history range queries (``history``), what DuckDB
holds in memory with the reads (``reads``), exports and backups (``export``).

Owns DuckDB (import-linter forbids every other layer to import it), the connections, the schema, and the SQL of
samples, rollups, retention, energy sums, grid rows, history, exports and backups. The SQL of the records'
tables (comparisons, phases, offsets, model counters) is in ``comparisons``, that of the sampler's own rows
(outages, the clock's segment, stamped times moved back after a step of the wall clock) in ``sampling``, each
run on a connection or inside a transaction of the store; ``cli.synth`` writes synthetic history. Writes run on the
sampler thread, the database's one writer, inside ``Store.transaction`` or queued with ``Store.write``; reads run
on the store's read pool (``Store.read``) or, for ``tsstats export`` and ``backup``, on a read-only connection of
the command line's own. May import ``core`` and ``figures`` (the typed records its sums and grid rows come
back as); knows nothing of sampling, comparisons, the API or the command line.
"""
