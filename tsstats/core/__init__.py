"""The values every layer shares: units, times as users write them, the settings, and the error of bad input.

Owns: ``units`` (each unit constant's one home), ``timeparse``, ``settings`` (the typed ``Settings`` table),
``inputs`` (``InputError`` and the checks of query parameters), ``numbers`` (numbers written as text: ASCII
decimal only). Pure code, run on whichever thread calls it.
Imports nothing else of tsstats; every layer but ``sources`` may import it.
"""
