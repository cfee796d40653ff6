"""Who may change the rules, in process: signatures, trusted keys, the silent-scenario
override, the audit diff, and the CLI's refusals."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bankguard.errors import BankguardError
from bankguard.rules.audit import config_diff
from bankguard.rules.config import DEFAULT_CONFIG_PATH, load_rules, parse_rules
from bankguard.rules.coverage import SilentScenarios, require_coverage, silent_scenarios
from bankguard.rules.signing import (KEY_ID, SIGNATURE, SIGNED_AT, SignatureRefused, TrustedKeys, generate_key_pair,
                                     key_id, load_private_key, sign, signing_key, trusted_keys)
from bankguard.scenarios import SCENARIOS
from bankguard.settings import RulesSettings, Settings

TOPIC = "bankguard.control.rules"
VALUE = DEFAULT_CONFIG_PATH.read_bytes()


def trusting(*keys: Ed25519PrivateKey) -> TrustedKeys:
    return TrustedKeys({key_id(k.public_key()): (f"holder-{i}", k.public_key()) for i, k in enumerate(keys)})


def refusal(trusted: TrustedKeys, value: bytes, headers: dict[str, bytes], topic: str = TOPIC) -> str:
    with pytest.raises(SignatureRefused) as caught:
        trusted.verify(topic, value, headers)
    return caught.value.reason


def test_a_signature_verifies_and_names_its_signer():
    key = Ed25519PrivateKey.generate()
    when = datetime(2026, 11, 21, 9, 30, tzinfo=UTC)
    signed = trusting(key).verify(TOPIC, VALUE, sign(key, TOPIC, VALUE, now=when))
    assert (signed.key_id, signed.signer, signed.signed_at) == (key_id(key.public_key()), "holder-0", when)


def test_unsigned_and_wrongly_signed_records_are_refused():
    key, stranger = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    trusted = trusting(key)
    headers = sign(key, TOPIC, VALUE)
    assert refusal(trusted, VALUE, {}) == "rules_config_unsigned"
    assert refusal(trusted, VALUE + b"\n# changed", headers) == "rules_signature_invalid"
    assert refusal(trusted, VALUE, sign(stranger, TOPIC, VALUE)) == "rules_signature_invalid"  # untrusted key
    # A stranger cannot borrow a trusted key's id either.
    forged = sign(stranger, TOPIC, VALUE) | {KEY_ID: headers[KEY_ID]}
    assert refusal(trusted, VALUE, forged) == "rules_signature_invalid"
    # The signing time and the topic are signed too: a candidate for the shadow topic stays there.
    assert refusal(trusted, VALUE, headers | {SIGNED_AT: b"2099-01-01T00:00:00.000Z"}) == "rules_signature_invalid"
    assert refusal(trusted, VALUE, headers, topic="shadow.bankguard.control.rules") == "rules_signature_invalid"
    assert refusal(trusted, VALUE, headers | {SIGNATURE: b"not base64!"}) == "rules_signature_invalid"
    assert refusal(trusted, VALUE, {SIGNATURE: headers[SIGNATURE]}) == "rules_signature_invalid"


def test_trusted_keys_from_a_directory_are_named_after_their_files(tmp_path):
    private, _ = generate_key_pair(tmp_path / "alice", "alice")
    generate_key_pair(tmp_path / "bob", "bob")
    trusted_dir = tmp_path / "trusted"
    trusted_dir.mkdir()
    for holder in ("alice", "bob"):
        (trusted_dir / f"{holder}.pub").write_bytes((tmp_path / holder / f"{holder}.pub").read_bytes())
    settings = Settings(rules=RulesSettings(signing_key=private, trusted_keys=trusted_dir), run_dir=tmp_path / "run")
    key = signing_key(settings)
    assert trusted_keys(settings).verify(TOPIC, VALUE, sign(key, TOPIC, VALUE)).signer == "alice"
    assert oct(private.stat().st_mode & 0o777) == "0o600"
    assert not (tmp_path / "run").exists(), "explicit keys: no local pair is made"


def test_explicit_settings_never_fall_back_to_a_local_key(tmp_path):
    only_trust = Settings(rules=RulesSettings(trusted_keys=tmp_path / "missing.pub"), run_dir=tmp_path / "run")
    with pytest.raises(BankguardError, match="BANKGUARD_RULES__SIGNING_KEY"):
        signing_key(only_trust)
    with pytest.raises(BankguardError, match="trusted rules keys not found"):
        trusted_keys(only_trust)
    with pytest.raises(BankguardError, match="not found"):
        load_private_key(tmp_path / "nope.pem")


def test_the_local_pair_is_made_once_and_shared_by_publisher_and_worker(tmp_path):
    settings = Settings(run_dir=tmp_path / "run")
    key = signing_key(settings)  # publisher first
    again = signing_key(settings)
    assert key_id(key.public_key()) == key_id(again.public_key())
    assert trusted_keys(settings).verify(TOPIC, VALUE, sign(key, TOPIC, VALUE)).signer == "local"
    assert oct((tmp_path / "run" / "keys" / "rules-signing.pem").stat().st_mode & 0o777) == "0o600"


def test_keygen_refuses_to_overwrite(tmp_path):
    generate_key_pair(tmp_path)
    with pytest.raises(BankguardError, match="not overwriting"):
        generate_key_pair(tmp_path)
    with pytest.raises(BankguardError, match="key name"):
        generate_key_pair(tmp_path, "../escape")


# --- no scenario silenced by accident ---------------------------------------------------------


def rules(**changes: object) -> dict:
    document = yaml.safe_load(VALUE)
    document.update(changes)
    return document


def all_off(**changes: object) -> dict:
    """Every rule disabled, as the measured attack did it: by id, and switched off in place."""
    from bankguard.rules import RULES
    return rules(version="all-off", disabled_rules=sorted(RULES), keywords={"enabled": False},
                 large_amount={**rules()["large_amount"], "enabled": False}, **changes)


def test_the_packaged_rules_cover_every_scenario():
    assert silent_scenarios(load_rules()) == []
    require_coverage(load_rules())


def test_switching_every_rule_off_needs_an_explicit_override():
    config = parse_rules(yaml.safe_dump(all_off(), allow_unicode=True))
    assert silent_scenarios(config) == list(SCENARIOS)
    with pytest.raises(SilentScenarios, match="no active rule for enterprise_loan, credit_card"):
        require_coverage(config)
    partial = parse_rules(yaml.safe_dump(all_off(allow_silent_scenarios=["aml_kyc"]), allow_unicode=True))
    with pytest.raises(SilentScenarios) as caught:
        require_coverage(partial)
    assert "aml_kyc" not in str(caught.value) and "cyber_security" in str(caught.value)
    require_coverage(parse_rules(yaml.safe_dump(all_off(allow_silent_scenarios=list(SCENARIOS)),
                                                allow_unicode=True)))


def test_one_scenario_silenced_is_named():
    from bankguard.rules import RULES
    own = sorted(rule for rule in RULES if rule.startswith("aml_kyc."))
    document = rules(disabled_rules=[*own, "keywords", "large_amount"])
    with pytest.raises(SilentScenarios) as caught:
        require_coverage(parse_rules(yaml.safe_dump(document, allow_unicode=True)))
    assert str(caught.value).startswith("rules: no active rule for aml_kyc;")


def test_the_override_names_real_scenarios():
    with pytest.raises(BankguardError, match="unknown scenario"):
        require_coverage(parse_rules(yaml.safe_dump(rules(allow_silent_scenarios=["aml"]), allow_unicode=True)))


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bankguard", *args], capture_output=True, text=True,
                          timeout=60, env=env)


@pytest.mark.broker  # runs a `bankguard` command
def test_rules_check_and_publish_refuse_an_all_off_configuration(tmp_path):
    path = tmp_path / "off.yaml"
    path.write_text(yaml.safe_dump(all_off(), allow_unicode=True), encoding="utf-8")
    for command in ("check", "publish"):
        # publish refuses before it looks for a key or a broker (none is reachable here)
        result = run_cli("rules", command, str(path), env=_env(tmp_path))
        assert result.returncode != 0
        assert "allow_silent_scenarios" in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "run" / "keys").exists()
    path.write_text(yaml.safe_dump(all_off(allow_silent_scenarios=list(SCENARIOS)), allow_unicode=True),
                    encoding="utf-8")
    result = run_cli("rules", "check", str(path), env=_env(tmp_path))
    assert result.returncode == 0, result.stderr


def _env(tmp_path: Path) -> dict[str, str]:
    import os
    return os.environ | {"BANKGUARD_RUN_DIR": str(tmp_path / "run"),
                         "BANKGUARD_KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:1"}


# --- the audit diff ---------------------------------------------------------------------------


def test_the_audit_diff_names_each_changed_field():
    old = load_rules()
    document = rules(version="lower")
    document["large_amount"]["amount_threshold"] = 20_000
    document["large_amount"]["tiers"] = [{"threshold": 300_000, "severity": "critical"}]
    document["disabled_rules"] = ["keywords"]
    new = parse_rules(yaml.safe_dump(document, allow_unicode=True))
    assert config_diff(old, new) == [
        {"path": "disabled_rules", "old": [], "new": ["keywords"]},
        {"path": "large_amount.amount_threshold", "old": 50_000.0, "new": 20_000.0},
        {"path": "large_amount.tiers.0.threshold", "old": 200_000.0, "new": 300_000.0},
        {"path": "version", "old": "2026-11-21.1", "new": "lower"},
    ]
    assert config_diff(old, old) == []


def test_a_worker_does_not_start_with_silencing_rules(tmp_path):
    from bankguard.stream_agents.rules_control import RulesWatcher
    config = parse_rules(yaml.safe_dump(all_off(), allow_unicode=True))
    with pytest.raises(SilentScenarios, match="starting rules: no active rule"):
        RulesWatcher(Settings(run_dir=tmp_path / "run"), TOPIC, config)
