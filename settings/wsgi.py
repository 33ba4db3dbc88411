import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings.base")
application = get_wsgi_application()
# The URLs, and with them every app's admin (workbench.apps), loaded as the web worker starts
# rather than by its first request, which would otherwise take about half a second longer.
get_resolver().url_patterns  # noqa: B018
