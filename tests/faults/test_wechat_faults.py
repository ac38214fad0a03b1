"""WeChat slow or failing. What already had a test: login errcodes (busy -1 is a 503, 45011 a 429, both with
Retry-After) and WeChat unreachable (tests/api/test_auth_wechat.py); subscribe messages when WeChat is busy,
rate-limited, slow, unreachable or refuses the token: pending again with a backoff, sent once
(tests/test_wechat_channel.py, tests/test_outbox.py). Here: WeChat slow to log in, and a proxy's 5xx page
instead of WeChat's JSON, on login and on sending."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mall import clock
from mall.identity.models import User, WeChatAccount
from tests.api.test_auth_wechat import LOGIN, assert_problem, count
from tests.test_wechat_channel import queue, row, shopper, wechat  # noqa: F401  (wechat: a fixture)
from workers.jobs.notifications import dispatch_message

SEND = "/cgi-bin/message/subscribe/send"


def test_a_slow_wechat_login_is_a_503_to_retry_and_writes_nothing(app, client, fake_wechat, monkeypatch):
    """Guards the login call's timeout and its mapping to a 503 problem (mall.identity.wechat.WeChatClient:
    a RequestException is `auth.wechat_unreachable`): a request thread never waits on WeChat for long."""
    monkeypatch.setattr(app.extensions["mall.wechat"], "timeout", 0.1)
    fake_wechat.code_delay = 1.0
    fake_wechat.issue_code("c1", openid="openid-amy")

    resp = client.post(LOGIN, json={"code": "c1"})

    assert_problem(resp, 503, "auth.wechat_unreachable")
    assert int(resp.headers["Retry-After"]) > 0
    assert count(app, User) == 0 and count(app, WeChatAccount) == 0


@pytest.mark.parametrize("status", [500, 502, 503])
def test_a_5xx_page_instead_of_wechats_answer_is_a_503_and_the_next_login_works(app, client, fake_wechat, status):
    """Guards the login's reading of a reply that is not WeChat's JSON as WeChat unavailable (a 503 problem, not
    a 500): an HTML error page from the proxy in front of WeChat."""
    fake_wechat.fail_next_http("/sns/jscode2session", status)
    fake_wechat.issue_code("c1", openid="openid-amy")

    assert_problem(client.post(LOGIN, json={"code": "c1"}), 503, "auth.wechat_unreachable")
    assert count(app, User) == 0
    assert client.post(LOGIN, json={"code": "c1"}).status_code == 200  # WeChat did nothing: the code still works
    assert count(app, User) == 1


def test_a_5xx_page_on_sending_retries_with_a_backoff_and_sends_once(wechat, fake_wechat):  # noqa: F811
    """Guards the channel's reading of a non-JSON reply as a transient failure (mall.notifications.wechat:
    WeChatUnavailable -> SendResult retry) and the outbox's backoff (the message pending, not due at once,
    its grant kept); then it goes out once."""
    fake_wechat.fail_next_http(SEND, 502)
    message_id = queue(shopper())

    assert dispatch_message(message_id) == "retry_later"
    message = row(message_id)
    assert (message.status, message.attempts) == ("pending", 1)
    assert message.send_after > clock.now() + timedelta(minutes=1)
    assert dispatch_message(message_id) == "not_due"

    clock.advance(timedelta(minutes=3))
    assert dispatch_message(message_id) == "sent"
    assert dispatch_message(message_id) == "not_pending"
    assert len(fake_wechat.delivered) == 1
