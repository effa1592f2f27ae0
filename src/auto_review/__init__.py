"""auto-review: a self-hosted, sandboxed AI pull-request reviewer for Forgejo and Gitea."""

__version__ = "0.1.0"

__all__ = ["__version__"]
