"""``python -m tap_smartforms``: the same as the ``tap-smartforms`` command."""

from tap_smartforms.tap import main

main()
