"""`python -m leaf_ssl.data.audioset` (`leaf_ssl.cli.audioset`)."""
if __name__ == "__main__":
    import sys

    from leaf_ssl.cli.audioset import main
    sys.exit(main())
