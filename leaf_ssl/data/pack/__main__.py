"""`python -m leaf_ssl.data.pack` (`leaf_ssl.cli.pack`)."""
if __name__ == "__main__":
    import sys

    from leaf_ssl.cli.pack import main
    sys.exit(main())
