"""One module per command group; each exposes `register(app)`.

A new command also needs its line in `hubtide.cli.COMMANDS` (name, module, help), which is
what `--help` lists without importing this package's modules; tests/test_startup.py checks.
"""
