"""Built-in problems: each module defines a Problem subclass; each has YAML configs beside it."""
