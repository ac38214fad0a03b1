"""Access to the running app's Settings and shared clients from the HTTP edge."""

from __future__ import annotations

from flask import current_app

from mall.config import Settings


def settings() -> Settings:
    return current_app.extensions["mall.settings"]


def wechat_client():
    return current_app.extensions["mall.wechat"]


def payment_gateway():
    return current_app.extensions["mall.gateway"]
