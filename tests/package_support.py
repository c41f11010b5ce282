"""What `sqlflow deps` tests fetch from: a dbt Hub on localhost and git repositories in tmp_path."""

from __future__ import annotations

import http.server
import io
import json
import subprocess
import tarfile
import threading
from pathlib import Path


def hub_package(name: str, version: str, packages: str | None = None, macros: str = "") -> dict[str, str]:
    """The files of a package whose `version()` macro answers its version."""
    files = {
        "dbt_project.yml": f"name: {name}\nversion: '{version}'\nconfig-version: 2\n",
        "macros/version.sql": f"{{% macro version() %}}'{version}'{{% endmacro %}}\n{macros}",
    }
    if packages is not None:
        files["packages.yml"] = packages
    return files


def write_files(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


class FakeHub:
    """The dbt Hub API on localhost: a version published is in the package's index at once."""

    def __init__(self) -> None:
        self.archives: dict[str, dict[str, bytes]] = {}  # "acme/mini_utils" -> {version: .tar.gz}
        hub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = hub.answer(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.url = f"{self.base}/api/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def publish(self, package: str, version: str, files: dict[str, str]) -> None:
        buffer = io.BytesIO()
        top = f"{package.split('/')[1]}-{version}"
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            for relative, text in files.items():
                data = text.encode()
                info = tarfile.TarInfo(f"{top}/{relative}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        self.archives.setdefault(package, {})[version] = buffer.getvalue()

    def answer(self, path: str) -> bytes | None:
        for package, versions in self.archives.items():
            if path == f"/api/v1/{package}.json":
                listed = {
                    version: {"downloads": {"tarball": f"{self.base}/tarballs/{package}/{version}.tar.gz"}}
                    for version in versions
                }
                return json.dumps({"name": package.split("/")[1], "versions": listed}).encode()
            for version, archive in versions.items():
                if path == f"/tarballs/{package}/{version}.tar.gz":
                    return archive
        return None

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def git(*args: str, cwd: Path) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


def commit(repo: Path, files: dict[str, str], tag: str | None = None) -> str:
    """Write the files into the repository (created if new), commit them; the commit's sha."""
    if not (repo / ".git").exists():
        repo.mkdir(parents=True, exist_ok=True)
        git("init", "-q", "-b", "main", cwd=repo)
    write_files(repo, files)
    git("add", ".", cwd=repo)
    git("commit", "-qm", tag or "change", cwd=repo)
    if tag:
        git("tag", tag, cwd=repo)
    return git("rev-parse", "HEAD", cwd=repo)


def publish_mini_utils(hub: FakeHub, *versions: str) -> None:
    for version in versions:
        hub.publish("acme/mini_utils", version, hub_package("mini_utils", version))
