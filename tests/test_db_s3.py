"""db/: pgBackRest's repository 2 on an S3-compatible object store, natively.

Full tier (`full`): moto's standalone S3 server (with IAM authentication on,
so a wrong key is refused) over TLS, with a CA and a certificate made here;
the real pgbackrest and a real server of the rendered db/ (harness.pitr's
Archived, on conftest's pitr_project). Repository 2 is configured by
uncommenting db/.env.example's PGBACKREST_REPO2_* lines into db/.env, with
this store's values: what its comments tell a team to do.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from harness import dotenv
from harness.net import free_port
from harness.pitr import Archived, rows, wait_until_promoted, writes_around_a_noted_time

pytestmark = pytest.mark.full


def make_certificates(directory: Path) -> None:
    """ca.pem, and server.pem/server.key for localhost and 127.0.0.1 signed by it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])

    def builder(subject, public_key):
        return (x509.CertificateBuilder().subject_name(subject).issuer_name(ca_name).public_key(public_key)
                .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(days=1)))

    ca = (builder(ca_name, ca_key.public_key())
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    server = (builder(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]), key.public_key())
              .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                          x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                             critical=False)
              .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
              .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
              .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
              .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    (directory / "ca.pem").write_bytes(ca.public_bytes(pem))
    (directory / "server.pem").write_bytes(server.public_bytes(pem))
    (directory / "server.key").write_bytes(key.private_bytes(pem, serialization.PrivateFormat.TraditionalOpenSSL,
                                                              serialization.NoEncryption()))
    for name in ("ca.pem", "server.pem", "server.key"):
        (directory / name).chmod(0o644)  # the server's user reads the CA


# moto's S3 server, as `moto_server --ssl-cert --ssl-key` runs it, except that
# a connection it closes gets TLS's close_notify first: werkzeug only closes
# the socket, which OpenSSL 3 in pgBackRest rightly takes for a truncation.
SERVE = """
import sys
from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server

host, port, cert, key = sys.argv[1:]
server = make_server(host, int(port), DomainDispatcherApplication(create_backend_app), threaded=True,
                     ssl_context=(cert, key))
close = server.shutdown_request

def shutdown_request(request):
    try:
        request.settimeout(2)
        request.unwrap()
    except OSError:
        pass
    close(request)

server.shutdown_request = shutdown_request
server.serve_forever()
"""


