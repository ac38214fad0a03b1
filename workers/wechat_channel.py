"""The real `wechat` channel for NOTIFY_TRANSPORT=wechat: subscribe messages with the access token shared
by every worker process through this deployment's Redis."""

from __future__ import annotations

from mall.config import Settings
from mall.notifications.wechat import RedisTokenCache, WeChatSubscribeChannel
from workers.connection import get_redis


def wechat_channel(settings: Settings) -> WeChatSubscribeChannel:
    return WeChatSubscribeChannel(
        cache=RedisTokenCache(get_redis(settings)),
        base_url=settings.wechat_api_base,
        apps=settings.wechat_apps,
        template_ids=settings.wechat_template_ids,
        default_app=settings.wechat_default_app,
        miniprogram_state=settings.miniprogram_state,
    )
