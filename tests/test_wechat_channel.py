"""The WeChat subscribe-message channel, through the outbox, against the local fake of api.weixin.qq.com.

Messages are queued with `notify` (plus a consent grant) and dispatched by the worker job
`dispatch_message`, as in production with NOTIFY_TRANSPORT=wechat; what left the process is read
back from the fake, what the outbox made of it from the message row.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from datetime import timedelta

import pytest
import redis
import sqlalchemy as sa

from mall import clock
from mall.identity.models import User, WeChatAccount
from mall.notifications import services as notifications
from mall.notifications.models import Message, SubscriptionGrant
from mall.notifications.wechat import AccessTokens, RedisTokenCache, WeChatSubscribeChannel, WeChatUnavailable
from workers import runtime
from workers.jobs.notifications import dispatch_message, dispatch_through
from workers.runtime import unit_of_work
from workers.wechat_channel import wechat_channel

TEMPLATE_IDS = {"order.paid": "TMPL-PAID-001", "order.shipped": "TMPL-SHIPPED-002"}


@pytest.fixture
def wechat(app, settings):
    """Settings with the real WeChat channel, configured for the worker jobs; restored afterwards."""
    changed = dataclasses.replace(settings, notify_transport="wechat", wechat_template_ids=TEMPLATE_IDS)
    runtime.configure(changed)
    yield changed
    runtime.configure(settings)


def shopper(accounts=(("wx-brand-a", "openid-amy"),), name="amy") -> int:
    """A shopper with WeChat accounts (app id, openid), each logged in a minute after the previous one."""
    with unit_of_work() as session:
        user = User(role="shopper", display_name=name)
        session.add(user)
        session.flush()
        for minutes, (app_id, openid) in enumerate(accounts):
            session.add(WeChatAccount(user_id=user.id, app_id=app_id, openid=openid, session_key="sk",
                                      last_login_at=clock.now() + timedelta(minutes=minutes)))  # fmt: skip
        return user.id


def queue(user_id: int, template_key: str = "order.paid", payload=None, *, key: str = "", grants: int = 1) -> int:
    """Queue a message as a service would, after the shopper accepted the subscription `grants` times."""
    with unit_of_work() as session:
        for _ in range(grants):
            notifications.record_grants(session, user_id=user_id, results={template_key: "accept"})
        dedupe_key = key or f"{template_key}:{user_id}:{payload}"
        assert notifications.notify(session, user_id=user_id, template_key=template_key, dedupe_key=dedupe_key,
                                    payload=payload if payload is not None else {"order_id": 42})  # fmt: skip
        return session.scalar(sa.select(Message.id).filter_by(dedupe_key=dedupe_key))


def row(message_id: int) -> Message:
    with unit_of_work() as session:
        return session.get(Message, message_id)


def other_process(settings, **options) -> WeChatSubscribeChannel:
    """A channel as another worker process would build it: its own Redis connection and HTTP session."""
    return WeChatSubscribeChannel(
        cache=RedisTokenCache(redis.Redis.from_url(settings.redis_url)), base_url=settings.wechat_api_base,
        apps=settings.wechat_apps, template_ids=settings.wechat_template_ids,
        default_app=settings.wechat_default_app, **options,
    )  # fmt: skip


def dispatch_with(channel, message_id: int) -> str:
    return dispatch_through(message_id, {"wechat": channel})


# -- delivery --------------------------------------------------------------------------------------


def test_a_message_goes_out_to_the_openid_with_the_template_id_page_and_data(wechat, fake_wechat):
    amy = shopper()
    exact = queue(amy, "order.paid", {"order_id": 42, "wechat_data": {
        "character_string1": "M20240501", "amount2": {"value": "¥88.00"}, "thing3": "春季新品 连衣裙"}})  # fmt: skip
    plain = queue(amy, "order.shipped", {"order_id": 7, "carrier": "SF", "parcels": 2, "lines": [1, 2], "x": None})

    assert dispatch_message(exact) == "sent"
    assert dispatch_message(plain) == "sent"

    assert fake_wechat.delivered == [
        {"app_id": "wx-brand-a", "touser": "openid-amy", "template_id": "TMPL-PAID-001",
         "page": "pages/order/detail?id=42", "miniprogram_state": "formal",
         "data": {"character_string1": {"value": "M20240501"}, "amount2": {"value": "¥88.00"},
                  "thing3": {"value": "春季新品 连衣裙"}}},
        {"app_id": "wx-brand-a", "touser": "openid-amy", "template_id": "TMPL-SHIPPED-002",
         "page": "pages/order/detail?id=7", "miniprogram_state": "formal",
         "data": {"order_id": {"value": "7"}, "carrier": {"value": "SF"}, "parcels": {"value": "2"}}},
    ]  # fmt: skip
    for message_id in (exact, plain):
        message = row(message_id)
        assert (message.status, message.skip_reason, message.attempts) == ("sent", None, 1)
        assert message.sent_at is not None
    # Each grant paid for exactly its own message.
    with unit_of_work() as session:
        spent = session.execute(sa.select(SubscriptionGrant.message_id, SubscriptionGrant.consumed_at)).all()
    assert sorted(m for m, _ in spent) == sorted([exact, plain])
    assert all(at is not None for _, at in spent)


def test_the_recipient_is_the_default_apps_account_else_the_most_recently_used(wechat, fake_wechat):
    both = shopper([("wx-brand-a", "openid-on-a"), ("wx-brand-b", "openid-on-b-newer")], name="both")
    only_b = shopper([("wx-brand-b", "openid-b-old"), ("wx-brand-b", "openid-b-new")], name="only-b")

    assert dispatch_message(queue(both)) == "sent"
    assert dispatch_message(queue(only_b)) == "sent"

    assert [(d["app_id"], d["touser"]) for d in fake_wechat.delivered] == [
        ("wx-brand-a", "openid-on-a"),
        ("wx-brand-b", "openid-b-new"),
    ]
    # An openid belongs to one mini-program: each app's message used that app's own token.
    assert (fake_wechat.token_calls("wx-brand-a"), fake_wechat.token_calls("wx-brand-b")) == (1, 1)


def test_miniprogram_state_is_configurable(wechat, fake_wechat):
    runtime.configure(dataclasses.replace(wechat, miniprogram_state="trial"))

    assert dispatch_message(queue(shopper())) == "sent"

    assert fake_wechat.delivered[0]["miniprogram_state"] == "trial"


# -- the access token ------------------------------------------------------------------------------


def test_the_token_is_fetched_once_and_shared_by_messages_and_processes(wechat, fake_wechat):
    amy, bob = shopper(name="amy"), shopper([("wx-brand-a", "openid-bob")], name="bob")
    first, second = queue(amy, key="m1"), queue(bob, key="m2")
    third, fourth = queue(amy, key="m3"), queue(bob, key="m4")

    # Every dispatch_message builds its channel anew; two more channels stand for two other processes.
    assert dispatch_message(first) == "sent"
    assert dispatch_message(second) == "sent"
    assert dispatch_with(other_process(wechat), third) == "sent"
    assert dispatch_with(other_process(wechat), fourth) == "sent"

    assert fake_wechat.token_calls() == 1
    assert len(fake_wechat.delivered) == 4
    assert {a["access_token"] for a in fake_wechat.send_attempts} == {fake_wechat.current_tokens["wx-brand-a"]}
    assert all(a["errcode"] == 0 for a in fake_wechat.send_attempts)
    # Cached for expires_in (7200 s) less a safety margin.
    ttl = redis.Redis.from_url(wechat.redis_url).ttl("mall:wechat:access_token:wx-brand-a")
    assert 6800 <= ttl <= 6900


def test_concurrent_processes_fetch_one_token_between_them(wechat, fake_wechat):
    fake_wechat.token_delay = 0.3  # the winner's fetch is slow: the others must wait for it, not fetch
    processes = [other_process(wechat) for _ in range(6)]
    start, got, errors = threading.Barrier(len(processes)), [], []

    def run(channel):
        start.wait()
        try:
            got.append(channel.tokens.get("wx-brand-a"))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(p,)) for p in processes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert fake_wechat.token_calls() == 1
    assert got == [fake_wechat.current_tokens["wx-brand-a"]] * len(processes)


def test_a_process_that_loses_the_refresh_race_waits_and_reads_the_winners_token(wechat, fake_wechat):
    client = redis.Redis.from_url(wechat.redis_url)
    cache = RedisTokenCache(client)
    channel = other_process(wechat)
    with cache.lock("wx-brand-a", ttl=10) as held:  # another process is refreshing
        assert held
        threading.Timer(0.2, cache.set, args=("wx-brand-a", "WINNERS-TOKEN", 600)).start()
        assert channel.tokens.get("wx-brand-a") == "WINNERS-TOKEN"

        # If the winner never stores one, the wait is brief and the send is retried later.
        cache.delete("wx-brand-a")
        impatient = AccessTokens(cache, channel.http, base_url=wechat.wechat_api_base, apps=wechat.wechat_apps,
                                 wait=0.2)  # fmt: skip
        began = time.monotonic()
        with pytest.raises(WeChatUnavailable):
            impatient.get("wx-brand-a")
        assert time.monotonic() - began < 2
    assert fake_wechat.token_calls() == 0


def test_dropping_a_refused_token_keeps_a_newer_one_another_process_stored(wechat):
    cache = RedisTokenCache(redis.Redis.from_url(wechat.redis_url))
    cache.set("wx-brand-a", "NEWER", 600)

    cache.delete("wx-brand-a", "OLDER")  # this process was refused with the token it read earlier
    assert cache.get("wx-brand-a") == "NEWER"

    cache.delete("wx-brand-a", "NEWER")
    assert cache.get("wx-brand-a") is None


@pytest.mark.parametrize("errcode", [42001, 40001, 40014])
def test_a_refused_token_is_refreshed_once_and_the_message_goes_out_once(wechat, fake_wechat, errcode):
    amy = shopper()
    assert dispatch_message(queue(amy, key="before")) == "sent"
    old_token = fake_wechat.current_tokens["wx-brand-a"]
    if errcode == 42001:
        fake_wechat.expire_token("wx-brand-a")
    else:
        fake_wechat.fail_next_send(errcode)

    message_id = queue(amy, "order.shipped", {"order_id": 9}, key="after")
    assert dispatch_message(message_id) == "sent"

    new_token = fake_wechat.current_tokens["wx-brand-a"]
    assert new_token != old_token
    assert fake_wechat.token_calls() == 2
    assert [(a["access_token"], a["errcode"]) for a in fake_wechat.send_attempts] == [
        (old_token, 0),
        (old_token, errcode),
        (new_token, 0),
    ]
    assert [d["template_id"] for d in fake_wechat.delivered] == ["TMPL-PAID-001", "TMPL-SHIPPED-002"]
    assert row(message_id).status == "sent"
    # The new token is the shared one: another process uses it without fetching.
    assert dispatch_with(other_process(wechat), queue(amy, key="later")) == "sent"
    assert fake_wechat.token_calls() == 2


def test_a_token_refused_again_after_the_refresh_is_retried_later_not_refreshed_again(wechat, fake_wechat):
    amy = shopper()
    dispatch_message(queue(amy, key="warm"))
    fake_wechat.fail_next_send(42001)
    fake_wechat.fail_next_send(42001)

    message_id = queue(amy, key="twice")
    assert dispatch_message(message_id) == "retry_later"

    assert fake_wechat.token_calls() == 2
    assert len(fake_wechat.send_attempts) == 3
    message = row(message_id)
    assert message.status == "pending"
    assert "refused after refresh" in message.last_error


# -- what WeChat's answers make of the message ---------------------------------------------------


@pytest.mark.parametrize(
    ("errcode", "reason"),
    [(43101, "no_consent"), (40003, "invalid_openid"), (47003, "bad_template_data"), (40037, "bad_template_id")],
)
def test_permanent_refusals_skip_the_message_with_a_reason(wechat, fake_wechat, errcode, reason):
    fake_wechat.fail_next_send(errcode)
    message_id = queue(shopper())

    assert dispatch_message(message_id) == f"skipped:{reason}"

    message = row(message_id)
    assert (message.status, message.skip_reason, message.sent_at) == ("skipped", reason, None)
    assert fake_wechat.delivered == []
    assert [a["errcode"] for a in fake_wechat.send_attempts] == [errcode]
    # Never sent again: a second dispatch finds it no longer pending.
    assert dispatch_message(message_id) == "not_pending"
    assert len(fake_wechat.send_attempts) == 1


@pytest.mark.parametrize("errcode", [-1, 45009])
def test_a_busy_or_rate_limited_wechat_leaves_the_message_pending_for_a_later_try(wechat, fake_wechat, errcode):
    fake_wechat.fail_next_send(errcode)
    # Two acceptances: see the next test for why the retry needs the second one today.
    message_id = queue(shopper(), grants=2)

    assert dispatch_message(message_id) == "retry_later"

    message = row(message_id)
    assert (message.status, message.skip_reason, message.attempts) == ("pending", None, 1)
    assert message.last_error.startswith(f"errcode {errcode}:")
    assert message.send_after > clock.now() + timedelta(minutes=1)
    assert dispatch_message(message_id) == "not_due"
    assert fake_wechat.delivered == []

    clock.advance(timedelta(minutes=3))
    assert dispatch_message(message_id) == "sent"
    assert dispatch_message(message_id) == "not_pending"

    assert len(fake_wechat.delivered) == 1
    assert [a["errcode"] for a in fake_wechat.send_attempts] == [errcode, 0]
    assert row(message_id).status == "sent"


def test_a_retried_message_is_sent_on_the_grant_it_already_holds(wechat, fake_wechat):
    fake_wechat.fail_next_send(-1)
    message_id = queue(shopper())  # one acceptance: WeChat did not use it up, since the send failed

    assert dispatch_message(message_id) == "retry_later"
    clock.advance(timedelta(minutes=3))

    assert dispatch_message(message_id) == "sent"


def test_an_unreachable_wechat_is_retried_and_no_secret_or_token_reaches_last_error(wechat, fake_wechat):
    amy = shopper()
    unreachable = dataclasses.replace(wechat, wechat_api_base="http://127.0.0.1:1")

    # The token endpoint down: the URL in requests' error carries the app secret.
    fetching = queue(amy, key="fetch")
    assert dispatch_with(wechat_channel(unreachable), fetching) == "retry_later"
    assert "unreachable" in row(fetching).last_error
    assert "secret-a" not in row(fetching).last_error

    # subscribe/send down with a token in hand: that URL carries the access token.
    RedisTokenCache(redis.Redis.from_url(wechat.redis_url)).set("wx-brand-a", "TOKEN-IN-THE-URL", 600)
    sending = queue(amy, key="send")
    assert dispatch_with(wechat_channel(unreachable), sending) == "retry_later"
    assert "unreachable" in row(sending).last_error
    assert "TOKEN-IN-THE-URL" not in row(sending).last_error
    assert row(sending).status == "pending"


def test_a_slow_wechat_times_out_into_a_retry(wechat, fake_wechat):
    fake_wechat.token_delay = 1.0
    message_id = queue(shopper())

    assert dispatch_with(other_process(wechat, timeout=0.2), message_id) == "retry_later"

    assert "Timeout" in row(message_id).last_error
    assert row(message_id).status == "pending"


def test_a_wrong_app_secret_is_retried_and_sends_nothing(wechat, fake_wechat):
    misconfigured = dataclasses.replace(wechat, wechat_apps={"wx-brand-a": "wrong", "wx-brand-b": "secret-b"})
    message_id = queue(shopper())

    assert dispatch_with(wechat_channel(misconfigured), message_id) == "retry_later"

    assert row(message_id).last_error.startswith("access token: errcode 40125")
    assert fake_wechat.send_attempts == []


# -- refused before any call to WeChat -------------------------------------------------------------


def test_a_template_without_a_wechat_template_id_is_skipped(wechat, fake_wechat):
    message_id = queue(shopper(), "order.refunded", {"order_id": 3})

    assert dispatch_message(message_id) == "skipped:no_template_id"

    assert (row(message_id).status, row(message_id).skip_reason) == ("skipped", "no_template_id")
    assert fake_wechat.token_requests == [] and fake_wechat.send_attempts == []


def test_a_shopper_without_a_wechat_account_is_skipped(wechat, fake_wechat):
    message_id = queue(shopper(accounts=()))

    assert dispatch_message(message_id) == "skipped:no_openid"

    assert (row(message_id).status, row(message_id).skip_reason) == ("skipped", "no_openid")
    assert fake_wechat.token_requests == [] and fake_wechat.send_attempts == []


def test_an_account_on_an_app_this_deployment_does_not_serve_is_skipped(wechat, fake_wechat):
    message_id = queue(shopper([("wx-retired-brand", "openid-old")]))

    assert dispatch_message(message_id) == "skipped:app_not_configured"
    assert fake_wechat.send_attempts == []
