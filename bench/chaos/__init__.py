"""The chaos run (`make chaos`): bench/README.md, "Chaos"."""