class ObjectStore:
    """moto's S3 server on https://127.0.0.1:<port>, a bucket, and a user's key."""

    def __init__(self, directory: Path):
        import boto3

        directory.mkdir(mode=0o755)
        make_certificates(directory)
        self.ca = directory / "ca.pem"
        self.port = free_port()
        self.endpoint = f"https://127.0.0.1:{self.port}"
        # Authentication on after the three requests that create the user.
        env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "3"}
        self.log = (directory / "moto.log").open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-c", SERVE, "127.0.0.1", str(self.port), str(directory / "server.pem"),
             str(directory / "server.key")],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                assert self.process.poll() is None and time.monotonic() < deadline, "moto did not start"
                time.sleep(0.2)
        common = {"endpoint_url": self.endpoint, "verify": str(self.ca), "region_name": "us-east-1"}
        iam = boto3.client("iam", aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap", **common)
        iam.create_user(UserName="backup")
        access = iam.create_access_key(UserName="backup")["AccessKey"]
        iam.put_user_policy(UserName="backup", PolicyName="backups", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
        self.key, self.secret = access["AccessKeyId"], access["SecretAccessKey"]
        self.client = boto3.client("s3", aws_access_key_id=self.key, aws_secret_access_key=self.secret, **common)
        self.bucket = "backups"
        self.client.create_bucket(Bucket=self.bucket)

    def keys(self, prefix: str = "") -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


@pytest.fixture(scope="module")
def store():
    # Outside pytest's private temporary directory: the server's user reads the CA.
    root = Path(tempfile.mkdtemp(prefix="s3-"))
    root.chmod(0o755)
    store = ObjectStore(root / "store")
    yield store
    store.stop()
    shutil.rmtree(root, ignore_errors=True)


def with_repo2(pitr_project: Path, store: ObjectStore, destination: Path, prefix: str) -> Path:
    """A copy of the project whose db/.env enables repository 2 as .env.example documents it."""
    project = destination / "project"
    shutil.copytree(pitr_project, project, symlinks=True)
    values = {
        "TYPE": "s3", "S3_ENDPOINT": "localhost", "S3_REGION": "us-east-1", "S3_BUCKET": store.bucket,
        "S3_KEY": store.key, "S3_KEY_SECRET": store.secret, "S3_URI_STYLE": "path", "STORAGE_PORT": str(store.port),
        "STORAGE_CA_FILE": str(store.ca), "CIPHER_TYPE": "aes-256-cbc", "CIPHER_PASS": "another-long-passphrase",
        "RETENTION_FULL": "2", "PATH": prefix,
    }
    documented = [line[1:].split("=", 1)[0] for line in (project / "db/.env.example").read_text().splitlines()
                  if line.startswith("#PGBACKREST_REPO2_")]
    assert sorted(documented) == sorted(f"PGBACKREST_REPO2_{key}" for key in values), documented
    with (project / "db/.env").open("a") as env:
        for name in documented:
            env.write(f"{name}={values[name.removeprefix('PGBACKREST_REPO2_')]}\n")
    return project


@pytest.fixture
def two_repos(pitr_project, store, tmp_path):
    project = with_repo2(pitr_project, store, tmp_path, f"/giga-{tmp_path.name}")
    db = Archived(project)
    db.prefix = dotenv.load(project / "db/.env")["PGBACKREST_REPO2_PATH"].lstrip("/")
    yield db
    db.destroy()


def test_archive_and_backups_reach_both_repositories_and_repository_2_alone_restores(two_repos, store):
    db = two_repos
    # init/ created the stanza in both
    assert any(key.endswith("archive.info") for key in store.keys(db.prefix)), store.keys(db.prefix)
    db.sql("CREATE TABLE orders (id int PRIMARY KEY, note text)")
    backup = db.script("backup-physical", "full")
    assert backup.returncode == 0, backup.stdout + backup.stderr
    for repo in (1, 2):
        assert f"full backup of stanza 'giga' into repository {repo} done" in backup.stdout, backup.stdout
    check = db.pgbackrest("check")
    assert check.returncode == 0, check.stdout + check.stderr
    stored = store.keys(db.prefix)
    assert any("/backup/giga/" in f"/{key}" and key.endswith("F/backup.manifest") for key in stored), stored
    assert any("/archive/giga/15-1/" in f"/{key}" and key.endswith(".zst") for key in stored), stored
    assert any(p.name.endswith(".zst") for p in db.repo.glob("archive/giga/15-1/*/*"))
    # the objects are encrypted: no WAL segment's header in the clear
    some = next(key for key in stored if key.endswith(".zst") and "/archive/" in f"/{key}")
    assert not store.client.get_object(Bucket=store.bucket, Key=some)["Body"].read().startswith(b"\x28\xb5\x2f\xfd")

    noted = writes_around_a_noted_time(db)
    # Everything written is archived, then the host is lost, repository 1 with it.
    check = db.pgbackrest("check")
    assert check.returncode == 0, check.stdout + check.stderr
    db.server.stop()
    shutil.rmtree(db.repo)
    db.repo.mkdir()
    if os.geteuid() == 0:
        shutil.chown(db.repo, "postgres", "postgres")
    # What README.md says to do then: PGBACKREST_REPO=2 in db/.env, make db-pitr.
    restored = db.script("pitr", noted, "--yes", PGBACKREST_REPO="2")
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert not list(db.repo.iterdir()), "nothing came from repository 1"
    db.server.server_env["PGBACKREST_REPO"] = "2"
    db.server.start()
    wait_until_promoted(db)
    assert rows(db) == list(range(1, 101))


def test_a_wrong_key_fails_clearly_and_changes_nothing(two_repos, store):
    db = two_repos
    db.sql("CREATE TABLE orders (id int PRIMARY KEY, note text)")
    before = sorted(store.keys(db.prefix))
    result = db.script("backup-physical", "full", PGBACKREST_REPO2_S3_KEY_SECRET="not-the-secret")
    assert result.returncode == 1, result.stdout + result.stderr
    # the store refuses the request's signature (a HEAD: 403 without a body)
    assert "the repository cannot be used, no backup was taken" in result.stderr, result.stderr
    assert "on repo2\nERROR: [039]: HTTP request failed with 403 (FORBIDDEN)" in result.stderr, result.stderr
    assert sorted(store.keys(db.prefix)) == before
    assert not list(db.repo.glob("backup/giga/*F")), "nothing in repository 1 either"
