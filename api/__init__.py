"""The HTTP edge: the app factory registers extensions, blueprints and error handlers."""

from __future__ import annotations

from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask
from flask_smorest import Api

import mall.models  # noqa: F401  (every table registered before anything uses the metadata)
from api import docs, edge, errors, limits, observability, openapi, parsing
from api.extensions import db, migrate
from api.fields import IdConverter
from mall import logs
from mall.config import INSTANCE, ROOT, Settings
from mall.db import engine_options, engine_url
from mall.identity.wechat import WeChatClient
from mall.payments.factory import gateway_for
from workers import runtime as workers_runtime

INFO = """Multi-brand mini-program mall with live commerce.

Every error is an RFC 9457 problem (`application/problem+json`, the `Problem` schema): each operation lists the
error statuses it can answer, and `default` stands for any other (a 500). Input: a JSON body's unknown fields are
a 422, as is a body sent to an operation that takes none; a body marked required is required; a boolean is `true`
or `false`; text holding a NUL or a lone UTF-16 surrogate is a 422. Unknown query parameters are ignored. Limits on any input:
a body of more than 1 MiB (the deployment's MAX_BODY_BYTES) is a 413; a JSON body nested deeper than 32 arrays and
objects, or a string (or key) longer than 20,000 characters where its field declares no `maxLength`, is a 422."""

API_SPEC = {
    "API_TITLE": "Mall API",
    "API_VERSION": "v1",
    "OPENAPI_VERSION": "3.1.0",
    "OPENAPI_URL_PREFIX": "/api",
    "OPENAPI_JSON_PATH": "openapi.json",  # the Swagger UI is api/docs.py's, from the installation
    "API_SPEC_OPTIONS": {
        "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
        "info": {"description": INFO},
    },
}


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    INSTANCE.mkdir(parents=True, exist_ok=True)
    app = Flask(__name__, instance_path=str(INSTANCE))
    app.url_map.converters["int"] = IdConverter  # before any route is added
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SQLALCHEMY_DATABASE_URI=engine_url(settings.database_url),
        SQLALCHEMY_ENGINE_OPTIONS=engine_options(settings.database_url),
        SQLALCHEMY_ECHO=settings.sql_echo,
        JSON_SORT_KEYS=False,
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        **API_SPEC,
    )
    if not settings.openapi_json:
        app.config["OPENAPI_URL_PREFIX"] = None  # the spec is still built, not served
    app.json.sort_keys = False
    app.json.ensure_ascii = False
    app.extensions["mall.settings"] = settings
    app.extensions["mall.wechat"] = WeChatClient(settings.wechat_api_base, settings.wechat_apps)
    workers_runtime.configure(settings)  # jobs and after-commit subscribers use the same settings
    app.extensions["mall.gateway"] = gateway_for(settings)
    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True)
    plugins = {"marshmallow_plugin": MarshmallowPlugin(schema_name_resolver=_schema_name),
               "extra_plugins": [openapi.ProblemResponses()]}  # fmt: skip
    api = MallApi(app, spec_kwargs=plugins)
    _register_blueprints(app, api)
    errors.register(app, api)
    limits.install(app, settings)
    app.before_request(parsing.bound_input)
    app.before_request(parsing.refuse_unstorable_text)
    app.after_request(edge.secure_headers)
    observability.install(app)  # its hook runs first: the request id is set before anything can log
    if settings.api_docs_enabled:
        app.register_blueprint(docs.bp)
    _register_cli(app)
    logs.configure(settings.log_format)
    return app


class MallApi(Api):
    ERROR_SCHEMA = errors.ProblemSchema

    def _register_responses(self):
        """flask-smorest's shared responses, the error ones as the problems api/errors.py sends."""
        super()._register_responses()
        openapi.register_responses(self.spec, self.ERROR_SCHEMA)


def _schema_name(schema) -> str:
    """Component names: `Address`, and `AddressPatch` for the partial variant used by PATCH."""
    cls = schema if isinstance(schema, type) else type(schema)
    name = cls.__name__.removesuffix("Schema")
    return f"{name}Patch" if getattr(schema, "partial", False) else name


def _register_blueprints(app: Flask, api: Api) -> None:
    from api.audit.routes import blp as audit_log
    from api.cart.routes import blp as cart
    from api.catalog.admin_routes import blp as catalog_admin
    from api.catalog.routes import blp as catalog
    from api.checkout.routes import blp as checkout
    from api.console import bp as console
    from api.coupons.routes import blp as coupons
    from api.flash_sales.routes import blp as flash_sales
    from api.group_buy.routes import blp as group_buy
    from api.guides.commission import blp as guide_commission
    from api.guides.holds import blp as guide_holds
    from api.guides.payouts import blp as guide_payouts
    from api.guides.routes import blp as guides
    from api.guides.workbench import blp as guide_workbench
    from api.health import bp as health
    from api.identity.routes import blp as identity
    from api.live.attribution import blp as live_attribution
    from api.live.links import blp as live_links
    from api.live.lucky_bag_routes import blp as live_lucky_bags
    from api.live.promotions import blp as live_promotions
    from api.live.routes import blp as live
    from api.members.catalogue_routes import blp as points_catalogue
    from api.members.centre_routes import blp as member_centre
    from api.members.level_routes import blp as levels
    from api.members.points_routes import blp as points
    from api.members.routes import blp as members
    from api.notifications.routes import blp as notifications
    from api.orders.admin_routes import blp as orders_admin
    from api.orders.routes import blp as orders
    from api.payments.routes import blp as payments

    app.register_blueprint(health)
    app.register_blueprint(console)
    blueprints = (identity, catalog, catalog_admin, cart, checkout, orders, orders_admin, payments, notifications,
                  coupons, flash_sales, group_buy, live, live_links, live_attribution, live_lucky_bags,
                  live_promotions, guides, guide_commission, guide_holds, guide_payouts, guide_workbench,
                  points, points_catalogue, member_centre, members, levels, audit_log)  # fmt: skip
    for blueprint in blueprints:
        api.register_blueprint(blueprint, url_prefix=f"/api/v1{blueprint.url_prefix or ''}")


def _register_cli(app: Flask) -> None:
    from api.cli import mall_cli

    app.cli.add_command(mall_cli)
