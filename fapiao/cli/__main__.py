"""``python -m fapiao.cli``: how the supervisor starts workers and the gateway as child processes."""

from fapiao.cli import main

main()
