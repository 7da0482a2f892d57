"""tito: the TinyTorch course tooling -- manifest, export, task graph helpers and the CLI."""

__version__ = "0.1.0"
