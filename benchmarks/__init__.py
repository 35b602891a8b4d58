"""Side-by-side benchmarks of nnexp against its peers, run by ``python -m benchmarks``.

Each section is a module ``benchmarks/<name>.py`` with ``section(quick: bool) -> str`` returning
one markdown section; ``benchmarks/__main__.py`` lists them in ``SECTIONS``.
"""
