"""`python -m leaf_ssl.grid`: the paper's grid, trained, probed and tabled (`leaf_ssl.cli.grid`)."""
if __name__ == "__main__":
    from leaf_ssl.cli import grid as command
    command.run_command_line()
