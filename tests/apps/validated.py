"""routes.app behind wsgiref.validate: any PEP 3333 violation by the server raises.

The validator reports soft problems as WSGIWarning; turning warnings into errors makes every
one of them an exception inside the app, hence a 500 the tests see."""

import warnings
import wsgiref.validate

import routes

warnings.simplefilter("error")

app = wsgiref.validate.validator(routes.app)
