"""Named export recipes (TOML). Installed as the package `edgebert.recipes`."""
