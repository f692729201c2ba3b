"""What the sampler thread owns: the loop and its schedule (``sampler``), reading a tick (``reading``), power
(``meter``), the rings of samples not yet stored (``ring``), flushing them and availability (``flushing``), the
clocks and their steps (``clocks``), the machine's energy, its ledger and the grid's rows put in force
(``energy``), the stats built on demand (``publishing``), its own footprint (``footprint``) and what it calls of
others (``hooks``).

Runs on the sampler thread (``tsstats-sampler``), which is also the database's one writer: between ticks it
runs the writes queued on the store, within a time budget, and the stats builds asked for. Any thread may read
what it publishes (``Snapshot``, the ledger's view, copies of the rings). May import ``core``, ``sources``,
``figures`` and ``storage``. It does not know what a comparison is or the HTTP renderers: whoever assembles the
service hands in the comparison hooks (``hooks.ComparisonHooks``) and the renderer of the stats body. The one
place it touches the records' tables is a step back of the wall clock, which moves every stored timestamp
stamped ahead, the comparisons' and offsets' time columns among them (``clocks.move_rows``).
"""
