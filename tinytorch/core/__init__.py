"""The framework's modules, each exported from one lesson in `modules/` (never edit them here)."""
