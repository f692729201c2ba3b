"""Pure numbers from arrays and sums: the dashboard's formulas, the typed ``Figures`` of one moment, energy sums
and the PUE and carbon step, the grid's intensity over time, the arithmetic of per-process attribution, the
power models and the method of each measurement.

No I/O but reading the packaged reference table of grid regions; no state beyond the records themselves; runs
on whichever thread calls it (the sampler thread builds the stats, pool threads answer reads). May import
``core`` and the record types of ``sources``.
"""
