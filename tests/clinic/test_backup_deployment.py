"""What backups need from the deployment: a pg_dump in the image that can dump the compose
server, backups and uploads on volumes the service's user owns, kept out of git and the image,
and `make backup`."""

import re

from tests.test_deployment import ROOT, compose, dockerfile


def test_the_image_has_a_pg_dump_as_new_as_the_compose_server():
    server = compose()["services"]["db"]["image"]
    server_major = int(re.fullmatch(r"postgres:(\d+)(?:[.-].*)?", server).group(1))
    runs = " ".join(args for kind, args in dockerfile() if kind == "RUN")
    clients = [int(major) for major in re.findall(r"postgresql-client-(\d+)", runs)]

    assert clients
    assert min(clients) >= server_major
    assert "apt.postgresql.org" in runs


def test_compose_keeps_backups_and_uploads_on_named_volumes_the_web_service_mounts():
    config = compose()
    mounts = dict(volume.split(":")[::-1][:2] for volume in config["services"]["web"]["volumes"])

    assert mounts["/backups"] in config["volumes"]
    assert mounts["/app/media"] in config["volumes"]
    # A new volume takes its owner and mode from the image's directory: the service's user.
    runs = " ".join(args for kind, args in dockerfile() if kind == "RUN")
    assert re.search(r"install -d -o threshold -g threshold -m 0700 /app/media /backups", runs)


def test_backups_and_uploads_stay_out_of_git_and_the_image():
    assert "/backups/" in (ROOT / ".gitignore").read_text().split()
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {"backups", "media"} <= set(ignored)


def test_make_backup_runs_the_backup_command():
    makefile = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^backup: install\n\t(.+)$", makefile, re.MULTILINE)

    assert recipe
    assert "manage.py backup" in recipe.group(1)
    assert "--to" in recipe.group(1)
