"""`python -m leaf_ssl.bench`: the benchmarks (`leaf_ssl.cli.bench`)."""
from leaf_ssl.cli.bench import main

main()
