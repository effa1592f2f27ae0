"""Entry script of the one-file build: the same ``main`` as the ``auto-review`` console script."""

from auto_review.cli.main import main

main()
