"""The command room's account commands: `balise users` and `balise tokens`."""
