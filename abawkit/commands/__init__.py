"""One module per CLI command; each exposes ``register(app)``. ``cli.py`` only registers them.

Import rule: a command module imports at its top only what parsing needs (typer, ``_options``); the stage,
launcher and config modules it calls are imported inside the command function, so ``abaw --help`` and a
command's ``--help`` never load torch, pandas or OpenCV. Everywhere else in abawkit, imports sit at the top
of the module, except a few lazy imports that keep this start-up fast (each says so where it stays).
"""
