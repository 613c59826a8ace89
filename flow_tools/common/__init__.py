"""What every stage and both packages use: file access (local and remote), output locks,
Ctrl-C in apps, malloc settings."""
