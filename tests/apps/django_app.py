"""A single-file Django project: settings.configure(), two URLs, the WSGI application."""

import json

from django.conf import settings

if not settings.configured:
        settings.configure(
                DEBUG=False,
                SECRET_KEY="gcorn-integration-tests-only",
                ALLOWED_HOSTS=["127.0.0.1", "localhost"],
                ROOT_URLCONF=__name__,
                MIDDLEWARE=[],
                INSTALLED_APPS=[],
                USE_TZ=True,
        )

from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import HttpResponse, JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402
from django.views.decorators.csrf import csrf_exempt  # noqa: E402


def index(request):
        return HttpResponse("django index\n", content_type="text/plain")


def info(request):
        return JsonResponse({"method": request.method, "path": request.path,
                             "q": request.GET.get("q"), "host": request.get_host()})


@csrf_exempt
def post(request):
        data = json.loads(request.body.decode("utf-8"))
        return JsonResponse({"sum": sum(data["numbers"]), "name": request.POST.get("name")})


urlpatterns = [
        path("", index),
        path("info/", info),
        path("post/", post),
]

application = get_wsgi_application()
