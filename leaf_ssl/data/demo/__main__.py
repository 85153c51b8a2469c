"""`python -m leaf_ssl.data.demo` (`leaf_ssl.cli.demo_corpus`)."""
if __name__ == "__main__":
    import sys

    from leaf_ssl.cli.demo_corpus import main
    sys.exit(main())
