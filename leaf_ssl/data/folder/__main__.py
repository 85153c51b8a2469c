"""`python -m leaf_ssl.data.folder` (`leaf_ssl.cli.folder`)."""
if __name__ == "__main__":
    import sys

    from leaf_ssl.cli.folder import main
    sys.exit(main())
