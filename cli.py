"""auglift command line. This module only parses arguments and calls into the packages."""
from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option("0.1.0", prog_name="auglift")
def main() -> None:
    """AugLift: cached (x, y, confidence, depth) keypoint features for 3D pose lifters."""


@main.group()
def cache() -> None:
    """Inspect and verify shard caches."""


if __name__ == "__main__":
    main()
