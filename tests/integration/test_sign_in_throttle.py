"""The sign-in throttle bounds guessing without letting anyone lock others out
(services/accounts/login_throttle.py; the rule is in the README):
5 failures per 15 minutes per (account, address); 50 an hour per account from
all addresses; 100 per 15 minutes per address over all accounts; a device that
has signed in to the account before skips the two wide limits."""
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis as redis_lib

from app.services.accounts import login_throttle
from tests.conftest import PASSWORD, csrf_token_from, free_port


def attempt(client, address: str, email: str, password: str = PASSWORD):
    """One sign-in from `address`, as a browser does it (the page, then the form)."""
    env = {"REMOTE_ADDR": address}
    token = csrf_token_from(client.get("/login", environ_base=env).get_data(as_text=True))
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token},
                       environ_base=env)


def fail(client, address: str, email: str, times: int) -> None:
    for _ in range(times):
        assert attempt(client, address, email, "wrong-password").status_code == 401


def test_five_failures_from_one_address_pause_that_address_for_that_account(app, create_user):
    """(a) The brute-force bound: the 6th attempt from the address is refused, right password or not."""
    email = create_user("dj")
    attacker = app.test_client()
    fail(attacker, "198.51.100.7", email, 5)
    refused = attempt(attacker, "198.51.100.7", email)
    body = refused.get_data(as_text=True)
    assert refused.status_code == 429
    assert 0 < int(refused.headers["Retry-After"]) <= 15 * 60
    assert "Too many sign-in attempts" in body and "try again in 15 minutes" in body
    # A new browser at the same address is the same (account, address) pair.
    assert attempt(app.test_client(), "198.51.100.7", email).status_code == 429


def test_the_owner_signs_in_from_another_address_right_after(app, create_user):
    """(b) An attacker's five wrong guesses do not lock the DJ out mid-set."""
    email = create_user("dj")
    fail(app.test_client(), "198.51.100.7", email, 5)
    owner = app.test_client()  # a browser that has never signed in to this account
    response = attempt(owner, "203.0.113.20", email)
    assert response.status_code == 303 and response.headers["Location"] == "/dj/"
    assert owner.get("/dj/").status_code == 200


def test_one_typing_neighbour_at_a_venue_does_not_lock_out_the_others(app, create_user):
    """(c) Behind a venue's NAT: one account's typos pause that account there, nobody else."""
    venue_nat = "196.25.1.1"
    typist, *others = [create_user("fan") for _ in range(8)]
    fail(app.test_client(), venue_nat, typist, 5)
    assert attempt(app.test_client(), venue_nat, typist).status_code == 429
    for email in others:
        client = app.test_client()
        assert attempt(client, venue_nat, email).status_code == 303, email


