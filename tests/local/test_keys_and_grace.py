"""The home's pseudonym key (made once, owner-only, never the public constant without the dev
flag) and the gateway's drain grace (the request timeout by default; the chart's pod grace is
derived from it). No ports, no processes but helm."""

from __future__ import annotations

import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from services.common.errors import FailedPrecondition
from services.common.keys import ensure_pseudonym_key, ensure_ray_auth_token
from services.common.settings import DEV_PSEUDONYM_KEY, CoreSettings
from services.gateway.settings import GatewaySettings
from services.local.stack import LocalStack

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def no_dev_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TAILORLINE_DEV_PSEUDONYM_KEY", raising=False)
    monkeypatch.delenv("TAILORLINE_PSEUDONYM_KEY", raising=False)


def test_a_fresh_home_gets_its_own_owner_only_key_once(tmp_path: Path, no_dev_key: None) -> None:
    core = CoreSettings(home=tmp_path / "home")
    assert core.pseudonym_key is None
    with pytest.raises(FailedPrecondition, match="no pseudonym key"):
        core.require_pseudonym_key()

    made = ensure_pseudonym_key(core)
    key = made.require_pseudonym_key()
    assert key != DEV_PSEUDONYM_KEY and len(key) == 64
    path = tmp_path / "home" / "pseudonym_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # every later process of that home reads the same key; a second ensure never rewrites it
    assert CoreSettings(home=tmp_path / "home").pseudonym_key == key
    assert ensure_pseudonym_key(CoreSettings(home=tmp_path / "home")).pseudonym_key == key
    assert path.read_text().strip() == key
    # another home, another key
    assert ensure_pseudonym_key(CoreSettings(home=tmp_path / "other")).pseudonym_key != key


def test_a_readable_key_file_is_made_owner_only(tmp_path: Path, no_dev_key: None) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "pseudonym_key").write_text("copied-in-by-hand\n")
    (home / "pseudonym_key").chmod(0o644)
    core = ensure_pseudonym_key(CoreSettings(home=home))
    assert core.pseudonym_key == "copied-in-by-hand"
    assert stat.S_IMODE((home / "pseudonym_key").stat().st_mode) == 0o600


