"""A stand-in for the `docker` CLI, for testing the worker's Docker runner where no engine runs.

Only the subcommands the worker uses: `version`, `image inspect`, `run` and `rm -f`.
`run` executes the container's command (`partisim run ... --json`) as a local
process in place of this one, so killing "the container" kills the simulation.
Every call is appended to calls.log beside this script's wrapper; a file named
`down` there makes the daemon "unreachable".
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(os.environ["FAKE_DOCKER_DIR"])
IMAGE = "particle-simulation:latest"


def main(argv: list[str]) -> int:
    with open(HERE / "calls.log", "a", encoding="utf-8") as f:
        f.write(" ".join(argv) + "\n")
    if (HERE / "down").exists():
        print("Cannot connect to the Docker daemon at unix:///var/run/docker.sock.", file=sys.stderr)
        return 125 if argv[:1] == ["run"] else 1
    if argv[:1] == ["version"]:
        print("99.0-fake")
        return 0
    if argv[:2] == ["image", "inspect"]:
        if argv[-1] == IMAGE:
            print("sha256:fake")
            return 0
        print(f"Error: No such image: {argv[-1]}", file=sys.stderr)
        return 1
    if argv[:2] == ["rm", "-f"]:
        return 0
    if argv[:1] == ["run"]:
        i = argv.index("--entrypoint")
        entrypoint, image, rest = argv[i + 1], argv[i + 2], argv[i + 3 :]
        assert entrypoint == "partisim" and image == IMAGE, argv
        os.execv(sys.executable, [sys.executable, "-m", "partisim", *rest])
    print(f"fake docker: unsupported {argv}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
