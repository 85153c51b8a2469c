"""`python -m leaf_ssl.tables`: probe results -> tables (`leaf_ssl.cli.tables`)."""
if __name__ == "__main__":
    from leaf_ssl.cli.tables import main
    main()
