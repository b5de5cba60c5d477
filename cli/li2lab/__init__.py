"""li2lab: the `li2lab` command, the top layer of Li2 Lab (see li2lab.main for its subcommands)."""
