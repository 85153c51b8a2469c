"""`python -m leaf_ssl.analyze`: what a frontend learned (`leaf_ssl.cli.analyze`)."""
if __name__ == "__main__":
    from leaf_ssl.cli.analyze import main
    main()