def test_the_per_account_ceiling_stops_a_distributed_attack(app, create_user):
    """(d) Many addresses, five guesses each: at 50 failures in the hour the
    account refuses new devices from any address, with the right password too."""
    email = create_user("dj")
    ceiling = app.config["LOGIN_ACCOUNT_ATTEMPTS_PER_HOUR"]
    per_pair = app.config["LOGIN_ATTEMPTS"]
    assert ceiling % per_pair == 0
    for n in range(ceiling // per_pair):
        fail(app.test_client(), f"198.51.100.{n + 1}", email, per_pair)
    refused = attempt(app.test_client(), "203.0.113.99", email)
    body = refused.get_data(as_text=True)
    assert refused.status_code == 429
    assert "from many places" in body and "try again in 60 minutes" in body
    assert 3500 < int(refused.headers["Retry-After"]) <= 3600


def test_a_device_that_signed_in_before_gets_in_during_the_attack(app, create_user):
    """The ceiling keeps out new devices only: the DJ's own tablet (it signed in
    before) still signs in, from a fresh address, while the attack goes on."""
    email = create_user("dj")
    tablet = app.test_client()
    assert attempt(tablet, "203.0.113.20", email).status_code == 303
    tablet.post("/logout", data={"csrf_token": csrf_token_from(tablet.get("/dj/").get_data(as_text=True))})
    ceiling, per_pair = app.config["LOGIN_ACCOUNT_ATTEMPTS_PER_HOUR"], app.config["LOGIN_ATTEMPTS"]
    for n in range(ceiling // per_pair):
        fail(app.test_client(), f"198.51.100.{n + 1}", email, per_pair)
    assert attempt(app.test_client(), "203.0.113.30", email).status_code == 429  # a new device
    assert attempt(tablet, "203.0.113.31", email).status_code == 303  # the known one


def test_a_copied_device_cookie_still_meets_a_limit_of_its_own(app, create_user):
    """A known device skips the ceiling but gets 5 failures per 15 minutes in
    all, over every address, so a stolen device cookie does not unlock guessing."""
    email = create_user("dj")
    tablet = app.test_client()
    assert attempt(tablet, "203.0.113.20", email).status_code == 303
    tablet.post("/logout", data={"csrf_token": csrf_token_from(tablet.get("/dj/").get_data(as_text=True))})
    for n in range(5):
        assert attempt(tablet, f"198.51.100.{n + 1}", email, "wrong-password").status_code == 401
    assert attempt(tablet, "198.51.100.77", email, "wrong-password").status_code == 429


def test_one_address_spraying_many_accounts_is_capped(app, create_user):
    """Failures from one address over all accounts: 100 per 15 minutes, then
    new devices there are refused (a device known to its account still gets in)."""
    cap, per_pair = app.config["LOGIN_ADDRESS_ATTEMPTS"], app.config["LOGIN_ATTEMPTS"]
    known_email = create_user("dj")
    known = app.test_client()
    assert attempt(known, "192.0.2.50", known_email).status_code == 303
    known.post("/logout", data={"csrf_token": csrf_token_from(known.get("/dj/").get_data(as_text=True))})
    sprayer = app.test_client()
    for n in range(cap // per_pair):
        fail(sprayer, "192.0.2.50", f"victim{n}@test.example", per_pair)
    refused = attempt(app.test_client(), "192.0.2.50", create_user("fan"))
    assert refused.status_code == 429 and "from this network" in refused.get_data(as_text=True)
    assert attempt(known, "192.0.2.50", known_email).status_code == 303


def test_ipv6_guesses_count_per_64_network(app, create_user):
    """One host owns a whole IPv6 /64: rotating within it is one address."""
    email = create_user("dj")
    for n in range(5):
        assert attempt(app.test_client(), f"2001:db8:1:2::{n + 1:x}", email, "wrong").status_code == 401
    assert attempt(app.test_client(), "2001:db8:1:2::ff", email).status_code == 429
    assert attempt(app.test_client(), "2001:db8:1:3::1", email).status_code == 303


def test_a_parallel_distributed_burst_stays_within_the_ceiling(app, create_user):
    """(e) 80 simultaneous guesses from 40 addresses: every attempt takes its
    place before the password check, so exactly 50 are checked."""
    email = create_user("dj")
    ceiling = app.config["LOGIN_ACCOUNT_ATTEMPTS_PER_HOUR"]
    clients = [(app.test_client(), f"198.51.100.{n % 40 + 1}") for n in range(80)]
    tokens = [csrf_token_from(c.get("/login", environ_base={"REMOTE_ADDR": a}).get_data(as_text=True))
              for c, a in clients]

    def guess(n):
        client, address = clients[n]
        return client.post("/login", data={"email": email, "password": f"guess-{n}", "csrf_token": tokens[n]},
                           environ_base={"REMOTE_ADDR": address}).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(guess, range(80)))
    assert statuses.count(401) == ceiling and statuses.count(429) == 80 - ceiling, sorted(statuses)


@pytest.fixture
def redis_down(app):
    """The app's Redis replaced by one that does not answer (nothing listens on
    its port), with the app's client settings."""
    saved = app.extensions["bmm_redis"]
    app.extensions["bmm_redis"] = redis_lib.Redis(port=free_port(), socket_connect_timeout=2, socket_timeout=5)
    login_throttle._local.clear()
    yield
    app.extensions["bmm_redis"] = saved
    login_throttle._local.clear()
    login_throttle._redis_down_until = 0.0


def test_the_same_rules_hold_in_one_process_when_redis_is_down(app, redis_down):
    started = time.monotonic()
    with app.test_request_context():
        for _ in range(5):
            login_throttle.begin_attempt("dj@fallback.example", "198.51.100.1", "device-a")
        with pytest.raises(login_throttle.Throttled) as paused:
            login_throttle.begin_attempt("dj@fallback.example", "198.51.100.1", "device-a")
        assert paused.value.scope == "pair" and 0 < paused.value.retry_after <= 900
        # Another address is fine, and a success gives the place back and makes the device known.
        login_throttle.begin_attempt("dj@fallback.example", "203.0.113.5", "device-b").succeeded()
        for n in range(2, 11):
            for _ in range(5):
                login_throttle.begin_attempt("dj@fallback.example", f"198.51.100.{n}", "")
        with pytest.raises(login_throttle.Throttled) as ceiling:
            login_throttle.begin_attempt("dj@fallback.example", "198.51.100.99", "device-c")
        assert ceiling.value.scope == "account"
        login_throttle.begin_attempt("dj@fallback.example", "198.51.100.98", "device-b")  # known: in
    # Redis is asked once, not for each of the 57 attempts (each ask takes seconds: the client retries).
    assert time.monotonic() - started < login_throttle.REDIS_PAUSE_SECONDS
