"""The benchmarks: speed (``bench_backend``, run by ``choreo bench``) and dance checks.

A regular package, so ``benchmarks.<name>`` always means these modules, whatever else
is installed; every module here also runs as a script from a checkout
(``python benchmarks/<name>.py``). Nothing here imports ``backend.cli``: the command
line imports ``benchmarks.bench_backend``, never the other way round.
"""
