"""`python -m leaf_ssl.train`: the training command (`leaf_ssl.cli.train`)."""
if __name__ == "__main__":
    from leaf_ssl.cli import train as command
    command.run_command_line()
