"""`python -m leaf_ssl.train`: the training command (`leaf_ssl.cli.train`)."""
if __name__ == "__main__":
    from leaf_ssl.cli import train as command
    __doc__ = command.__doc__  # absl's --help prints the main module's docstring
    command.run_command_line()
