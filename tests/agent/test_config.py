"""The agent's YAML configuration: the form of the issue works; every mistake is reported
with the file and the place in it."""

from __future__ import annotations

from pathlib import Path

import pytest

from certfleet.agent import load_config
from certfleet.agent.errors import AgentConfigError
from certfleet.x509 import KeyType

ISSUE_EXAMPLE = """\
server: https://127.0.0.1:8443
allowed_dirs: [{tls}]
certificates:
  - name: web
    names: [localhost, 127.0.0.1]
    profile: tls-server
    key_type: ec-p256
    files: {{key: {tls}/web.key, fullchain: {tls}/web.crt}}
    reload: [nginx, -s, reload]
    health_check: {{connect: "127.0.0.1:443", sni: localhost}}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.yaml"
    path.write_text(text.format(tls=tmp_path / "tls"))
    return path


def test_the_example_of_the_issue_parses(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ISSUE_EXAMPLE))
    [web] = config.certificates
    assert config.server == "https://127.0.0.1:8443"
    assert web.names == ("localhost", "127.0.0.1") and web.key_type is KeyType.EC_P256
    assert web.reload == ("nginx", "-s", "reload")
    assert web.health_check is not None and web.health_check.endpoint == "127.0.0.1:443"
    key = web.file("key")
    assert key is not None and key.mode == 0o600 and key.path == tmp_path / "tls" / "web.key"
    chain = web.file("fullchain")
    assert chain is not None and chain.mode == 0o644
    assert web.issuer == "certfleet"


def test_keystores_owners_and_an_acme_issuer(tmp_path: Path) -> None:
    (tmp_path / "p12pass").write_text("s3cret\n")
    config = load_config(
        write(
            tmp_path,
            """\
allowed_dirs: [{tls}]
certificates:
  - name: java
    names: [app.example.test]
    key_type: rsa-2048
    owner: www-data
    group: ssl-cert
    issuer:
      acme:
        directory: "https://acme.example.test/dir"
        email: ops@example.test
        http01: {{listen: "127.0.0.1:5002"}}
    files:
      pkcs12: {{path: {tls}/app.p12, password_file: """
            + str(tmp_path / "p12pass")
            + """}}
      jks: {{path: {tls}/app.jks, password: changeit, mode: "0640", group: java}}
      combined: {tls}/app.pem
""",
        )
    )
    [java] = config.certificates
    assert config.server is None and java.issuer == "acme"
    assert (
        java.acme is not None
        and java.acme.http01_listen == ("127.0.0.1", 5002)
        and java.acme.challenge == "http-01"
    )
    p12, jks, combined = java.files
    assert (p12.password, p12.owner, p12.group, p12.mode) == (b"s3cret", "www-data", "ssl-cert", 0o600)
    assert (jks.password, jks.group, jks.mode) == (b"changeit", "java", 0o640)
    assert combined.mode == 0o600  # it holds the key


ONE = "server: https://s\nallowed_dirs: [{tls}]\ncertificates:\n - "
NO_SERVER = "allowed_dirs: [{tls}]\ncertificates:\n - "
W_KEY = "{{name: w, names: [a.test], files: {{key: {tls}/k}}}}\n"
ACME_TWO_WAYS = "issuer: {{acme: {{directory: 'https://a/dir', http01: {{}}, webroot: /var/www}}}}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("allowed_dirs: [{tls}]\ncertificates: []\n", "certificates: must be a non-empty list"),
        ("certificates: [{{name: a}}]\n", "allowed_dirs: must be a non-empty list"),
        (
            "allowed_dirs: [relative]\ncertificates: [x]\n",
            "allowed_dirs[0]: 'relative' must be an absolute path",
        ),
        (
            "server: http://x\nallowed_dirs: [{tls}]\ncertificates: [x]\n",
            "server: 'http://x' must be an https:// URL",
        ),
        ("allowed_dirs: [{tls}]\nbogus: 1\n", "unknown key 'bogus'"),
        (
            ONE + "{{name: w, names: [a.test], files: {{key: /etc/passwd}}}}\n",
            "certificates[0].files.key: /etc/passwd is outside the allowed_dirs",
        ),
        (
            ONE + "{{name: w, names: [a.test], files: {{key: {tls}/../escape.key}}}}\n",
            "outside the allowed_dirs",
        ),
        (
            ONE + "{{name: w, names: [a.test], files: {{key: {tls}/k}}, reload: nginx -s reload}}\n",
            "certificates[0].reload: must be a list of arguments",
        ),
        (
            ONE + "{{name: w, names: [a..test], files: {{key: {tls}/k}}}}\n",
            "certificates[0]: name 'a..test' has an empty label",
        ),
        (
            ONE + "{{name: w, names: [a.test], key_type: dsa, files: {{key: {tls}/k}}}}\n",
            "unknown key type 'dsa'",
        ),
        (
            ONE + "{{name: w, names: [a.test], files: {{pkcs12: {tls}/k.p12}}}}\n",
            "certificates[0].files.pkcs12: a keystore needs a password",
        ),
        (
            ONE + "{{name: w, names: [a.test], files: {{key: {{path: {tls}/k, mode: 640}}}}}}\n",
            "files.key.mode: 640 is not a file mode",
        ),
        (
            ONE + W_KEY + " - {{name: w, names: [a.test], files: {{cert: {tls}/c}}}}\n",
            "certificates[1].name: 'w' is used twice",
        ),
        (
            ONE + W_KEY + " - {{name: v, names: [a.test], files: {{cert: {tls}/k}}}}\n",
            "two certificates write the same file",
        ),
        (
            NO_SERVER + "{{name: w, names: [a.test], files: {{key: {tls}/k}}}}\n",
            "issuer certfleet needs the top-level server URL",
        ),
        (
            ONE
            + "{{name: w, names: [a.test], files: {{key: {tls}/k}}, health_check: {{connect: nohost}}}}\n",
            "health_check.connect: 'nohost' must be HOST:PORT",
        ),
        (
            NO_SERVER + "{{name: w, names: [a.test], files: {{key: {tls}/k}}, " + ACME_TWO_WAYS + "}}\n",
            "choose exactly one of http01",
        ),
        ("allowed_dirs: [{tls}\n", "not valid YAML"),
    ],
)
def test_mistakes_are_reported_precisely(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(AgentConfigError) as caught:
        load_config(write(tmp_path, text))
    assert message in caught.value.detail
    assert caught.value.detail.startswith(str(tmp_path / "agent.yaml"))


def test_a_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(AgentConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
