"""package-lock.yml: `sqlflow deps` writes it as dbt does, installs what it pins while packages.yml
is unchanged, and resolves again on --upgrade or a changed packages.yml; `--lock` only writes it."""

from __future__ import annotations

from package_support import commit, hub_package, publish_mini_utils, write_files
from test_user_errors import assert_user_error

# dbt-core's own sha1_hash (1.8.10 and 1.11.16 agree) of the packages.yml below.
PACKAGES = (
    'packages:\n  - local: ../helpers\n  - package: acme/mini_utils\n    version: [">=1.0.0", "<2.0.0"]\n'
)
PACKAGES_SHA1 = "2d3b97c7a3bf7f5d93749c822869680fb55000d3"


def lock_of(project) -> str:
    return (project.root / "package-lock.yml").read_text()


def test_the_lock_names_every_package_pinned_as_dbt_writes_it(make_project, tmp_path, hub):
    publish_mini_utils(hub, "1.0.0", "1.1.0", "2.0.0")
    repo = tmp_path / "deep"
    tagged = commit(repo, hub_package("deep", "1"), tag="v1")
    commit(repo, hub_package("deep", "2"))  # the branch moves on: the lock names v1's commit
    write_files(
        tmp_path / "helpers",
        {
            "dbt_project.yml": "name: helpers\nconfig-version: 2\n",
            "packages.yml": f"packages:\n  - git: {repo.as_uri()}\n    revision: v1\n",
        },
    )
    project = make_project({"packages.yml": PACKAGES})
    result = project.cli("deps")
    assert result.exit_code == 0, result.output
    assert "wrote package-lock.yml" in result.output
    # The project's packages first, then theirs; keys sorted; the digest dbt computes.
    assert lock_of(project) == (
        "packages:\n"
        "  - local: ../helpers\n"
        "    name: helpers\n"
        "  - name: mini_utils\n"
        "    package: acme/mini_utils\n"
        "    version: 1.1.0\n"
        f"  - git: {repo.as_uri()}\n"
        "    name: deep\n"
        f"    revision: {tagged}\n"
        f"sha1_hash: {PACKAGES_SHA1}\n"
    )


def test_a_current_lock_keeps_its_versions_until_upgrade(make_project, tmp_path, hub):
    publish_mini_utils(hub, "1.0.0", "1.1.0")
    repo = tmp_path / "deep"
    first = commit(repo, hub_package("deep", "1"))
    project = make_project(
        {
            "packages.yml": f'packages:\n  - package: acme/mini_utils\n    version: ">=1.0.0"\n  - git: {repo.as_uri()}\n',
            "models/v.sql": "select {{ mini_utils.version() }} as hub, {{ deep.version() }} as git",
        }
    )
    assert project.cli("deps").exit_code == 0
    locked = lock_of(project)
    assert "version: 1.1.0\n" in locked and f"revision: {first}\n" in locked

    # Newer versions appear; packages.yml is unchanged: the lock's versions are installed.
    publish_mini_utils(hub, "1.2.0")
    second = commit(repo, hub_package("deep", "2"))
    result = project.cli("deps")
    assert result.exit_code == 0, result.output
    assert "installing the packages package-lock.yml pins" in result.output
    assert lock_of(project) == locked
    assert project.cli("run").exit_code == 0
    assert project.query("select hub, git from v") == [("1.1.0", "1")]

    result = project.cli("deps", "--upgrade")
    assert result.exit_code == 0, result.output
    assert "version: 1.2.0\n" in lock_of(project) and f"revision: {second}\n" in lock_of(project)
    assert project.cli("run").exit_code == 0
    assert project.query("select hub, git from v") == [("1.2.0", "2")]


def test_a_changed_packages_yml_is_resolved_again(make_project, tmp_path, hub):
    publish_mini_utils(hub, "1.0.0", "1.1.0")
    write_files(tmp_path / "helpers", {"dbt_project.yml": "name: helpers\nconfig-version: 2\n"})
    project = make_project(
        {"packages.yml": PACKAGES, "models/v.sql": "select {{ mini_utils.version() }} as v"}
    )
    assert project.cli("deps").exit_code == 0
    publish_mini_utils(hub, "1.2.0")

    # As dbt: the digest is of the entries, so a comment or a layout change keeps the lock.
    project.write(
        "packages.yml",
        '# helpers, and the Hub\'s mini_utils\npackages:\n- local: "../helpers"\n'
        "- {package: acme/mini_utils, version: ['>=1.0.0', '<2.0.0']}\n",
    )
    assert project.cli("deps").exit_code == 0
    assert f"sha1_hash: {PACKAGES_SHA1}\n" in lock_of(project) and "version: 1.1.0\n" in lock_of(project)

    project.write("packages.yml", PACKAGES.replace('"<2.0.0"', '"<1.2.1"'))
    result = project.cli("deps")
    assert result.exit_code == 0, result.output
    assert "wrote package-lock.yml" in result.output
    assert "version: 1.2.0\n" in lock_of(project) and PACKAGES_SHA1 not in lock_of(project)
    assert project.cli("run").exit_code == 0
    assert project.scalar("select v from v") == "1.2.0"


