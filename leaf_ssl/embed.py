"""`python -m leaf_ssl.embed`: embeddings of audio files (`leaf_ssl.cli.embed`)."""
if __name__ == "__main__":
    from leaf_ssl.cli.embed import main
    main()
