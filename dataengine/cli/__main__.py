"""``python -m dataengine.cli`` (used under torchrun)."""

from dataengine.cli import main

main()