def test_a_home_gets_its_own_owner_only_ray_token_once(tmp_path: Path) -> None:
    path = ensure_ray_auth_token(tmp_path / "home")
    assert path == tmp_path / "home" / "ray_auth_token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    token = path.read_text().strip()
    assert len(token) == 64 and int(token, 16) >= 0
    assert ensure_ray_auth_token(tmp_path / "home").read_text().strip() == token  # kept
    assert ensure_ray_auth_token(tmp_path / "other").read_text().strip() != token
    path.chmod(0o644)  # copied in by hand: made owner-only, never rewritten
    assert ensure_ray_auth_token(tmp_path / "home").read_text().strip() == token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_stack_hands_the_ray_token_to_the_optimizer_and_the_gateway(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spawned: dict[str, tuple[list[str], dict[str, str]]] = {}
    monkeypatch.setattr(
        LocalStack, "_spawn", lambda self, name, args, env=None: spawned.update({name: (args, env)})
    )
    stack = LocalStack(CoreSettings(home=tmp_path))
    stack.start_optimizer()
    stack.start_gateway()
    token = tmp_path / "ray_auth_token"
    assert stack.ray_auth_token_file == token and token.is_file()
    args = spawned["optimizer"][0]
    assert args[args.index("--auth-token-file") + 1] == str(token)
    var = "TAILORLINE_GATEWAY_RAY_AUTH_TOKEN_FILE"
    monkeypatch.setenv(var, spawned["gateway"][1][var])
    assert GatewaySettings().ray_auth_token_file == token
    # no job server, no token
    spawned.clear()
    bare = LocalStack(CoreSettings(home=tmp_path / "bare"), ray_jobs=False)
    bare.start_optimizer()
    bare.start_gateway()
    assert "--auth-token-file" not in spawned["optimizer"][0]
    assert var not in spawned["gateway"][1]
    assert not (tmp_path / "bare" / "ray_auth_token").exists()


def test_the_public_constant_only_with_the_dev_flag(
    tmp_path: Path, no_dev_key: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert CoreSettings(home=tmp_path).pseudonym_key is None
    monkeypatch.setenv("TAILORLINE_DEV_PSEUDONYM_KEY", "true")
    core = CoreSettings(home=tmp_path)
    assert core.require_pseudonym_key() == DEV_PSEUDONYM_KEY
    assert ensure_pseudonym_key(core).pseudonym_key == DEV_PSEUDONYM_KEY
    assert not (tmp_path / "pseudonym_key").exists()
    # a configured key (the environment, a mounted Secret) always wins over file and flag
    monkeypatch.setenv("TAILORLINE_PSEUDONYM_KEY", "from-the-secret")
    assert CoreSettings(home=tmp_path).pseudonym_key == "from-the-secret"


def test_drain_grace_defaults_to_the_request_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("TAILORLINE_GATEWAY_DRAIN_GRACE_S", "TAILORLINE_GATEWAY_REQUEST_TIMEOUT_S"):
        monkeypatch.delenv(key, raising=False)
    assert GatewaySettings().resolved_drain_grace_s == GatewaySettings().request_timeout_s == 120
    assert GatewaySettings(request_timeout_s=600).resolved_drain_grace_s == 600
    assert GatewaySettings(drain_grace_s=30).resolved_drain_grace_s == 30


def _helm() -> str:
    local = REPO / ".tools" / "bin" / "helm"
    found = str(local) if local.exists() else shutil.which("helm")
    if found is None:
        pytest.skip("helm not found (bash scripts/get-helm.sh .tools/bin)")
    return found


@pytest.mark.parametrize(
    ("sets", "drain", "pod_grace"),
    [
        ([], 120, 135),
        (["--set", "gateway.config.requestTimeoutSeconds=600"], 600, 615),
        (["--set-json", "gateway.config.drainGraceSeconds=300"], 300, 315),
    ],
)
def test_the_chart_derives_the_pod_grace_from_the_drain_grace(
    sets: list[str], drain: int, pod_grace: int
) -> None:
    out = subprocess.run(
        [_helm(), "template", "t", str(REPO / "helm" / "tailorline"), *sets],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    (deployment,) = [
        d
        for d in yaml.safe_load_all(out)
        if d and d["kind"] == "Deployment" and d["metadata"]["name"].endswith("gateway")
    ]
    spec = deployment["spec"]["template"]["spec"]
    assert spec["terminationGracePeriodSeconds"] == pod_grace
    env = {e["name"]: e.get("value") for e in spec["containers"][0]["env"]}
    assert env["TAILORLINE_GATEWAY_DRAIN_GRACE_S"] == str(drain)


def test_a_store_filled_before_the_home_had_a_key_is_not_given_a_new_one(
    tmp_path: Path, no_dev_key: None
) -> None:
    """Homes filled by earlier versions (public key, no key file): a random key now would give
    their customers new pseudonyms, so ensure refuses and says what to do."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "tailorline.db").write_bytes(b"SQLite format 3\x00" + b"\x00" * 84)
    with pytest.raises(FailedPrecondition, match="filled before this home had its own key"):
        ensure_pseudonym_key(CoreSettings(home=home))
    assert not (home / "pseudonym_key").exists()
    (home / "pseudonym_key").write_text(DEV_PSEUDONYM_KEY + "\n")
    assert ensure_pseudonym_key(CoreSettings(home=home)).pseudonym_key == DEV_PSEUDONYM_KEY


def test_an_empty_key_file_is_an_error_not_a_key(tmp_path: Path, no_dev_key: None) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "pseudonym_key").write_text("")
    with pytest.raises(FailedPrecondition, match="is empty"):
        ensure_pseudonym_key(CoreSettings(home=home))
    assert not [p for p in home.iterdir() if p.name.startswith(".pseudonym_key")]
