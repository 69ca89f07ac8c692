"""The `auglift` commands, one module per command (`cache ls` and `cache verify` share one, as do
`study list` and `study run`). cli.py's command tables name them; core.config_io.registered imports
one only when it runs or shows its --help, so `auglift --help` loads none of them. `common` holds
what they share: the one-line error, --data-root and the lazy command groups."""
