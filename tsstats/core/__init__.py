"""The values every layer shares: units, times as users write them, the settings, and the error of bad input.

Owns: ``units`` (each unit constant's one home), ``settings`` (the typed ``Settings`` table), ``inputs``
(``InputError``, numbers written as text: ASCII decimal only, durations and times, the checks of query
parameters and bodies). Pure code, run on whichever thread calls it.
Imports nothing else of tsstats; every layer but ``sources`` may import it.
"""
