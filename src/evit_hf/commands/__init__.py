"""`evit-hf` subcommands: each module exposes `register(subparsers)`."""
