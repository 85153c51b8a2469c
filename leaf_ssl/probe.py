"""`python -m leaf_ssl.probe`: linear probes (`leaf_ssl.cli.probe`)."""
if __name__ == "__main__":
    from leaf_ssl.cli.probe import main
    main()