def test_deps_lock_writes_the_lock_and_installs_nothing(make_project, hub):
    publish_mini_utils(hub, "1.0.0")
    project = make_project(
        {"packages.yml": 'packages:\n  - package: acme/mini_utils\n    version: ">=1.0.0"\n'}
    )
    result = project.cli("deps", "--lock")
    assert result.exit_code == 0, result.output
    assert "nothing installed (--lock)" in result.output
    assert "version: 1.0.0\n" in lock_of(project)
    assert not (project.root / "dbt_packages").exists()

    publish_mini_utils(hub, "1.1.0")
    result = project.cli("deps", "--lock")  # current: left as it is
    assert result.exit_code == 0 and "is current" in result.output
    assert "version: 1.0.0\n" in lock_of(project)
    assert project.cli("deps").exit_code == 0  # installs what --lock pinned
    installed = project.root / "dbt_packages" / "mini_utils" / "dbt_project.yml"
    assert "version: '1.0.0'" in installed.read_text()

    assert project.cli("deps", "--lock", "--upgrade").exit_code == 0
    assert "version: 1.1.0\n" in lock_of(project)
    assert "version: '1.0.0'" in installed.read_text()  # the install folder is untouched


def test_a_lock_dbt_1_8_wrote_is_installed_as_it_is(make_project, hub):
    # dbt before 1.9 writes no `name:`. The digest is the one dbt-core 1.8.10 computes.
    publish_mini_utils(hub, "1.0.0", "1.1.0")
    project = make_project(
        {
            "packages.yml": "packages:\n  - package: acme/mini_utils\n    version: [\">=1.0.0\", '<2.0.0']\n",
            "package-lock.yml": "packages:\n  - package: acme/mini_utils\n    version: 1.0.0\n"
            "sha1_hash: e6fb0f594169ce2e59f09cbca963301a7647d0fb\n",
            "models/v.sql": "select {{ mini_utils.version() }} as v",
        }
    )
    before = lock_of(project)
    result = project.cli("deps")
    assert result.exit_code == 0, result.output
    assert lock_of(project) == before
    assert project.cli("run").exit_code == 0
    assert project.scalar("select v from v") == "1.0.0"


def test_a_malformed_lock_is_an_error_that_says_what_to_do(make_project, hub):
    publish_mini_utils(hub, "1.0.0")
    project = make_project(
        {"packages.yml": 'packages:\n  - package: acme/mini_utils\n    version: ">=1.0.0"\n'}
    )
    assert project.cli("deps").exit_code == 0
    digest = lock_of(project).split("sha1_hash: ")[1].strip()
    for text, fragments in [
        ("packages: [\n", ["package-lock.yml:", "invalid YAML"]),
        ("- 1\n", ["package-lock.yml:1", "must be a mapping"]),
        (f"packages: {{}}\nsha1_hash: {digest}\n", ["package-lock.yml:1", "`packages` must be a list"]),
        ("packages: []\nsha1_hash: 5\n", ["package-lock.yml:2", "`sha1_hash` must be text"]),
        (
            f"packages:\n  - name: x\nsha1_hash: {digest}\n",
            ["package-lock.yml:2", "needs `local:`, `git:` or"],
        ),
        (
            f"packages:\n  - package: acme/mini_utils\n    version: '>=1.0.0'\nsha1_hash: {digest}\n",
            ["package-lock.yml:3", "must be one exact version"],
        ),
        (
            f"packages:\n  - package: acme/mini_utils\n    version: 9.9.9\nsha1_hash: {digest}\n",
            ["package-lock.yml:2", "acme/mini_utils 9.9.9", "is not on the Hub"],
        ),
    ]:
        project.write("package-lock.yml", text)
        assert_user_error(project.cli("deps"), *fragments, "sqlflow deps --upgrade")
        # Nothing was touched, nothing was left behind.
        assert (project.root / "dbt_packages" / "mini_utils").is_dir()
        assert lock_of(project) == text
        assert sorted(p.name for p in project.root.iterdir() if p.name.startswith(".")) == []
    result = project.cli("deps", "--upgrade")  # the way out the message names
    assert result.exit_code == 0, result.output
    assert f"sha1_hash: {digest}\n" in lock_of(project)
