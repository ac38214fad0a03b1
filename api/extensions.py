"""Flask extensions, created unbound and initialised by the app factory."""

from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

from mall.db import Base

# Models derive from mall.db.Base (no Flask in the domain); the extension shares its metadata.
db = SQLAlchemy(metadata=Base.metadata)
migrate = Migrate()
