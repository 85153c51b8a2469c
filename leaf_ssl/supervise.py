"""`python -m leaf_ssl.supervise`: training restarted after each preemption (`leaf_ssl.cli.supervise`)."""
if __name__ == "__main__":
    import sys

    from leaf_ssl.cli.supervise import main
    sys.exit(main())
