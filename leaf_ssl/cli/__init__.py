"""The command lines. Importing any of them installs `quiet`'s filters (unless --verbose is given)."""
import sys

from leaf_ssl.cli import quiet

quiet.install(sys.argv[1:])
