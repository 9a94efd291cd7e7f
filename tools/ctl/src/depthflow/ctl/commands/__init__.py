"""The ``depthflow`` commands, one module per family; ``__main__`` only parses and dispatches.

Why a module per family: each command's wiring (servers, bus, supervisor, renderers) is read and
changed on its own, and importing one command never pays for another's heavy imports (``plot``'s
matplotlib and plotly).
"""
