"""``python -m bankguard``: the same CLI as the ``bankguard`` script."""

from bankguard.cli import main

main()
