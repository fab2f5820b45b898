"""Both images build offline from the local debootstrap base and run without network."""

from __future__ import annotations

import json

import pytest
from dockertools import BASE_IMAGE, SIM_IMAGE, WORKER_IMAGE, docker, inspect, partisim_cli, steps_from_cache

from partisim.sim import parse_params, simulate

pytestmark = pytest.mark.docker


def test_both_images_build_offline_from_the_local_base(images) -> None:
    assert "sin conexión (--network none)" in images.output
    assert f"Imagen base: {BASE_IMAGE}" in images.output
    base_layers = inspect(BASE_IMAGE)["RootFS"]["Layers"]
    for image in (SIM_IMAGE, WORKER_IMAGE):
        layers = inspect(image)["RootFS"]["Layers"]
        assert layers[: len(base_layers)] == base_layers, f"{image} is not built on {BASE_IMAGE}"
    assert len(steps_from_cache(images.output)) == 2
    # Debian bookworm's own Python runs partisim in both images.
    for image in (SIM_IMAGE, WORKER_IMAGE):
        done = docker(
            "run",
            "--rm",
            "--network",
            "none",
            "--entrypoint",
            "python3",
            image,
            "-c",
            "import sys, partisim; print(sys.executable, sys.version_info[:2], partisim.__version__)",
        )
        assert "/opt/partisim/bin/python3 (3, 11) 0.1.0" in done.stdout


def test_simulation_image_gives_the_host_checksum_without_network(images) -> None:
    done = docker(
        "run",
        "--rm",
        "--network",
        "none",
        SIM_IMAGE,
        "run",
        "--engine",
        "cython",
        "--particles",
        "150",
        "--steps",
        "300",
        "--seed",
        "7",
        "--json",
    )
    result = json.loads(done.stdout)
    host = simulate(parse_params({"particles": 150, "steps": 300, "seed": 7}), "python").to_dict()
    assert result["engine"] == "cython"
    assert result["checksum"] == host["checksum"]
    assert (result["particle_collisions"], result["wall_collisions"]) == (
        host["particle_collisions"],
        host["wall_collisions"],
    )
    # Simulations need no privileges: the image runs them as nobody.
    assert docker("run", "--rm", "--network", "none", "--entrypoint", "id", SIM_IMAGE, "-u").stdout.strip() == "65534"


def test_rebuild_with_nothing_changed_comes_from_the_cache(images) -> None:
    again = partisim_cli(
        "images",
        "build",
        "--offline",
        "--base-image",
        BASE_IMAGE,
        "--project",
        str(images.project),
        "--wheelhouse",
        str(images.wheelhouse),
    )
    assert again.returncode == 0, again.stderr
    assert "partisim sin cambios" in again.stdout
    for image, image_id in images.ids.items():
        assert inspect(image)["Id"] == image_id, f"{image} was rebuilt instead of coming from the cache"
    for cached, total in steps_from_cache(again.stdout):
        # Only ARG/FROM lines print no "Using cache"; every step that makes a layer hit it.
        assert cached >= total - 3, again.stdout


def test_rebuild_deletes_the_image_it_replaced_unless_still_tagged(images, tmp_path) -> None:
    tag = "partisim-test-prune:latest"
    build = (
        "images",
        "build",
        "--offline",
        "--base-image",
        BASE_IMAGE,
        "--only",
        "simulation",
        "--sim-tag",
        tag,
        "--project",
        str(images.project),
        "--wheelhouse",
        str(images.wheelhouse),
    )
    try:
        # the tag names an image another tag also names: the build takes the tag, the image stays
        docker("tag", BASE_IMAGE, tag)
        kept = partisim_cli(*build)
        assert kept.returncode == 0, kept.stderr
        assert inspect(tag)["Id"] == images.ids[SIM_IMAGE] and "eliminada" not in kept.stdout
        assert inspect(BASE_IMAGE)["Id"]
        # the tag names an image nothing else names: it would be left dangling, so it is deleted
        (tmp_path / "Dockerfile").write_text(f"FROM {BASE_IMAGE}\nLABEL partisim.test={tmp_path.name}\n")
        docker("build", "-q", "-t", tag, str(tmp_path))
        lone = inspect(tag)["Id"]
        deleted = partisim_cli(*build)
        assert deleted.returncode == 0, deleted.stderr
        assert inspect(tag)["Id"] == images.ids[SIM_IMAGE]
        assert f"imagen anterior {lone[:19]} eliminada" in deleted.stdout
        assert docker("image", "inspect", lone, check=False).returncode != 0
    finally:
        docker("image", "rm", tag, check=False)  # untags only: particle-simulation:latest keeps the image


def test_offline_build_names_a_missing_base_image(docker_engine) -> None:
    done = partisim_cli("images", "build", "--offline", "--base-image", "partisim-missing-base:none")
    assert done.returncode == 1
    assert "partisim-missing-base:none no está en este Docker" in done.stderr
    assert "Traceback" not in done.stderr


def test_offline_wheelhouse_without_the_wheels_says_what_is_missing(docker_engine, tmp_path) -> None:
    done = partisim_cli("images", "wheelhouse", "--offline", "--wheelhouse", str(tmp_path / "empty"))
    assert done.returncode == 1
    assert "--offline: faltan wheels" in done.stderr
    assert "Traceback" not in done.stderr
