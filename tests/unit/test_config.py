"""Start-up validation: a configuration that cannot run safely is refused."""
import pytest

from app import create_app
from app.config import ConfigError, DevelopmentConfig, ProductionConfig, TestConfig, config_from_env, new_vapid_keys

STRONG_KEY = "k" * 20 + "Zq8-vT3_pL0xWm7n2RsY4u"


@pytest.fixture
def prod_env(monkeypatch):
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", STRONG_KEY)
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://u:p@127.0.0.1:1/x")
    monkeypatch.setenv("PAYMENT_PROVIDER", "yoco")
    monkeypatch.setenv("YOCO_SECRET_KEY", "sk_live_abc")
    monkeypatch.setenv("YOCO_WEBHOOK_SECRET", "whsec_c2VjcmV0")
    for name, value in new_vapid_keys().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("VAPID_SUBJECT", "mailto:ops@example.com")
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://beatmatch.example")
    return monkeypatch


def test_production_starts_with_a_complete_configuration(prod_env):
    app = create_app()
    assert app.config["ENV_NAME"] == "production"
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert "sandbox" not in app.blueprints


@pytest.mark.parametrize("secret", ["", "dev", "short-but-not-empty"])
def test_production_refuses_a_missing_or_weak_secret_key(prod_env, secret):
    prod_env.setenv("SECRET_KEY", secret)
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        create_app()


def test_production_refuses_the_payment_sandbox(prod_env):
    prod_env.setenv("PAYMENT_PROVIDER", "sandbox")
    with pytest.raises(ConfigError, match="sandbox"):
        create_app(ProductionConfig)


def test_production_needs_yoco_credentials(prod_env):
    prod_env.setenv("YOCO_WEBHOOK_SECRET", "not-a-whsec")
    with pytest.raises(ConfigError, match="whsec_"):
        create_app(ProductionConfig)


def test_production_needs_a_database_url(prod_env):
    prod_env.delenv("DATABASE_URL")
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        create_app(ProductionConfig)


@pytest.mark.parametrize("name", ["VAPID_PRIVATE_KEY", "VAPID_PUBLIC_KEY", "VAPID_SUBJECT"])
def test_production_needs_the_web_push_keys(prod_env, name):
    prod_env.delenv(name)
    with pytest.raises(ConfigError, match=name):
        create_app(ProductionConfig)


@pytest.mark.parametrize("base", [None, "", "http://beatmatch.example", "beatmatch.example", "https://",
                                  "https://beatmatch.example/fan", "https://beatmatch.example/?x=1"])
def test_production_needs_its_public_https_address_for_links_in_mails_and_qr_codes(prod_env, base):
    if base is None:
        prod_env.delenv("PUBLIC_BASE_URL")
    else:
        prod_env.setenv("PUBLIC_BASE_URL", base)
    with pytest.raises(ConfigError, match="PUBLIC_BASE_URL"):
        create_app(ProductionConfig)


def test_production_takes_its_public_address_with_or_without_a_final_slash(prod_env):
    for base in ("https://beatmatch.example/", "https://beatmatch.example:8443"):
        prod_env.setenv("PUBLIC_BASE_URL", base)
        assert create_app(ProductionConfig).config["PUBLIC_BASE_URL"] == base


def test_development_keeps_its_vapid_keys_in_instance(monkeypatch, tmp_path):
    monkeypatch.setattr("app.config.INSTANCE_DIR", tmp_path)
    monkeypatch.delenv("VAPID_PRIVATE_KEY", raising=False)
    monkeypatch.delenv("VAPID_PUBLIC_KEY", raising=False)
    first, again = DevelopmentConfig(), DevelopmentConfig()
    assert (tmp_path / "vapid.json").exists()
    assert first.VAPID_PUBLIC_KEY == again.VAPID_PUBLIC_KEY and len(first.VAPID_PUBLIC_KEY) == 87
    assert first.VAPID_PRIVATE_KEY == again.VAPID_PRIVATE_KEY


def test_unknown_payment_provider_is_refused_everywhere(monkeypatch):
    monkeypatch.setenv("PAYMENT_PROVIDER", "paypal")
    with pytest.raises(ConfigError, match="PAYMENT_PROVIDER"):
        DevelopmentConfig().validate()


def test_unknown_app_env_is_refused(monkeypatch):
    monkeypatch.setenv("APP_ENV", "staging-ish")
    with pytest.raises(ConfigError, match="APP_ENV"):
        config_from_env()


def test_non_integer_setting_is_refused(monkeypatch):
    monkeypatch.setenv("SESSION_HOURS", "twelve")
    with pytest.raises(ConfigError, match="SESSION_HOURS"):
        TestConfig()


def test_development_refuses_to_guess_the_payment_provider(monkeypatch):
    """The sandbox is an explicit opt-in (`make run` sets it), not what an unset variable means."""
    monkeypatch.delenv("PAYMENT_PROVIDER", raising=False)
    with pytest.raises(ConfigError, match="PAYMENT_PROVIDER=sandbox"):
        DevelopmentConfig().validate()


def test_development_defaults_run_with_the_sandbox_when_asked(monkeypatch):
    monkeypatch.setenv("PAYMENT_PROVIDER", "sandbox")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("SECRET_KEY", raising=False)
    config = DevelopmentConfig()
    config.validate()
    assert config.PAYMENT_PROVIDER == "sandbox"
    assert config.SQLALCHEMY_DATABASE_URI.startswith("sqlite:///")
    assert len(config.SECRET_KEY) >= 32
    assert DevelopmentConfig().SECRET_KEY == config.SECRET_KEY  # kept per install


def test_admin_idle_minutes_and_platform_fee(monkeypatch):
    monkeypatch.setenv("PAYMENT_PROVIDER", "sandbox")
    config = TestConfig()
    assert config.ADMIN_IDLE_MINUTES == 30 and config.PLATFORM_FEE_PERCENT == 10.0
    monkeypatch.setenv("ADMIN_IDLE_MINUTES", "15")
    monkeypatch.setenv("PLATFORM_FEE_PERCENT", "12.5")
    config = TestConfig()
    config.validate()
    assert config.ADMIN_IDLE_MINUTES == 15 and config.PLATFORM_FEE_PERCENT == 12.5
    for name, value in (("ADMIN_IDLE_MINUTES", "0"), ("PLATFORM_FEE_PERCENT", "101"), ("PLATFORM_FEE_PERCENT", "-1"),
                        ("PLATFORM_FEE_PERCENT", "nan")):
        monkeypatch.setenv(name, value)
        with pytest.raises(ConfigError, match=name):
            TestConfig().validate()
        monkeypatch.setenv(name, "15" if name == "ADMIN_IDLE_MINUTES" else "10")
